//! The external services plugins reach through host calls: LLM providers (`llm`: the seed's provider
//! rules, OpenAI-compatible and Anthropic wire protocols, the in-process model with feature `local-model`)
//! and speech (`voice`: TTS and STT engines writing artifacts). Knows nothing of runs, flows or plugins.

use abstractgateway_model::time;
use abstractgateway_store::artifacts;

mod http_body;
pub mod image;
pub mod llm;
mod multipart;
pub mod voice;

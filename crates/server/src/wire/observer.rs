//! The run LLM helpers: a summary of a run, a chat about it, and a chat thread saved as an artifact.

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{BodyFields, parse_body};

/// The fields every helper's body starts with, read in the seed's order (so 422 issues list in its order).
fn route_fields(f: &mut BodyFields) -> (Option<String>, Option<String>, bool) {
    (
        f.opt_str("provider"),
        f.opt_str("model"),
        f.bool_or("include_subruns", true),
    )
}

/// The body of `POST /runs/{run_id}/summary`.
#[derive(ToSchema)]
pub struct SummarizeRun {
    /// Default: `ABSTRACTGATEWAY_PROVIDER`, else `lmstudio`.
    pub provider: Option<String>,
    /// Default: `ABSTRACTGATEWAY_MODEL`, else `qwen/qwen3-next-80b`.
    pub model: Option<String>,
    /// Digest the child runs' ledgers too (default true).
    #[schema(required = false, default = true)]
    pub include_subruns: bool,
}

impl SummarizeRun {
    /// Parses and validates the body (FastAPI's 422 for a wrong type).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| {
            let (provider, model, include_subruns) = route_fields(f);
            SummarizeRun {
                provider,
                model,
                include_subruns,
            }
        })
    }
}

/// One message of a chat as a client sends it. Only `user` and `assistant` turns with text are given to the
/// model; other keys are ignored.
#[derive(ToSchema)]
pub struct ChatTurn {
    /// `user` or `assistant` (a saved thread keeps any role; default `user`).
    pub role: Option<String>,
    /// The text; messages without text are left out.
    pub content: Option<String>,
    /// When it was said (kept by a saved thread).
    pub ts: Option<String>,
}

/// The body of `POST /runs/{run_id}/chat`.
#[derive(ToSchema)]
pub struct AskAboutRun {
    /// Default: `ABSTRACTGATEWAY_PROVIDER`, else `lmstudio`.
    pub provider: Option<String>,
    /// Default: `ABSTRACTGATEWAY_MODEL`, else `qwen/qwen3-next-80b`.
    pub model: Option<String>,
    /// Ground the answer in the child runs' ledgers too (default true).
    #[schema(required = false, default = true)]
    pub include_subruns: bool,
    /// The chat so far, the question last. Each item must be an object; they are read loosely.
    #[schema(required = false, value_type = Vec<ChatTurn>)]
    pub messages: Vec<Value>,
    /// Record the question and answer as an `abstract.chat` ledger record (default false).
    #[schema(required = false, default = false)]
    pub persist: bool,
}

impl AskAboutRun {
    /// Parses and validates the body (FastAPI's 422 for a wrong type, or a message that is not an object).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| {
            let (provider, model, include_subruns) = route_fields(f);
            AskAboutRun {
                provider,
                model,
                include_subruns,
                messages: f.objects_or_empty("messages"),
                persist: f.bool_or("persist", false),
            }
        })
    }
}

/// The body of `POST /runs/{run_id}/chat_threads`. No model is called: provider and model are labels.
#[derive(ToSchema)]
pub struct SaveChatThread {
    pub provider: Option<String>,
    pub model: Option<String>,
    #[schema(required = false, default = true)]
    pub include_subruns: bool,
    /// The thread. Each item must be an object; they are read loosely.
    #[schema(required = false, value_type = Vec<ChatTurn>)]
    pub messages: Vec<Value>,
    /// Default: the first user message, cut to 80 characters.
    pub title: Option<String>,
}

impl SaveChatThread {
    /// Parses and validates the body (FastAPI's 422 for a wrong type, or a message that is not an object).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| {
            let (provider, model, include_subruns) = route_fields(f);
            SaveChatThread {
                provider,
                model,
                include_subruns,
                messages: f.objects_or_empty("messages"),
                title: f.opt_str("title"),
            }
        })
    }
}

/// `POST /runs/{run_id}/summary`: the summary, also recorded as `abstract.summary`.
#[derive(Serialize, ToSchema)]
pub struct SummaryAnswer {
    /// Always true.
    pub ok: bool,
    pub run_id: String,
    pub provider: String,
    pub model: String,
    /// ISO 8601, to the second.
    pub generated_at: String,
    pub summary: String,
}

/// `POST /runs/{run_id}/chat`: the model's answer.
#[derive(Serialize, ToSchema)]
pub struct ChatAnswer {
    /// Always true.
    pub ok: bool,
    pub run_id: String,
    pub provider: String,
    pub model: String,
    /// ISO 8601, to the second.
    pub generated_at: String,
    pub answer: String,
}

/// `POST /runs/{run_id}/chat_threads`: the saved thread.
#[derive(Serialize, ToSchema)]
pub struct SavedChatThread {
    /// Always true.
    pub ok: bool,
    pub run_id: String,
    pub workflow_id: String,
    pub thread_id: String,
    /// ISO 8601, to the second.
    pub created_at: String,
    /// Always false.
    pub duplicate: bool,
    pub title: Option<String>,
    /// Messages kept (those with text).
    pub message_count: usize,
    /// The thread's JSON artifact.
    pub chat_artifact: ArtifactRef,
}

/// A reference to an artifact of the run, as the seed's records and answers carry it.
#[derive(Serialize, ToSchema)]
pub struct ArtifactRef {
    /// The artifact's id.
    #[serde(rename = "$artifact")]
    pub artifact_id: String,
    pub content_type: String,
    pub filename: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub size_bytes: u64,
}

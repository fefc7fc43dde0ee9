//! `voice`: speech synthesis and transcription through the host's speech engines; audio as run artifacts.

use super::super::bindings::types::Error;
use super::super::bindings::voice::{Audio, Host, Synthesis, Transcript, Transcription};
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::llm::Answer;
use super::{ErrorCode, denied, error};

/// The speech engines of the host.
pub trait VoiceBackend: Send + Sync {
    /// Text to speech, stored as an artifact of `run_id`.
    fn synthesize(&self, run_id: &str, req: Synthesis) -> Answer<Audio>;
    /// Speech to text from an artifact of `run_id`.
    fn transcribe(&self, run_id: &str, req: Transcription) -> Answer<Transcript>;
}

impl Host for NodeCtx {
    async fn synthesize(&mut self, req: Synthesis) -> wasmtime::Result<Result<Audio, Error>> {
        let request = serde_json::to_value(&req)?;
        let (allowed, backend, run) = (
            self.grants.voice,
            self.caps.voice.clone(),
            self.rec.run_id().to_string(),
        );
        self.rec
            .call(HostFn::remote("voice", "synthesize"), request, async move {
                if !allowed {
                    return Err(denied("voice"));
                }
                match backend {
                    Some(b) => b.synthesize(&run, req).await,
                    None => Err(error(
                        ErrorCode::Unavailable,
                        "no speech engine is configured on this gateway",
                    )),
                }
            })
            .await
    }

    async fn transcribe(
        &mut self,
        req: Transcription,
    ) -> wasmtime::Result<Result<Transcript, Error>> {
        let request = serde_json::to_value(&req)?;
        let (allowed, backend, run) = (
            self.grants.voice,
            self.caps.voice.clone(),
            self.rec.run_id().to_string(),
        );
        self.rec
            .call(HostFn::remote("voice", "transcribe"), request, async move {
                if !allowed {
                    return Err(denied("voice"));
                }
                match backend {
                    Some(b) => b.transcribe(&run, req).await,
                    None => Err(error(
                        ErrorCode::Unavailable,
                        "no speech engine is configured on this gateway",
                    )),
                }
            })
            .await
    }
}

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

/// The host's speech engines, writing and reading audio as artifacts of the run.
pub struct EnginesBackend {
    pub voice: std::sync::Arc<crate::voice::Voice>,
    pub artifacts: std::sync::Arc<crate::artifacts::ArtifactStore>,
}

fn voice_error(e: crate::voice::VoiceError) -> Error {
    use crate::voice::VoiceErrorCode as V;
    let code = match e.code {
        V::InvalidInput => ErrorCode::InvalidInput,
        V::NotFound => ErrorCode::NotFound,
        V::RateLimited => ErrorCode::RateLimited,
        V::Timeout => ErrorCode::Timeout,
        V::Unavailable => ErrorCode::Unavailable,
        V::TooLarge => ErrorCode::TooLarge,
        V::Unsupported => ErrorCode::Unsupported,
        _ => ErrorCode::Internal,
    };
    Error {
        code,
        message: e.message,
        retryable: e.retryable,
    }
}

impl VoiceBackend for EnginesBackend {
    fn synthesize(&self, run_id: &str, req: Synthesis) -> Answer<Audio> {
        let (v, a, run) = (
            self.voice.clone(),
            self.artifacts.clone(),
            run_id.to_string(),
        );
        let req = crate::voice::SynthesisRequest {
            text: req.text,
            voice: req.voice,
            format: req.format,
            provider: req.provider,
            model: req.model,
        };
        Box::pin(async move {
            let art = v
                .synthesize_to_artifact_async(a, run, req)
                .await
                .map_err(voice_error)?;
            Ok(Audio {
                artifact_id: art.artifact_id,
                content_type: art.content_type,
                size: art.size,
                duration_ms: art.duration_ms,
            })
        })
    }

    fn transcribe(&self, run_id: &str, req: Transcription) -> Answer<Transcript> {
        let (v, a, run) = (
            self.voice.clone(),
            self.artifacts.clone(),
            run_id.to_string(),
        );
        let id = req.artifact_id.clone();
        let req = crate::voice::TranscriptionRequest {
            language: req.language,
            hint: req.hint,
            provider: req.provider,
            model: req.model,
        };
        Box::pin(async move {
            let t = v
                .transcribe_artifact_async(a, run, id, req)
                .await
                .map_err(voice_error)?;
            Ok(Transcript {
                text: t.text,
                language: t.language,
            })
        })
    }
}

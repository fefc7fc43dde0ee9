//! Voice: a text spoken into an audio artifact, an audio artifact transcribed into text.

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::parse_body;
use crate::wire::observer::ArtifactRef;

/// The body of `POST /runs/{run_id}/voice/tts`.
#[derive(ToSchema)]
pub struct SpeakText {
    /// What to say (not blank).
    pub text: String,
    /// The engine's voice; default: its own.
    pub voice: Option<String>,
    /// `wav` (default), `mp3`…: a short alphanumeric name.
    pub format: Option<String>,
    /// Makes a retry record once (at most 128 printable characters); default: a fresh id.
    pub request_id: Option<String>,
}

impl SpeakText {
    /// Parses and validates the body (FastAPI's 422 for a missing or wrong field; the rest is checked once the
    /// run is found, as the seed does).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| SpeakText {
            text: f.req_str("text"),
            voice: f.opt_str("voice"),
            format: f.opt_str("format"),
            request_id: f.opt_str("request_id"),
        })
    }
}

/// `POST /runs/{run_id}/voice/tts`: the audio artifact, also recorded as `abstract.voice.tts`.
#[derive(Serialize, ToSchema)]
pub struct SpokenText {
    /// Always true.
    pub ok: bool,
    pub run_id: String,
    pub request_id: String,
    pub audio_artifact: ArtifactRef,
}

/// The body of `POST /runs/{run_id}/audio/transcribe`.
#[derive(ToSchema)]
pub struct TranscribeAudio {
    /// An artifact ref, `{"$artifact": id}`: an audio artifact of the run or of its session's uploads.
    #[schema(value_type = Object)]
    pub audio_artifact: Map<String, Value>,
    /// The spoken language's code (`en`…); default: the engine's guess.
    pub language: Option<String>,
    /// Makes a retry record once (at most 128 printable characters); default: a fresh id.
    pub request_id: Option<String>,
}

impl TranscribeAudio {
    /// Parses and validates the body (FastAPI's 422 for a missing or wrong field; the ref itself is checked once
    /// the run is found, as the seed does).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| TranscribeAudio {
            audio_artifact: f.req_obj("audio_artifact"),
            language: f.opt_str("language"),
            request_id: f.opt_str("request_id"),
        })
    }
}

/// `POST /runs/{run_id}/audio/transcribe`: the text, also stored as a transcript artifact and recorded as
/// `abstract.audio.transcript`.
#[derive(Serialize, ToSchema)]
pub struct Transcript {
    /// Always true.
    pub ok: bool,
    pub run_id: String,
    pub request_id: String,
    pub text: String,
    pub transcript_artifact: ArtifactRef,
}

//! Speech providers behind the WIT `voice` interface: text to speech and speech to text.
//!
//! Local providers run Debian's `espeak-ng` (TTS) and `pocketsphinx` (STT) as subprocesses; the `openai`
//! provider speaks the OpenAI audio endpoints. [`Voice`] picks a provider by name, validates inputs and
//! moves audio in and out of run artifacts. Every call blocks: call it from a plugin thread or through
//! `tokio::task::spawn_blocking` (or the `*_async` helpers of [`Voice`]).

pub mod audio;
mod error;
mod espeak;
mod openai;
mod process;
mod registry;
mod sphinx;

pub use error::{VoiceError, VoiceErrorCode};
pub use espeak::EspeakTts;
pub use openai::{ApiKey, OpenAiSpeech};
pub use registry::{AudioArtifact, SynthesisRequest, TranscriptionRequest, Voice, VoiceConfig};
pub use sphinx::PocketsphinxStt;

/// Synthesised audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// The encoded audio (a WAV file unless another format was asked for).
    pub bytes: Vec<u8>,
    /// MIME type of `bytes`.
    pub content_type: String,
    /// Length when the format tells it (always for WAV).
    pub duration_ms: Option<u32>,
}

/// Recognised text.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The words heard, space separated.
    pub text: String,
    /// Language of the text when known.
    pub language: Option<String>,
}

/// One speech engine; a provider may implement only one direction and answer `unsupported` for the other.
pub trait SpeechBackend: Send + Sync {
    /// Provider name used in errors.
    fn name(&self) -> &str;

    /// Text to speech. `format` none means WAV.
    fn synthesize(
        &self,
        text: &str,
        voice: Option<&str>,
        format: Option<&str>,
        model: Option<&str>,
    ) -> Result<Audio, VoiceError>;

    /// Speech to text. `audio` has been checked to be non-empty, recognisable audio within the caps.
    fn transcribe(
        &self,
        audio: &[u8],
        content_type: &str,
        language: Option<&str>,
        hint: Option<&str>,
        model: Option<&str>,
    ) -> Result<Transcript, VoiceError>;
}

//! Speech; audio travels as run artifacts. Node plugins only.

use crate::bindings::node::abstractgateway::plugin::voice as wit;
use crate::error::Error;

pub use wit::{Audio, Synthesis, Transcript, Transcription};

/// Text to speech with the host defaults; the audio becomes an artifact of the run.
pub fn speak(text: &str) -> Result<Audio, Error> {
    synthesize(&Synthesis {
        text: text.to_string(),
        voice: None,
        format: None,
        provider: None,
        model: None,
    })
}

/// Text to speech with every option.
pub fn synthesize(req: &Synthesis) -> Result<Audio, Error> {
    Ok(wit::synthesize(req)?)
}

/// Speech to text of the artifact `artifact_id` with the host defaults.
pub fn transcribe_artifact(artifact_id: &str) -> Result<Transcript, Error> {
    transcribe(&Transcription {
        artifact_id: artifact_id.to_string(),
        language: None,
        hint: None,
        provider: None,
        model: None,
    })
}

/// Speech to text with every option.
pub fn transcribe(req: &Transcription) -> Result<Transcript, Error> {
    Ok(wit::transcribe(req)?)
}

//! `transcribe_audio`: speech to text from an audio artifact of the run.

use abstractgateway_plugin_sdk::voice::{self, Transcription};
use abstractgateway_plugin_sdk::{Error, Outputs, Value, artifacts, json};

use crate::params::Params;
use crate::refs::{artifact_ref, required_artifact_id};

/// Engine options shared by `transcribe_audio` and `listen_voice`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SttOptions {
    /// Expected language.
    pub language: Option<String>,
    /// Words expected in the audio (the `prompt` pin).
    pub hint: Option<String>,
    /// Speech provider.
    pub provider: Option<String>,
    /// Provider model.
    pub model: Option<String>,
}

impl SttOptions {
    /// Reads the seed's keys and aliases; `hint_keys` name the pins holding the expected words.
    pub fn of(p: &Params, hint_keys: &[&str]) -> Result<Self, Error> {
        Ok(SttOptions {
            language: p.text(&["language"])?,
            hint: p.text(hint_keys)?,
            provider: p.text(&["stt_provider", "sttProvider", "provider_voice"])?,
            model: p.text(&["stt_model", "sttModel", "model_voice"])?,
        })
    }

    /// The host call for artifact `id`.
    pub fn transcription(&self, id: &str) -> Transcription {
        Transcription {
            artifact_id: id.to_string(),
            language: self.language.clone(),
            hint: self.hint.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
        }
    }

    /// The `meta` output of a transcription of `audio_id` in `language`.
    pub fn meta(&self, audio_id: &str, language: Option<&str>) -> Value {
        let mut meta = json!({"schema": "abstractflow.transcribe_audio.v1.meta", "version": 1,
            "modality": "text", "task": "transcription", "audio_artifact_id": audio_id});
        if let Some(m) = meta.as_object_mut() {
            for (k, v) in [
                ("language", language.or(self.language.as_deref())),
                ("provider", self.provider.as_deref()),
                ("model", self.model.as_deref()),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
        }
        meta
    }
}

/// Transcribes artifact `id`; the error keeps the host's code and names the artifact.
pub fn transcribe(id: &str, opts: &SttOptions) -> Result<voice::Transcript, Error> {
    voice::transcribe(&opts.transcription(id)).map_err(|e| Error {
        message: format!("cannot transcribe audio artifact {id}: {}", e.message),
        ..e
    })
}

/// Runs the node: `voice.transcribe`, then the text kept as a `text/plain` artifact.
pub fn run(p: &Params) -> Result<Outputs, Error> {
    let audio_id = required_artifact_id(
        "audio_artifact",
        p.value(&["audio_artifact", "artifact", "audio"]),
    )?;
    let opts = SttOptions::of(p, &["hint", "prompt"])?;
    let t = transcribe(&audio_id, &opts)?;
    let mut out = Outputs::new();
    out.insert("text".into(), json!(t.text));
    let transcript = if t.text.is_empty() {
        Value::Null
    } else {
        let info = artifacts::put("text/plain", t.text.as_bytes(), Some("transcript.txt"))?;
        out.insert("artifact_id".into(), json!(info.id));
        artifact_ref(&info.id, &info.content_type, info.size)
    };
    out.insert("transcript_artifact".into(), transcript.clone());
    out.insert("artifact_ref".into(), transcript);
    out.insert("success".into(), Value::Bool(true));
    out.insert("meta".into(), opts.meta(&audio_id, t.language.as_deref()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abstractgateway_plugin_sdk::Invocation;

    #[test]
    fn the_prompt_pin_is_the_hint_and_effect_config_picks_the_engine() {
        let inv = Invocation::new(
            "transcribe_audio",
            "n",
            json!({"pinDefaults": {"format": "json", "temperature": 0},
                   "effectConfig": {"stt_provider": "pocketsphinx"}}),
            json!({"audio_artifact": {"$artifact": "ab"}, "prompt": "the quick brown fox",
                   "language": "en"}),
        );
        let p = Params::of(&inv);
        let o = SttOptions::of(&p, &["hint", "prompt"]).unwrap();
        let t = o.transcription("ab");
        assert_eq!(t.hint.as_deref(), Some("the quick brown fox"));
        assert_eq!(t.provider.as_deref(), Some("pocketsphinx"));
        assert_eq!(t.language.as_deref(), Some("en"));
        let meta = o.meta("ab", None);
        assert_eq!(meta["schema"], "abstractflow.transcribe_audio.v1.meta");
        assert_eq!(meta["language"], "en");
    }

    #[test]
    fn a_missing_audio_pin_is_refused_before_any_host_call() {
        let inv = Invocation::new(
            "transcribe_audio",
            "n",
            json!({}),
            json!({"audio_artifact": null}),
        );
        let e = run(&Params::of(&inv)).unwrap_err();
        assert!(e.message.contains("audio_artifact is required"), "{e}");
    }
}

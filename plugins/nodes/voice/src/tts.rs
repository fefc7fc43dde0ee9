//! `generate_voice`: text to speech; the audio becomes an artifact of the run.

use abstractgateway_plugin_sdk::voice::{self, Audio, Synthesis};
use abstractgateway_plugin_sdk::{Error, Outputs, Value, json};

use crate::params::Params;
use crate::refs::artifact_ref;

/// What the node asks the speech engine, plus the options it had to leave out.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRequest {
    /// The host call.
    pub synthesis: Synthesis,
    /// Options the flow set that the host's speech interface has no field for.
    pub ignored: Vec<String>,
}

/// Reads the node's parameters (the seed's `generate_voice` keys and aliases).
pub fn request(p: &Params) -> Result<TtsRequest, Error> {
    let text = p.text(&["text", "prompt"])?.ok_or_else(|| {
        Error::invalid_input("text is empty: wire the text pin or give it a default")
    })?;
    let format = p
        .text(&["format", "response_format"])?
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_else(|| "wav".into());
    let mut ignored = Vec::new();
    for key in ["profile", "instructions"] {
        if p.text(&[key])?.is_some() {
            ignored.push(key.to_string());
        }
    }
    // The editor's defaults (standard quality, speed 1) ask for nothing special.
    if p.text(&["quality_preset", "qualityPreset", "quality"])?
        .is_some_and(|q| q != "standard")
    {
        ignored.push("quality_preset".into());
    }
    if p.number(&["speed"])?
        .is_some_and(|s| (s - 1.0).abs() > 1e-9)
    {
        ignored.push("speed".into());
    }
    Ok(TtsRequest {
        synthesis: Synthesis {
            text,
            voice: p.text(&["voice"])?,
            format: Some(format),
            provider: p.text(&["tts_provider", "ttsProvider", "provider_voice"])?,
            model: p.text(&["tts_model", "ttsModel", "model_voice"])?,
        },
        ignored,
    })
}

/// The output pins for synthesised `audio`.
pub fn outputs(req: &TtsRequest, audio: &Audio) -> Outputs {
    let r = artifact_ref(&audio.artifact_id, &audio.content_type, audio.size);
    let mut meta = json!({"schema": "abstractflow.generate_voice.v1.meta", "version": 1,
        "modality": "voice", "task": "tts", "format": req.synthesis.format});
    if let Some(m) = meta.as_object_mut() {
        for (k, v) in [
            ("provider", req.synthesis.provider.as_deref()),
            ("model", req.synthesis.model.as_deref()),
            ("voice", req.synthesis.voice.as_deref()),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if let Some(ms) = audio.duration_ms {
            m.insert("duration_ms".into(), json!(ms));
        }
        if !req.ignored.is_empty() {
            m.insert("ignored_options".into(), json!(req.ignored));
        }
    }
    let mut out = Outputs::new();
    out.insert("audio_artifact".into(), r.clone());
    out.insert("artifact_ref".into(), r.clone());
    out.insert("artifact_id".into(), json!(audio.artifact_id));
    out.insert("content_type".into(), json!(audio.content_type));
    out.insert("outputs".into(), json!({"audio": [r]}));
    out.insert("meta".into(), meta);
    out.insert("success".into(), Value::Bool(true));
    out
}

/// Runs the node: one `voice.synthesize` host call.
pub fn run(p: &Params) -> Result<Outputs, Error> {
    let req = request(p)?;
    let audio = voice::synthesize(&req.synthesis)?;
    Ok(outputs(&req, &audio))
}

#[cfg(test)]
mod tests {
    use super::*;
    use abstractgateway_plugin_sdk::Invocation;

    fn params_of(config: Value, inputs: Value) -> TtsRequest {
        let inv = Invocation::new("generate_voice", "n", config, inputs);
        request(&Params::of(&inv)).unwrap()
    }

    #[test]
    fn the_editor_template_asks_for_a_plain_wav() {
        // The pin defaults and effectConfig of a flow saved by the editor.
        let r = params_of(
            json!({"pinDefaults": {"format": "wav", "quality_preset": "standard", "speed": 1,
                   "text": "I am a kitty bear"},
                   "effectConfig": {"tts_provider": "espeak", "voice": "en-us"}}),
            json!({}),
        );
        assert_eq!(r.synthesis.text, "I am a kitty bear");
        assert_eq!(r.synthesis.format.as_deref(), Some("wav"));
        assert_eq!(r.synthesis.provider.as_deref(), Some("espeak"));
        assert_eq!(r.synthesis.voice.as_deref(), Some("en-us"));
        assert!(r.ignored.is_empty(), "{:?}", r.ignored);
    }

    #[test]
    fn options_the_host_cannot_honour_are_reported() {
        let r = params_of(
            json!({}),
            json!({"prompt": "hi", "speed": 1.5, "instructions": "whisper", "format": "MP3"}),
        );
        assert_eq!(r.synthesis.text, "hi");
        assert_eq!(r.synthesis.format.as_deref(), Some("mp3"));
        assert_eq!(r.ignored, vec!["instructions", "speed"]);
        let a = Audio {
            artifact_id: "a".repeat(32),
            content_type: "audio/mpeg".into(),
            size: 10,
            duration_ms: None,
        };
        let out = outputs(&r, &a);
        assert_eq!(out["audio_artifact"]["$artifact"], json!("a".repeat(32)));
        assert_eq!(
            out["meta"]["ignored_options"],
            json!(["instructions", "speed"])
        );
        assert_eq!(out["success"], json!(true));
    }

    #[test]
    fn empty_text_is_refused_before_any_host_call() {
        let inv = Invocation::new("generate_voice", "n", json!({}), json!({"text": "  "}));
        let e = request(&Params::of(&inv)).unwrap_err();
        assert!(e.message.contains("text is empty"), "{e}");
    }
}

//! `listen_voice`: waits durably for the user's spoken answer, then transcribes it.

use abstractgateway_plugin_sdk::durability::{self, Wait};
use abstractgateway_plugin_sdk::{Error, Map, Outputs, Value, artifacts, json};

use crate::params::Params;
use crate::refs::{artifact_ref, audio_in_payload};
use crate::stt::{SttOptions, transcribe};

/// Audio types a client may answer with (those the seed advertises).
const CONTENT_TYPES: [&str; 3] = ["audio/wav", "audio/mpeg", "audio/webm"];

/// The wait on its key (default `voice_input`), with the prompt and details shown to clients meanwhile.
pub fn wait(p: &Params) -> Result<Wait, Error> {
    let key = p
        .text(&["wait_key", "event_key"])?
        .unwrap_or_else(|| "voice_input".into());
    let prompt = p.text(&["prompt"])?.unwrap_or_else(|| "Speak now.".into());
    // As the seed's WAIT_EVENT on `voice_input`: an event wait on the literal key, resumed by a command
    // naming it, not on a session event.
    let mut w = Wait::key(key)
        .prompt(prompt)
        .detail("allow_free_text", json!(true))
        .detail("input_mode", json!("voice"))
        .detail("content_types", json!(CONTENT_TYPES));
    for (k, keys) in [
        ("language", &["language"][..]),
        (
            "provider",
            &["stt_provider", "sttProvider", "provider_voice"][..],
        ),
        ("model", &["stt_model", "sttModel", "model_voice"][..]),
    ] {
        if let Some(v) = p.text(keys)? {
            w = w.detail(k, json!(v));
        }
    }
    if let Some(s) = p.number(&["max_duration_s", "maxDurationS"])? {
        w = w.detail("max_duration_s", json!(s));
    }
    Ok(w)
}

/// The typed answer of a payload that carries no audio (`text` or `response`).
fn typed_text(payload: &Map<String, Value>) -> Option<String> {
    ["text", "response"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// Runs the node: `await`, then (for audio) `artifacts.info` and `voice.transcribe`.
pub fn run(p: &Params) -> Result<Outputs, Error> {
    let wait = wait(p)?;
    let key = &wait.request().name;
    // `prompt` is what the user is asked; the words expected come from `hint` only.
    let opts = SttOptions::of(p, &["hint"])?;
    let payload = match durability::wait(&wait)? {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("response".into(), other);
            m
        }
    };
    // As the seed does, the resume payload's own keys are outputs too.
    let mut out: Outputs = payload.clone();
    match audio_in_payload(&payload) {
        Some(id) => {
            let info = artifacts::info(&id).map_err(|e| Error {
                message: format!("the voice input names artifact {id}: {}", e.message),
                ..e
            })?;
            let t = transcribe(&id, &opts)?;
            let r = artifact_ref(&info.id, &info.content_type, info.size);
            out.insert("audio_artifact".into(), r.clone());
            out.insert("artifact_ref".into(), r);
            out.insert("artifact_id".into(), json!(info.id));
            out.insert("content_type".into(), json!(info.content_type));
            out.insert("text".into(), json!(t.text));
            out.insert("meta".into(), opts.meta(&id, t.language.as_deref()));
        }
        None => {
            let text = typed_text(&payload).ok_or_else(|| {
                Error::invalid_input(format!(
                    "{key} was answered without audio or text: resume with \
                     {{\"audio_artifact\": id}} (or {{\"$artifact\": id}}) or {{\"text\": ...}}"
                ))
            })?;
            out.insert("audio_artifact".into(), Value::Null);
            out.insert("text".into(), json!(text));
        }
    }
    out.insert("success".into(), Value::Bool(true));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abstractgateway_plugin_sdk::Invocation;

    #[test]
    fn the_wait_matches_the_seed_details() {
        let inv = Invocation::new(
            "listen_voice",
            "n",
            json!({"effectConfig": {"stt_provider": "pocketsphinx"}}),
            json!({"language": "en", "max_duration_s": "30"}),
        );
        let w = wait(&Params::of(&inv)).unwrap();
        let Wait::Key(r) = &w else {
            panic!("an event wait on the literal key: {w:?}")
        };
        assert_eq!(r.name, "voice_input");
        assert_eq!(r.prompt.as_deref(), Some("Speak now."));
        assert_eq!(r.choices, None);
        assert_eq!(
            Value::Object(r.details.clone()),
            json!({"allow_free_text": true,
                   "input_mode": "voice", "content_types": ["audio/wav", "audio/mpeg", "audio/webm"],
                   "language": "en", "provider": "pocketsphinx", "max_duration_s": 30.0})
        );
        let inv = Invocation::new("listen_voice", "n", json!({}), json!({"event_key": "mic"}));
        assert_eq!(wait(&Params::of(&inv)).unwrap().request().name, "mic");
    }

    #[test]
    fn typed_answers_are_text() {
        let m = json!({"response": "yes please"});
        assert_eq!(
            typed_text(m.as_object().unwrap()).as_deref(),
            Some("yes please")
        );
        let m = json!({"other": 1});
        assert_eq!(typed_text(m.as_object().unwrap()), None);
    }
}

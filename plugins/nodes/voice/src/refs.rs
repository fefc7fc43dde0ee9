//! Artifact references as flows pass them between nodes: `{"$artifact": id, "artifact_id": id,
//! "content_type", "size_bytes"}`, or a bare id string.

use abstractgateway_plugin_sdk::{Error, Map, Value, json};

/// The reference to artifact `id` that media nodes output.
pub fn artifact_ref(id: &str, content_type: &str, size_bytes: u64) -> Value {
    json!({"$artifact": id, "artifact_id": id, "content_type": content_type, "size_bytes": size_bytes})
}

/// The artifact id a reference names: a non-empty string, or an object's `$artifact` / `artifact_id` /
/// `id`. `None` when `v` names none.
pub fn artifact_id(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(m) => ["$artifact", "artifact_id", "id"].iter().find_map(|k| {
            m.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        })?,
        _ => return None,
    };
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Like [`artifact_id`] for a node input, with an error naming `pin` when the value is no reference.
pub fn required_artifact_id(pin: &str, v: Option<&Value>) -> Result<String, Error> {
    let Some(v) = v else {
        return Err(Error::invalid_input(format!(
            "{pin} is required: wire an artifact (an id or {{\"$artifact\": id}})"
        )));
    };
    artifact_id(v).ok_or_else(|| {
        Error::invalid_input(format!(
            "{pin} must be an artifact id or {{\"$artifact\": id}}, got {}",
            crate::params::kind(v)
        ))
    })
}

/// Whether `s` has the shape of a gateway artifact id (32 lowercase hex digits), so a free-text answer
/// is never mistaken for one.
pub fn looks_like_artifact_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The audio a `listen_voice` resume payload carries: `audio_artifact`, `artifact`, `artifact_ref`,
/// `artifact_id` or `$artifact` (each an id or a reference), or a `response` that is an artifact id.
pub fn audio_in_payload(payload: &Map<String, Value>) -> Option<String> {
    for key in ["audio_artifact", "artifact", "artifact_ref", "artifact_id"] {
        if let Some(id) = payload.get(key).and_then(artifact_id) {
            return Some(id);
        }
    }
    if let Some(id) = payload.get("$artifact").and_then(Value::as_str) {
        return Some(id.trim().to_string()).filter(|s| !s.is_empty());
    }
    match payload.get("response") {
        Some(Value::String(s)) if looks_like_artifact_id(s.trim()) => Some(s.trim().to_string()),
        Some(v @ Value::Object(_)) => artifact_id(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn ids_come_from_strings_and_references() {
        assert_eq!(artifact_id(&json!(ID)).as_deref(), Some(ID));
        assert_eq!(artifact_id(&json!({"$artifact": ID})).as_deref(), Some(ID));
        assert_eq!(
            artifact_id(&json!({"artifact_id": ID})).as_deref(),
            Some(ID)
        );
        assert_eq!(
            artifact_id(&artifact_ref(ID, "audio/wav", 3)).as_deref(),
            Some(ID)
        );
        assert_eq!(artifact_id(&json!({"$artifact": "  "})), None);
        assert_eq!(artifact_id(&json!(3)), None);
        let e = required_artifact_id("audio_artifact", Some(&json!([ID]))).unwrap_err();
        assert!(e.message.contains("got an array"), "{e}");
        let e = required_artifact_id("audio_artifact", None).unwrap_err();
        assert!(e.message.contains("audio_artifact is required"), "{e}");
    }

    #[test]
    fn resume_payloads_name_their_audio() {
        let cases = [
            json!({"audio_artifact": {"$artifact": ID}}),
            json!({"artifact": ID}),
            json!({"artifact_ref": {"artifact_id": ID}}),
            json!({"artifact_id": ID}),
            json!({"$artifact": ID}),
            json!({"response": ID}),
        ];
        for c in cases {
            let m = c.as_object().unwrap();
            assert_eq!(audio_in_payload(m).as_deref(), Some(ID), "{c}");
        }
        let typed = json!({"response": "hello there"});
        assert_eq!(audio_in_payload(typed.as_object().unwrap()), None);
    }
}

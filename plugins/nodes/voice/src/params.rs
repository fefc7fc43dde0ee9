//! Reading a media node's parameters the way the editor stores them: a wired or typed input pin first,
//! then the node's `effectConfig` (where the provider and model pickers write), then its `pinDefaults`.

use abstractgateway_plugin_sdk::{Error, Invocation, Value};

/// The parameter sources of one invocation.
pub struct Params<'a> {
    inputs: &'a Value,
    effect_config: Option<&'a Value>,
    pin_defaults: Option<&'a Value>,
}

/// Null and `""` mean "not set": an unwired optional pin arrives as one of them.
fn is_set(v: &Value) -> bool {
    !matches!(v, Value::Null) && v.as_str() != Some("")
}

impl<'a> Params<'a> {
    /// The sources of `inv`.
    pub fn of(inv: &'a Invocation) -> Self {
        Params {
            inputs: inv.inputs(),
            effect_config: inv.config().get("effectConfig"),
            pin_defaults: inv.config().get("pinDefaults"),
        }
    }

    /// The first set value among `keys`, looking through every source in order before the next one.
    pub fn value(&self, keys: &[&str]) -> Option<&'a Value> {
        [Some(self.inputs), self.effect_config, self.pin_defaults]
            .into_iter()
            .flatten()
            .find_map(|src| keys.iter().find_map(|k| src.get(*k).filter(|v| is_set(v))))
    }

    /// A trimmed non-empty string parameter; numbers are accepted as their text, other types are refused.
    pub fn text(&self, keys: &[&str]) -> Result<Option<String>, Error> {
        match self.value(keys) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(Error::invalid_input(format!(
                "{} must be a string, got {}",
                keys[0],
                kind(other)
            ))),
        }
    }

    /// A number parameter; numeric strings are accepted.
    pub fn number(&self, keys: &[&str]) -> Result<Option<f64>, Error> {
        match self.value(keys) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
                Error::invalid_input(format!("{} must be a number, got {s:?}", keys[0]))
            }),
            Some(other) => Err(Error::invalid_input(format!(
                "{} must be a number, got {}",
                keys[0],
                kind(other)
            ))),
        }
    }
}

/// A JSON type name for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abstractgateway_plugin_sdk::json;

    #[test]
    fn inputs_win_over_effect_config_then_pin_defaults() {
        let inv = Invocation::new(
            "generate_voice",
            "n",
            json!({"effectConfig": {"tts_provider": "espeak", "voice": "en-us"},
                   "pinDefaults": {"text": "default", "voice": "fr", "speed": "1.5"}}),
            json!({"text": "wired", "voice": "", "tts_provider": null}),
        );
        let p = Params::of(&inv);
        assert_eq!(p.text(&["text"]).unwrap().as_deref(), Some("wired"));
        assert_eq!(p.text(&["voice"]).unwrap().as_deref(), Some("en-us"));
        assert_eq!(
            p.text(&["tts_provider", "ttsProvider"]).unwrap().as_deref(),
            Some("espeak")
        );
        assert_eq!(p.number(&["speed"]).unwrap(), Some(1.5));
        assert_eq!(p.text(&["missing"]).unwrap(), None);
    }

    #[test]
    fn wrong_types_are_named() {
        let inv = Invocation::new("t", "n", json!({}), json!({"text": [1], "speed": "fast"}));
        let p = Params::of(&inv);
        let e = p.text(&["text", "prompt"]).unwrap_err();
        assert!(
            e.message.contains("text must be a string, got an array"),
            "{e}"
        );
        let e = p.number(&["speed"]).unwrap_err();
        assert!(e.message.contains("speed must be a number"), "{e}");
    }
}

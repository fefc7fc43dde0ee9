//! One assertion (a subject–predicate–object triple with its time, scope and provenance), normalised as the
//! seed's `TripleAssertion` is, and bounded: an assertion is input from a flow, a model or a plugin.

use serde_json::{Map, Value};

/// Longest subject, predicate, object or timestamp kept, in bytes.
pub const MAX_TERM_BYTES: usize = 4096;
/// Largest `provenance` + `attributes` of one assertion, as JSON bytes.
pub const MAX_EXTRA_BYTES: usize = 16 * 1024;
/// Longest owner or assertion id (they become parts of store keys).
pub const MAX_ID_BYTES: usize = 160;

/// A triple and what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub assertion_id: Option<String>,
    pub subject: String,
    pub predicate: String,
    pub object: String,
    pub scope: String,
    pub owner_id: Option<String>,
    pub observed_at: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub confidence: Option<f64>,
    pub provenance: Map<String, Value>,
    pub attributes: Map<String, Value>,
}

/// How terms are compared and stored: trimmed, lowercased.
pub fn canonical_term(s: &str) -> String {
    s.trim().to_lowercase()
}

/// An id that may be part of a store key: 1..=160 bytes of `[A-Za-z0-9_.:-]`.
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn opt_str(d: &Map<String, Value>, key: &str) -> Option<String> {
    d.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn required(d: &Map<String, Value>, key: &str) -> Result<String, String> {
    let value = match d.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
        _ => String::new(),
    };
    if value.trim().is_empty() {
        return Err(format!("TripleAssertion.{key} must be a non-empty string"));
    }
    if value.len() > MAX_TERM_BYTES {
        return Err(format!(
            "TripleAssertion.{key} is {} bytes long; at most {MAX_TERM_BYTES} are kept",
            value.len()
        ));
    }
    Ok(value)
}

impl Assertion {
    /// The seed's `TripleAssertion.from_dict` followed by its normalisation: subject and predicate canonical,
    /// the object canonical unless `attributes.literal` is truthy (then only trimmed), scope lowercased
    /// (`run` by default), blank optional strings absent, `observed_at` defaulting to `now`.
    pub fn from_json(v: &Value, now: &str) -> Result<Assertion, String> {
        let Value::Object(d) = v else {
            return Err("TripleAssertion.from_dict expects a dict".into());
        };
        let subject = required(d, "subject")?;
        let predicate = required(d, "predicate")?;
        let object = required(d, "object")?;
        let attributes = match d.get("attributes") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let provenance = match d.get("provenance") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let extra = serde_json::to_vec(&attributes).map_or(0, |b| b.len())
            + serde_json::to_vec(&provenance).map_or(0, |b| b.len());
        if extra > MAX_EXTRA_BYTES {
            return Err(format!(
                "TripleAssertion attributes and provenance are {extra} bytes of JSON; at most {MAX_EXTRA_BYTES} are kept"
            ));
        }
        let literal = attributes.get("literal").is_some_and(truthy);
        let scope = opt_str(d, "scope")
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|| "run".into());
        let confidence = match d.get("confidence") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|f| f.is_finite());
        let assertion = Assertion {
            assertion_id: opt_str(d, "assertion_id"),
            subject: canonical_term(&subject),
            predicate: canonical_term(&predicate),
            object: if literal {
                object.trim().to_string()
            } else {
                canonical_term(&object)
            },
            scope,
            owner_id: opt_str(d, "owner_id"),
            observed_at: opt_str(d, "observed_at").unwrap_or_else(|| now.to_string()),
            valid_from: opt_str(d, "valid_from"),
            valid_until: opt_str(d, "valid_until"),
            confidence,
            provenance,
            attributes,
        };
        for (name, value) in [
            ("scope", Some(&assertion.scope)),
            ("observed_at", Some(&assertion.observed_at)),
            ("valid_from", assertion.valid_from.as_ref()),
            ("valid_until", assertion.valid_until.as_ref()),
        ] {
            if value.is_some_and(|v| v.len() > MAX_TERM_BYTES) {
                return Err(format!(
                    "TripleAssertion.{name} is longer than {MAX_TERM_BYTES} bytes"
                ));
            }
        }
        for (name, value) in [
            ("assertion_id", &assertion.assertion_id),
            ("owner_id", &assertion.owner_id),
        ] {
            if let Some(id) = value
                && !is_safe_id(id)
            {
                return Err(format!(
                    "TripleAssertion.{name} must be 1..{MAX_ID_BYTES} characters of [A-Za-z0-9_.:-]"
                ));
            }
        }
        Ok(assertion)
    }

    /// The seed's `to_dict()`: its keys in its order, absent values left out.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let opt = |m: &mut Map<String, Value>, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::String(v.clone()));
            }
        };
        opt(&mut m, "assertion_id", &self.assertion_id);
        m.insert("subject".into(), self.subject.clone().into());
        m.insert("predicate".into(), self.predicate.clone().into());
        m.insert("object".into(), self.object.clone().into());
        m.insert("scope".into(), self.scope.clone().into());
        opt(&mut m, "owner_id", &self.owner_id);
        m.insert("observed_at".into(), self.observed_at.clone().into());
        opt(&mut m, "valid_from", &self.valid_from);
        opt(&mut m, "valid_until", &self.valid_until);
        if let Some(c) = self.confidence {
            m.insert("confidence".into(), c.into());
        }
        m.insert("provenance".into(), Value::Object(self.provenance.clone()));
        m.insert("attributes".into(), Value::Object(self.attributes.clone()));
        Value::Object(m)
    }
}

/// Python's truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_as_the_seed() {
        let a = Assertion::from_json(
            &json!({"subject": " Ex:Alice ", "predicate": "Schema:Name", "object": " Alice Smith ",
                "attributes": {"literal": true}, "scope": "SESSION", "owner_id": " "}),
            "2026-01-01T00:00:00+00:00",
        )
        .unwrap();
        assert_eq!(a.subject, "ex:alice");
        assert_eq!(a.predicate, "schema:name");
        assert_eq!(a.object, "Alice Smith");
        assert_eq!(a.scope, "session");
        assert_eq!(a.owner_id, None);
        let d = a.to_json();
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "subject",
                "predicate",
                "object",
                "scope",
                "observed_at",
                "provenance",
                "attributes"
            ]
        );
    }

    #[test]
    fn refuses_what_it_cannot_keep() {
        let now = "t";
        assert!(
            Assertion::from_json(&json!({"subject": "a", "predicate": "p"}), now)
                .unwrap_err()
                .contains("object must be a non-empty string")
        );
        assert!(Assertion::from_json(&json!([1]), now).is_err());
        let long = "x".repeat(MAX_TERM_BYTES + 1);
        assert!(
            Assertion::from_json(
                &json!({"subject": long, "predicate": "p", "object": "o"}),
                now
            )
            .is_err()
        );
        let bad_id =
            json!({"subject": "a", "predicate": "p", "object": "o", "assertion_id": "../x"});
        assert!(Assertion::from_json(&bad_id, now).is_err());
        let big = json!({"subject": "a", "predicate": "p", "object": "o",
            "attributes": {"x": "y".repeat(MAX_EXTRA_BYTES)}});
        assert!(Assertion::from_json(&big, now).is_err());
    }
}

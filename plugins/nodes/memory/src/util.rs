//! Small pure helpers: SHA-256 (span ids are content addresses), ISO timestamps, Python-like coercions.

use abstractgateway_plugin_sdk::{Map, Value};

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `ms` since the epoch as Python's `datetime.now(timezone.utc).isoformat()` writes it (microseconds only
/// when there are some).
pub fn iso_utc(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let base = at
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    match at.microsecond() {
        0 => format!("{base}+00:00"),
        micros => format!("{base}.{micros:06}+00:00"),
    }
}

/// Python's `str(value)` for the scalars flows pass (`None` is the empty string here, as `str(x or "")`).
pub fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.into(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() && f.is_finite() && f.fract() == 0.0 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Python's truthiness of a JSON value (absent is falsy).
pub fn truthy(v: Option<&Value>) -> bool {
    v.is_some_and(pycompat::repr::py_truthy)
}

/// The seed's lenient boolean: true/1/yes/on (case-insensitive), non-zero numbers.
pub fn coerce_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(
            s.trim().to_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        ),
        _ => false,
    }
}

/// Python's `int(x)` for a pin value: integers, floats truncated, numeric strings; `None` otherwise.
pub fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// `{k: v}` for the non-empty string pairs of `v` (an object), without the reserved key `kind`.
pub fn clean_tags(v: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(Value::Object(o)) = v {
        for (k, v) in o {
            if let Value::String(s) = v
                && !k.is_empty()
                && !s.is_empty()
                && k != "kind"
            {
                out.insert(k.clone(), Value::String(s.clone()));
            }
        }
    }
    out
}

/// `text` cut to `max` characters with the seed's "… (truncated)" marker.
pub fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let marker = "… (truncated)";
    let keep = max.saturating_sub(marker.chars().count());
    let head: String = text.chars().take(keep).collect();
    format!("{}{marker}", head.trim_end())
}

/// A JSON string Python's `json.dumps(v, ensure_ascii=False, sort_keys=True)` would write.
pub fn py_dumps_sorted(v: &Value) -> String {
    let opts = pycompat::repr::DumpOptions {
        sort_keys: true,
        ..Default::default()
    };
    pycompat::repr::py_json_dumps(v, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            sha256_hex(&long),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn iso_matches_python() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            iso_utc(1_764_371_414_123),
            "2025-11-28T23:10:14.123000+00:00"
        );
    }

    #[test]
    fn dumps_spaces_like_python() {
        let v: Value =
            abstractgateway_plugin_sdk::serde_json::from_str(r#"{"b":"x, y: z","a":[1,2]}"#)
                .unwrap();
        assert_eq!(py_dumps_sorted(&v), r#"{"a": [1, 2], "b": "x, y: z"}"#);
    }
}

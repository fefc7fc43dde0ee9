//! JSON nodes: lenient `parse_json` (code fences, embedded JSON, Python literals) and
//! `stringify_json` with Python `json.dumps` output.

use serde_json::{Map, Value};

use super::{BuiltinCtx, MAX_BUILT_TEXT_BYTES, PyException, PyResult, input};
use pycompat::json::{loads, raw_decode};
use pycompat::literal_eval::{literal_eval, to_json};
use pycompat::repr::{DumpOptions, py_int, py_json_dumps_limited, py_str, py_strip, py_truthy};

/// Python `json.loads` tries at most this many `{`/`[` start positions in free text.
const MAX_JSON_STARTS: usize = 64;

/// Drops a surrounding Markdown code fence (```` ```json … ``` ````).
fn strip_code_fence(text: &str) -> &str {
    let s = py_strip(text);
    if !s.starts_with("```") {
        return s;
    }
    let Some(nl) = s.find('\n') else {
        return py_strip(s.trim_matches('`'));
    };
    let body = &s[nl + 1..];
    let body = match body.rfind("```") {
        Some(end) => &body[..end],
        None => body,
    };
    py_strip(body)
}

/// `json.loads`, else the first decodable object/array among the first 64 `{`/`[`.
/// A document that is JSON `null` counts as "not parsed", as in the reference.
fn json_or_embedded(s: &str) -> Option<Value> {
    if let Some(v) = loads(s).filter(|v| !v.is_null()) {
        return Some(v);
    }
    s.char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        .take(MAX_JSON_STARTS)
        .find_map(|(i, _)| raw_decode(&s[i..]))
}

/// The reference's `parse_json` on a text value.
pub(crate) fn parse_text(raw: &str, wrap_scalar: bool) -> PyResult {
    let empty = || PyException::value_error("parse_json requires a non-empty 'text' input.");
    let text = strip_code_fence(raw);
    if py_strip(text).is_empty() {
        return Err(empty());
    }
    let stripped = py_strip(text);
    let parsed = match json_or_embedded(stripped) {
        Some(v) => v,
        None => match literal_eval(stripped) {
            Ok(lit) => to_json(&lit),
            Err(e) => {
                return Err(PyException::value_error(format!(
                    "Invalid JSON: {}",
                    e.message
                )));
            }
        },
    };
    Ok(wrap(parsed, wrap_scalar))
}

fn wrap(parsed: Value, wrap_scalar: bool) -> Value {
    if wrap_scalar && !matches!(parsed, Value::Object(_) | Value::Array(_)) {
        let mut m = Map::new();
        m.insert("value".into(), parsed);
        return Value::Object(m);
    }
    parsed
}

/// `parse_json(text, wrap_scalar=True)`: the parsed object or array; a scalar becomes
/// `{"value": x}`. Objects/arrays pass through; empty or unparseable text raises.
pub fn parse_json(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let wrap_scalar = inputs.get("wrap_scalar").is_none_or(py_truthy);
    match input(inputs, "text") {
        v @ (Value::Object(_) | Value::Array(_)) => Ok(wrap(v.clone(), wrap_scalar)),
        Value::Null => Err(PyException::value_error(
            "parse_json requires a non-empty 'text' input.",
        )),
        other => parse_text(&py_str(other), wrap_scalar),
    }
}

/// `_parse_jsonish_maybe`: like `parse_json` but `None` instead of raising.
fn parse_jsonish_maybe(text: &str) -> Option<Value> {
    let s = py_strip(strip_code_fence(text));
    if s.is_empty() {
        return None;
    }
    if let Some(v) = loads(s) {
        return Some(v);
    }
    if let Some(v) = s
        .char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        .take(MAX_JSON_STARTS)
        .find_map(|(i, _)| raw_decode(&s[i..]))
    {
        return Some(v);
    }
    literal_eval(s).ok().and_then(|lit| match lit {
        pycompat::literal_eval::PyVal::None => None,
        other => Some(to_json(&other)),
    })
}

/// Indents beyond this raise `MemoryError` instead of building gigabytes of spaces
/// (Python raises it from about 2^62; it would still try to allocate below that).
const MAX_INDENT: i128 = 10_000_000;

/// Renders a JSON-like value the way the runtime's `stringify_json` does; `indent` is the
/// beautify width (Python's `json.dumps(indent=...)`).
pub(crate) fn stringify(value: &Value, mode: &str, indent: i128, sort_keys: bool) -> PyResult {
    let mut v = value.clone();
    if let Value::String(s) = value
        && !py_strip(s).is_empty()
        && let Some(parsed) = parse_jsonish_maybe(s)
        && !parsed.is_null()
    {
        v = parsed;
    }
    let mode = py_strip(mode).to_lowercase();
    let opts = match mode.as_str() {
        "minified" => DumpOptions {
            compact: true,
            sort_keys,
            ..Default::default()
        },
        "none" => DumpOptions {
            sort_keys,
            ..Default::default()
        },
        // `json.dumps` returns a plain string before it builds the indent text.
        _ if v.is_string() => DumpOptions::default(),
        _ => {
            if indent > i128::from(i64::MAX) {
                return Err(PyException::new(
                    "OverflowError",
                    "cannot fit 'int' into an index-sized integer",
                ));
            }
            if indent > MAX_INDENT {
                return Err(PyException::new("MemoryError", ""));
            }
            DumpOptions {
                indent: Some(usize::try_from(indent).unwrap_or(2)),
                sort_keys,
                ..Default::default()
            }
        }
    };
    // The indent is repeated for every item at every level: refuse before the spaces take gigabytes.
    match py_json_dumps_limited(&v, opts, MAX_BUILT_TEXT_BYTES) {
        Some(text) => Ok(Value::String(text)),
        None => Err(PyException::new(
            "MemoryError",
            format!(
                "the indented JSON text would be over the gateway's limit of {MAX_BUILT_TEXT_BYTES} bytes"
            ),
        )),
    }
}

/// `stringify_json(value, mode=beautify|minified|none)`; legacy `indent` and `sort_keys`.
pub fn stringify_json(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let value = input(inputs, "value");
    let mut mode = match input(inputs, "mode") {
        Value::String(s) => py_strip(s).to_lowercase(),
        _ => String::new(),
    };
    let indent = match input(inputs, "indent") {
        Value::Null => None,
        v => py_int(v).ok(),
    };
    let sort_keys = matches!(input(inputs, "sort_keys"), Value::Bool(true));
    if mode.is_empty() {
        mode = match indent {
            Some(n) if n <= 0 => "minified".into(),
            _ => "beautify".into(),
        };
    }
    let width = indent.filter(|n| *n > 0).unwrap_or(2);
    stringify(value, &mode, width, sort_keys)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::run;
    use serde_json::json;

    #[test]
    fn parse_json_is_lenient_like_python() {
        let p = |text: serde_json::Value| run("parse_json", json!({"text": text}));
        assert_eq!(p(json!("{\"a\": 1}")).unwrap(), json!({"a": 1}));
        assert_eq!(
            p(json!("```json\n{\"a\": [1, 2]}\n```")).unwrap(),
            json!({"a": [1, 2]})
        );
        assert_eq!(
            p(json!("Sure! Here: {\"a\": 1} hope that helps {\"b\": 2}")).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            p(json!("{'a': True, 'b': None, 'c': (1, 2)}")).unwrap(),
            json!({"a": true, "b": null, "c": [1, 2]})
        );
        assert_eq!(p(json!("42")).unwrap(), json!({"value": 42}));
        assert_eq!(p(json!(" \"hi\" ")).unwrap(), json!({"value": "hi"}));
        assert_eq!(p(json!(7)).unwrap(), json!({"value": 7}));
        assert_eq!(p(json!(true)).unwrap(), json!({"value": true}));
        assert_eq!(p(json!([1, 2])).unwrap(), json!([1, 2]));
        assert_eq!(p(json!({"k": "v"})).unwrap(), json!({"k": "v"}));
        assert_eq!(p(json!("[1, 2, 3,]")).unwrap(), json!([1, 2, 3]));
        assert_eq!(
            run("parse_json", json!({"text": "5", "wrap_scalar": false})).unwrap(),
            json!(5)
        );
        assert_eq!(p(json!("```\n[1]\n```")).unwrap(), json!([1]));
        assert_eq!(p(json!("```[1]```")).unwrap(), json!([1]));
    }

    #[test]
    fn parse_json_errors_match_golden_messages() {
        let msg = |text: serde_json::Value| {
            run("parse_json", json!({"text": text}))
                .unwrap_err()
                .message
        };
        assert_eq!(
            msg(json!(null)),
            "parse_json requires a non-empty 'text' input."
        );
        assert_eq!(
            msg(json!("   ")),
            "parse_json requires a non-empty 'text' input."
        );
        assert_eq!(
            msg(json!("```json\n```")),
            "parse_json requires a non-empty 'text' input."
        );
        assert_eq!(
            msg(json!("echo:hello world")),
            "Invalid JSON: invalid syntax (<unknown>, line 1)"
        );
        // JSON null is "not parsed": the literal fallback then sees a bare name.
        assert!(msg(json!("null")).starts_with(
            "Invalid JSON: malformed node or string on line 1: <ast.Name object at 0x"
        ));
        assert_eq!(
            msg(json!("{\"a\": 1")),
            "Invalid JSON: '{' was never closed (<unknown>, line 1)"
        );
        let kind = run("parse_json", json!({"text": "x y"})).unwrap_err().kind;
        assert_eq!(kind, "ValueError");
    }

    #[test]
    fn stringify_modes() {
        let v = json!({"b": [1, 2.5], "a": "é"});
        let s = |inputs: serde_json::Value| run("stringify_json", inputs).unwrap();
        assert_eq!(
            s(json!({"value": v})),
            json!("{\n  \"b\": [\n    1,\n    2.5\n  ],\n  \"a\": \"é\"\n}")
        );
        assert_eq!(
            s(json!({"value": v, "mode": "Minified"})),
            json!("{\"b\":[1,2.5],\"a\":\"é\"}")
        );
        assert_eq!(
            s(json!({"value": v, "mode": "none", "sort_keys": true})),
            json!("{\"a\": \"é\", \"b\": [1, 2.5]}")
        );
        assert_eq!(
            s(json!({"value": v, "indent": 0})),
            json!("{\"b\":[1,2.5],\"a\":\"é\"}")
        );
        assert_eq!(
            s(json!({"value": [1], "indent": "4"})),
            json!("[\n    1\n]")
        );
        assert_eq!(
            s(json!({"value": [1], "mode": "weird"})),
            json!("[\n  1\n]")
        );
        // JSON-ish strings are parsed before rendering; plain text is quoted.
        assert_eq!(
            s(json!({"value": "{'x': 1}", "mode": "minified"})),
            json!("{\"x\":1}")
        );
        assert_eq!(
            s(json!({"value": "hello", "mode": "none"})),
            json!("\"hello\"")
        );
        assert_eq!(
            s(json!({"value": "None", "mode": "none"})),
            json!("\"None\"")
        );
        assert_eq!(s(json!({"value": "12", "mode": "none"})), json!("12"));
        assert_eq!(s(json!({"mode": "none"})), json!("null"));
        assert_eq!(s(json!({"value": 1e16, "mode": "none"})), json!("1e+16"));
        // An indent is repeated for every item: ten million spaces times a hundred items is refused.
        let items: Vec<i32> = (0..100).collect();
        let e = run(
            "stringify_json",
            json!({"value": items, "indent": 10_000_000}),
        )
        .unwrap_err();
        assert_eq!(e.kind, "MemoryError");
        let ok = run(
            "stringify_json",
            json!({"value": [[1]], "indent": 1_000_000}),
        )
        .unwrap();
        assert_eq!(ok.as_str().map(str::len), Some(4_000_009));
        // Python builds the indent text before encoding anything but a plain string.
        let e = run("stringify_json", json!({"value": [1], "indent": 1e18})).unwrap_err();
        assert_eq!(e.kind, "MemoryError");
        assert_eq!(
            s(json!({"value": "plain", "indent": 1e18})),
            json!("\"plain\"")
        );
    }
}

//! String nodes. Inputs are rendered with Python `str()`, so `None` reads as `"None"`
//! wherever the reference does `str(inputs.get(...))`.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{
    BuiltinCtx, MAX_BUILT_TEXT_BYTES, PyException, PyResult, check_built, input, input_or,
    join_checked, too_large,
};
use pycompat::format::str_format;
use pycompat::repr::{
    DumpOptions, decode_ui_escapes, py_int, py_json_dumps, py_slice_bounds, py_str, py_strip,
    py_truthy,
};

fn empty() -> Value {
    Value::String(String::new())
}

/// `str(inputs.get(key, ""))`.
fn text_of(inputs: &Map<String, Value>, key: &str) -> String {
    py_str(input_or(inputs, key, &empty()))
}

/// `"" if value is None else str(value)`.
fn text_or_empty(v: &Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        py_str(v)
    }
}

/// `concat`: the declared input pins in order (`a`..`z` then others when there are none),
/// joined with `concatConfig.separator` (default `" "`, escapes decoded); null is `""`.
pub fn concat(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let separator = ctx
        .data_field("concatConfig")
        .and_then(|c| c.get("separator"))
        .and_then(Value::as_str)
        .unwrap_or(" ");
    let separator = decode_ui_escapes(separator);
    let declared: Vec<&str> = ctx
        .pin_order
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    let order: Vec<&str> = if declared.is_empty() {
        let mut letters: Vec<&str> = inputs
            .keys()
            .map(String::as_str)
            .filter(|k| k.len() == 1 && k.bytes().all(|b| b.is_ascii_lowercase()))
            .collect();
        letters.sort_unstable();
        let mut others: Vec<&str> = inputs
            .keys()
            .map(String::as_str)
            .filter(|k| !letters.contains(k))
            .collect();
        others.sort_unstable();
        letters.extend(others);
        letters
    } else {
        declared
    };
    let parts: Vec<String> = order
        .iter()
        .filter_map(|pid| inputs.get(*pid))
        .map(text_or_empty)
        .collect();
    Ok(Value::String(join_checked(
        "the concatenated string",
        &parts,
        &separator,
    )?))
}

/// `split(text, delimiter=",", trim=True, drop_empty=True, maxsplit)`.
pub fn split(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let text = text_or_empty(input(inputs, "text"));
    let comma = Value::String(",".into());
    let delimiter = decode_ui_escapes(&text_or_empty(input_or(inputs, "delimiter", &comma)));
    let trim = inputs.get("trim").is_none_or(py_truthy);
    let drop_empty = inputs.get("drop_empty").is_none_or(py_truthy);
    let mut parts: Vec<String> = if delimiter.is_empty() {
        if text.is_empty() {
            Vec::new()
        } else {
            vec![text.clone()]
        }
    } else {
        let maxsplit = match inputs.get("maxsplit") {
            Some(v) if !v.is_null() => py_int(v).ok(),
            _ => None,
        };
        if maxsplit.is_some_and(|n| n > i128::from(i64::MAX) || n < i128::from(i64::MIN)) {
            return Err(super::PyException::new(
                "OverflowError",
                "Python int too large to convert to C ssize_t",
            ));
        }
        match maxsplit {
            Some(n) if n >= 0 => {
                let limit = usize::try_from(n)
                    .unwrap_or(usize::MAX - 1)
                    .saturating_add(1);
                text.splitn(limit, delimiter.as_str())
                    .map(String::from)
                    .collect()
            }
            _ => text.split(delimiter.as_str()).map(String::from).collect(),
        }
    };
    if trim {
        parts = parts.iter().map(|p| py_strip(p).to_string()).collect();
    }
    if drop_empty {
        parts.retain(|p| !p.is_empty());
    }
    Ok(Value::Array(parts.into_iter().map(Value::String).collect()))
}

/// `join(items, delimiter=",")`: a non-list is one item; null items are `""`.
pub fn join(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let items: Vec<Value> = match input(inputs, "items") {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let comma = Value::String(",".into());
    let delimiter = decode_ui_escapes(&py_str(input_or(inputs, "delimiter", &comma)));
    let parts: Vec<String> = items.iter().map(text_or_empty).collect();
    Ok(Value::String(join_checked(
        "the joined string",
        &parts,
        &delimiter,
    )?))
}

/// `format(template, values)`: Python `template.format(**values)` when values is an object.
pub fn format(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let template = text_of(inputs, "template");
    let empty_obj = Value::Object(Map::new());
    match input_or(inputs, "values", &empty_obj) {
        Value::Object(values) => Ok(Value::String(str_format(&template, values)?)),
        _ => Ok(Value::String(template)),
    }
}

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*(.*?)\s*\}\}").expect("static regex"));
static PATH_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([^.\[\]]+)|\[(\d+)\]").expect("static regex"));
static JOIN_FILTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^join\((.*)\)$").expect("static regex"));

enum PathToken {
    Key(String),
    Index(usize),
}

/// `a.b[0]` style path tokens (keys are stripped; empty keys dropped).
fn path_tokens(path: &str) -> Vec<PathToken> {
    let mut out = Vec::new();
    for caps in PATH_TOKEN.captures_iter(py_strip(path)) {
        if let Some(k) = caps.get(1) {
            let k = py_strip(k.as_str());
            if !k.is_empty() {
                out.push(PathToken::Key(k.to_string()));
            }
        } else if let Some(i) = caps.get(2).and_then(|m| m.as_str().parse().ok()) {
            out.push(PathToken::Index(i));
        }
    }
    out
}

/// Nested lookup through dict keys and list indices; `None` when anything is missing.
pub(crate) fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let tokens = path_tokens(path);
    if tokens.is_empty() {
        return None;
    }
    let mut current = value;
    for tok in &tokens {
        current = match (current, tok) {
            (Value::Object(map), PathToken::Key(k)) => map.get(k)?,
            (Value::Array(items), PathToken::Index(i)) => items.get(*i)?,
            (Value::Array(items), PathToken::Key(k))
                if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) =>
            {
                items.get(k.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

fn apply_filters(mut cur: Value, filters: &[&str]) -> Result<Value, PyException> {
    for f in filters {
        let f = py_strip(f);
        if f.is_empty() {
            continue;
        }
        if f == "json" {
            let opts = DumpOptions {
                sort_keys: true,
                ..Default::default()
            };
            cur = Value::String(py_json_dumps(&cur, opts));
        } else if f.starts_with("join") {
            let mut delim = ", ".to_string();
            if let Some(caps) = JOIN_FILTER.captures(f) {
                let raw = py_strip(caps.get(1).map_or("", |m| m.as_str()));
                let quoted = raw.len() >= 2
                    && ((raw.starts_with('"') && raw.ends_with('"'))
                        || (raw.starts_with('\'') && raw.ends_with('\'')));
                delim = if quoted {
                    raw[1..raw.len() - 1].to_string()
                } else {
                    raw.to_string()
                };
            }
            cur = Value::String(match &cur {
                Value::Array(items) => join_checked(
                    "the joined placeholder",
                    &items.iter().map(text_or_empty).collect::<Vec<_>>(),
                    &delim,
                )?,
                other => text_or_empty(other),
            });
        } else if f == "trim" {
            cur = Value::String(py_strip(&text_or_empty(&cur)).to_string());
        } else if f == "lower" {
            cur = Value::String(text_or_empty(&cur).to_lowercase());
        } else if f == "upper" {
            cur = Value::String(text_or_empty(&cur).to_uppercase());
        }
    }
    Ok(cur)
}

/// `string_template`: `{{path | filter ...}}` placeholders, looked up in the node's other
/// input pins, then its `vars` object, then the live run vars. Lists and objects render as
/// JSON; missing values as `""`.
pub fn string_template(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let mut template = input(inputs, "template");
    if !py_truthy(template) {
        template = ctx
            .literal_value()
            .filter(|v| v.is_string())
            .unwrap_or(&Value::Null);
    }
    let template = if py_truthy(template) {
        py_str(template)
    } else {
        String::new()
    };
    let pins: Map<String, Value> = inputs
        .iter()
        .filter(|(k, _)| k.as_str() != "template" && k.as_str() != "vars" && !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let pins = Value::Object(pins);
    let vars_obj = match input(inputs, "vars") {
        v @ Value::Object(_) => v.clone(),
        _ => Value::Object(Map::new()),
    };
    let run_vars = Value::Object(ctx.vars.clone());
    // A template can repeat a large value (`{{a}}{{a}}...`): the text is refused past the limit before it
    // grows further.
    let mut rendered = String::new();
    let mut last = 0;
    for caps in PLACEHOLDER.captures_iter(&template) {
        let Some(whole) = caps.get(0) else { continue };
        let expr = caps.get(1).map_or("", |m| m.as_str());
        let parts: Vec<&str> = expr.split('|').map(py_strip).collect();
        let path = parts.first().copied().unwrap_or("");
        let found = [&pins, &vars_obj, &run_vars]
            .into_iter()
            .find_map(|src| get_path(src, path).filter(|v| !v.is_null()));
        let text = match found {
            None => String::new(),
            Some(value) => match apply_filters(value.clone(), &parts[1..])? {
                Value::Null => String::new(),
                v @ (Value::Array(_) | Value::Object(_)) => {
                    py_json_dumps(&v, DumpOptions::default())
                }
                v => py_str(&v),
            },
        };
        let literal = &template[last..whole.start()];
        let len = rendered.len() + literal.len() + text.len();
        if len > MAX_BUILT_TEXT_BYTES {
            return Err(too_large("the rendered template", len));
        }
        rendered.push_str(literal);
        rendered.push_str(&text);
        last = whole.end();
    }
    rendered.push_str(&template[last..]);
    Ok(Value::String(rendered))
}

/// `uppercase(text)`.
pub fn uppercase(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::String(text_of(inputs, "text").to_uppercase()))
}

/// `lowercase(text)`.
pub fn lowercase(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::String(text_of(inputs, "text").to_lowercase()))
}

/// `trim(text)`: Python `str.strip()`.
pub fn trim(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::String(
        py_strip(&text_of(inputs, "text")).to_string(),
    ))
}

/// `substring(text, start=0, end)`: Python slicing by code points.
pub fn substring(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let text = text_of(inputs, "text");
    let start = py_int(input_or(inputs, "start", &Value::from(0)))?;
    let end = match input(inputs, "end") {
        Value::Null => None,
        v => Some(py_int(v)?),
    };
    let chars: Vec<char> = text.chars().collect();
    let (s, e) = py_slice_bounds(chars.len(), start, end);
    Ok(Value::String(chars[s..e].iter().collect()))
}

/// `length(text)`: code points of `str(text)`.
pub fn length(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::from(text_of(inputs, "text").chars().count()))
}

/// `is_empty_string(text)`: null counts as empty.
pub fn is_empty_string(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Bool(text_or_empty(input(inputs, "text")).is_empty()))
}

/// `contains(text, pattern)`: substring test; an empty or null pattern is `False`.
pub fn contains(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let pattern = input(inputs, "pattern");
    if pattern.is_null() {
        return Ok(Value::Bool(false));
    }
    let pattern = py_str(pattern);
    if pattern.is_empty() {
        return Ok(Value::Bool(false));
    }
    Ok(Value::Bool(
        text_or_empty(input(inputs, "text")).contains(&pattern),
    ))
}

/// `replace(text, pattern, replacement, mode)`: mode `all` (default), `first`, or a count.
pub fn replace(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let text = text_or_empty(input(inputs, "text"));
    let pattern = input(inputs, "pattern");
    if pattern.is_null() {
        return Ok(Value::String(text));
    }
    let pattern = py_str(pattern);
    if pattern.is_empty() {
        return Ok(Value::String(text));
    }
    let replacement = text_or_empty(input(inputs, "replacement"));
    let mode_raw = input(inputs, "mode");
    let mode = if mode_raw.is_null() {
        "all".to_string()
    } else {
        py_strip(&py_str(mode_raw)).to_lowercase()
    };
    let count = match mode.as_str() {
        "first" | "once" | "1" => 1,
        "all" | "*" | "global" => usize::MAX,
        _ => match py_int(mode_raw) {
            Ok(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => usize::MAX,
        },
    };
    // Each match can grow by the replacement's length: refuse before building a result far larger
    // than the input.
    if replacement.len() > pattern.len() {
        let matches = text.matches(pattern.as_str()).take(count).count();
        let grown = matches.saturating_mul(replacement.len() - pattern.len());
        check_built(
            "the replaced string",
            text.len().saturating_add(grown),
            text.len() + replacement.len(),
        )?;
    }
    Ok(Value::String(text.replacen(&pattern, &replacement, count)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{CtxParts, run};
    use serde_json::json;

    #[test]
    fn growth_from_the_input_is_refused_before_allocating() {
        let text = "a".repeat(1 << 20);
        let wide = "b".repeat(1 << 10);
        // A megabyte of matches times a kilobyte of replacement would be a gigabyte.
        let e = run(
            "replace",
            json!({"text": text, "pattern": "a", "replacement": wide}),
        )
        .unwrap_err();
        assert_eq!(e.kind, "MemoryError");
        let once = run(
            "replace",
            json!({"text": text, "pattern": "a", "replacement": wide, "mode": "first"}),
        )
        .unwrap();
        assert_eq!(once.as_str().map(str::len), Some((1 << 20) - 1 + (1 << 10)));
        // Shrinking is never refused, whatever the size.
        let shrunk = run(
            "replace",
            json!({"text": text, "pattern": "aa", "replacement": "c"}),
        );
        assert_eq!(shrunk.unwrap().as_str().map(str::len), Some(1 << 19));
        // A kilobyte of delimiter between 100,000 items is 100 MB.
        let items: Vec<serde_json::Value> = (0..100_000).map(|_| json!("")).collect();
        let e = run("join", json!({"items": items, "delimiter": wide})).unwrap_err();
        assert_eq!(e.kind, "MemoryError");
        let e = run(
            "string_template",
            json!({"template": format!("{{{{items | join({wide})}}}}"), "items": items}),
        )
        .unwrap_err();
        assert_eq!(e.kind, "MemoryError");
        // A template repeating a megabyte value a hundred times.
        let e = run(
            "string_template",
            json!({"template": "{{a}}".repeat(100), "a": text}),
        )
        .unwrap_err();
        assert_eq!(e.kind, "MemoryError");
        assert_eq!(
            run(
                "string_template",
                json!({"template": "<{{a}}|{{ b | upper }}>", "a": 1, "b": "x"})
            )
            .unwrap(),
            json!("<1|X>")
        );
        let sep = CtxParts::new("concat").with_data(json!({
            "concatConfig": {"separator": "s".repeat(40 << 20)},
            "inputs": [{"id": "a", "type": "string"}, {"id": "b", "type": "string"},
                       {"id": "c", "type": "string"}]
        }));
        let e = sep.run(json!({"a": "1", "b": "2", "c": "3"})).unwrap_err();
        assert_eq!(e.kind, "MemoryError");
    }

    #[test]
    fn concat_uses_separator_and_pin_order() {
        let parts = CtxParts::new("concat").with_data(json!({
            "inputs": [{"id": "a", "type": "string"}, {"id": "b", "type": "string"}]
        }));
        // The VisualFlow concat joins with " " by default (peer-observed "HELLO,  ALICE").
        assert_eq!(
            parts.run(json!({"a": "Hello, ", "b": "Alice"})).unwrap(),
            json!("Hello,  Alice")
        );
        assert_eq!(parts.run(json!({"b": "x"})).unwrap(), json!("x"));
        assert_eq!(
            parts.run(json!({"a": null, "b": 2.0})).unwrap(),
            json!(" 2.0")
        );
        let sep = CtxParts::new("concat").with_data(json!({
            "concatConfig": {"separator": "\\n"},
            "inputs": [{"id": "b", "type": "string"}, {"id": "a", "type": "string"}]
        }));
        assert_eq!(
            sep.run(json!({"a": true, "b": [1, "x"]})).unwrap(),
            json!("[1, 'x']\nTrue")
        );
        // No pin metadata: single letters sorted, then the other keys sorted.
        assert_eq!(
            run("concat", json!({"zz": "3", "b": "2", "a": "1"})).unwrap(),
            json!("1 2 3")
        );
    }

    #[test]
    fn split_matches_python_defaults() {
        assert_eq!(
            run("split", json!({"text": "A@@B@@", "delimiter": "@@"})).unwrap(),
            json!(["A", "B"])
        );
        assert_eq!(
            run("split", json!({"text": " a, b ,,c "})).unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            run(
                "split",
                json!({"text": " a, b ,,c ", "trim": false, "drop_empty": false})
            )
            .unwrap(),
            json!([" a", " b ", "", "c "])
        );
        assert_eq!(
            run("split", json!({"text": "x\ny", "delimiter": "\\n"})).unwrap(),
            json!(["x", "y"])
        );
        assert_eq!(
            run("split", json!({"text": "a,b,c", "maxsplit": 1})).unwrap(),
            json!(["a", "b,c"])
        );
        assert_eq!(
            run("split", json!({"text": "a,b,c", "maxsplit": "0"})).unwrap(),
            json!(["a,b,c"])
        );
        assert_eq!(
            run("split", json!({"text": "a,b,c", "maxsplit": "x"})).unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            run("split", json!({"text": "abc", "delimiter": ""})).unwrap(),
            json!(["abc"])
        );
        assert_eq!(run("split", json!({"text": null})).unwrap(), json!([]));
        assert_eq!(
            run("split", json!({"text": 12.5, "delimiter": "."})).unwrap(),
            json!(["12", "5"])
        );
        let e = run("split", json!({"text": "a", "maxsplit": 1e300})).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                "OverflowError",
                "Python int too large to convert to C ssize_t"
            )
        );
    }

    #[test]
    fn join_and_format() {
        assert_eq!(
            run("join", json!({"items": ["a", null, 1, true]})).unwrap(),
            json!("a,,1,True")
        );
        assert_eq!(
            run("join", json!({"items": "abc", "delimiter": "\\t"})).unwrap(),
            json!("abc")
        );
        assert_eq!(run("join", json!({"items": null})).unwrap(), json!(""));
        assert_eq!(
            run("join", json!({"items": [1, 2], "delimiter": null})).unwrap(),
            json!("1None2")
        );
        assert_eq!(
            run(
                "format",
                json!({"template": "Hi {name}, {n:.1f}", "values": {"name": "Bo", "n": 2}})
            )
            .unwrap(),
            json!("Hi Bo, 2.0")
        );
        assert_eq!(
            run("format", json!({"template": "{x}", "values": [1]})).unwrap(),
            json!("{x}")
        );
        let err = run(
            "format",
            json!({"template": "list of {role, winner, why}", "values": {}}),
        )
        .unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            ("KeyError", "'role, winner, why'")
        );
    }

    #[test]
    fn template_rendering() {
        let parts =
            CtxParts::new("string_template").with_vars(json!({"user": {"name": "Run"}, "n": 3}));
        let out = parts
            .run(json!({
                "template": "Hi {{ user.name }} / {{who}} / {{ tags | join(\" - \") }} / {{ obj | json }} / {{ obj }} / {{missing}} / {{ n }} / {{ s | trim | upper }}",
                "vars": {"user": {"name": "Vars"}, "tags": ["a", "b"], "obj": {"b": 1, "a": [true]}, "s": "  x "},
                "who": "pin"
            }))
            .unwrap();
        assert_eq!(
            out,
            json!(
                "Hi Vars / pin / a - b / {\"a\": [true], \"b\": 1} / {\"b\": 1, \"a\": [true]} /  / 3 / X"
            )
        );
        assert_eq!(
            parts.run(json!({"template": "{{user.name}}"})).unwrap(),
            json!("Run")
        );
        assert_eq!(
            parts
                .run(json!({"template": "{{ list[1] }}", "vars": {"list": [0, 1.5]}}))
                .unwrap(),
            json!("1.5")
        );
        let lit = CtxParts::new("string_template").with_data(json!({"literalValue": "x={{x}}"}));
        assert_eq!(
            lit.run(json!({"vars": {"x": null}, "x": 2})).unwrap(),
            json!("x=2")
        );
    }

    #[test]
    fn simple_text_nodes() {
        assert_eq!(
            run("uppercase", json!({"text": "straße"})).unwrap(),
            json!("STRASSE")
        );
        assert_eq!(
            run("uppercase", json!({"text": null})).unwrap(),
            json!("NONE")
        );
        assert_eq!(
            run("lowercase", json!({"text": "ÀB"})).unwrap(),
            json!("àb")
        );
        assert_eq!(
            run("trim", json!({"text": "\u{1c} x \u{a0}"})).unwrap(),
            json!("x")
        );
        assert_eq!(run("length", json!({"text": "héllo"})).unwrap(), json!(5));
        assert_eq!(run("length", json!({"text": null})).unwrap(), json!(4));
        assert_eq!(run("length", json!({"text": 1.0})).unwrap(), json!(3));
        assert_eq!(run("length", json!({})).unwrap(), json!(0));
        assert_eq!(
            run(
                "substring",
                json!({"text": "abcdef", "start": 1, "end": -1})
            )
            .unwrap(),
            json!("bcde")
        );
        assert_eq!(
            run("substring", json!({"text": "abcdef", "start": "-2"})).unwrap(),
            json!("ef")
        );
        assert_eq!(
            run("substring", json!({"text": "abc", "start": 2.9, "end": 99})).unwrap(),
            json!("c")
        );
        let err = run("substring", json!({"text": "abc", "start": null})).unwrap_err();
        assert_eq!(err.kind, "TypeError");
        assert_eq!(
            run("is_empty_string", json!({"text": null})).unwrap(),
            json!(true)
        );
        assert_eq!(
            run("is_empty_string", json!({"text": " "})).unwrap(),
            json!(false)
        );
        assert_eq!(
            run("contains", json!({"text": "hello", "pattern": "ell"})).unwrap(),
            json!(true)
        );
        assert_eq!(
            run("contains", json!({"text": "hello", "pattern": ""})).unwrap(),
            json!(false)
        );
        assert_eq!(
            run("contains", json!({"text": null, "pattern": "None"})).unwrap(),
            json!(false)
        );
        assert_eq!(
            run("contains", json!({"text": [1, 2], "pattern": 2})).unwrap(),
            json!(true)
        );
    }

    #[test]
    fn replace_modes() {
        let r = |mode: serde_json::Value| {
            run(
                "replace",
                json!({"text": "a-a-a-a", "pattern": "a", "replacement": "b", "mode": mode}),
            )
            .unwrap()
        };
        assert_eq!(r(json!(null)), json!("b-b-b-b"));
        assert_eq!(r(json!("First")), json!("b-a-a-a"));
        assert_eq!(r(json!(" * ")), json!("b-b-b-b"));
        assert_eq!(r(json!("2")), json!("b-b-a-a"));
        assert_eq!(r(json!(3.0)), json!("b-b-b-a"));
        assert_eq!(r(json!(0)), json!("a-a-a-a"));
        assert_eq!(r(json!(-1)), json!("b-b-b-b"));
        assert_eq!(r(json!(true)), json!("b-a-a-a"));
        assert_eq!(r(json!("bogus")), json!("b-b-b-b"));
        assert_eq!(
            run("replace", json!({"text": "abc", "pattern": ""})).unwrap(),
            json!("abc")
        );
        assert_eq!(
            run("replace", json!({"text": "abc", "pattern": "b"})).unwrap(),
            json!("ac")
        );
    }
}

//! Object nodes: `get`, `set`, `merge`, `make_object`, `break_object`, `edit_json_schema`,
//! and the internal `path_mux`.

use serde_json::{Map, Value};

use super::json::parse_text;
use super::string::get_path;
use super::{BuiltinCtx, PyResult, input, input_or};
use pycompat::repr::{lenient_index, py_dict, py_iter, py_str, py_strip, py_truthy};

fn empty_obj() -> Value {
    Value::Object(Map::new())
}

fn single(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), v);
    Value::Object(m)
}

/// `get(object, key, default)`: a dotted/bracket path; a missing or null value gives `default`.
pub fn get(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let obj_default = empty_obj();
    let obj = input_or(inputs, "object", &obj_default);
    let key = py_str(input_or(inputs, "key", &Value::String(String::new())));
    let value = get_path(obj, &key).filter(|v| !v.is_null());
    Ok(single(
        "value",
        value.unwrap_or(input(inputs, "default")).clone(),
    ))
}

fn set_path(map: &mut Map<String, Value>, parts: &[&str], value: Value) {
    match parts {
        [] => {}
        [last] => {
            map.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = map.entry((*first).to_string()).or_insert(Value::Null);
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(next) = entry {
                set_path(next, rest, value);
            }
        }
    }
}

/// `set(object, key, value)`: a copy with `value` at the dotted `key` (intermediates created).
pub fn set(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let obj_default = empty_obj();
    let mut obj = py_dict(input_or(inputs, "object", &obj_default))?;
    let key = py_str(input_or(inputs, "key", &Value::String(String::new())));
    let parts: Vec<&str> = key.split('.').collect();
    set_path(&mut obj, &parts, input(inputs, "value").clone());
    Ok(Value::Object(obj))
}

/// `merge(a, b)`: `{**dict(a), **dict(b)}`.
pub fn merge(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let obj_default = empty_obj();
    let mut a = py_dict(input_or(inputs, "a", &obj_default))?;
    let b = py_dict(input_or(inputs, "b", &obj_default))?;
    for (k, v) in b {
        a.insert(k, v);
    }
    Ok(Value::Object(a))
}

/// `make_object`: every input whose name does not start with `_`.
pub fn make_object(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Object(
        inputs
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
}

/// The executor's `break_object` path lookup: `.`-separated keys, digit parts index lists.
fn dotted_get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    super::vars::descend(value, path.split('.'))
}

/// `break_object(object)`: one output per `breakConfig.selectedPaths` entry; a JSON-ish
/// string object is parsed first (leniently, as `parse_json`).
pub fn break_object(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let paths: Vec<String> = ctx
        .data_field("breakConfig")
        .and_then(|c| c.get("selectedPaths"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(|p| py_strip(p).to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut src = input(inputs, "object").clone();
    if let Value::String(s) = &src
        && !py_strip(s).is_empty()
        && let Ok(parsed) = parse_text(s, true)
    {
        src = parsed;
    }
    let mut out = Map::new();
    for path in paths {
        let v = dotted_get(&src, &path).cloned().unwrap_or(Value::Null);
        out.insert(path, v);
    }
    Ok(Value::Object(out))
}

fn as_object(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

/// `base.get(key) or []` iterated as Python would.
fn required_items(v: Option<&Value>) -> Result<Vec<Value>, super::PyException> {
    match v {
        Some(v) if py_truthy(v) => py_iter(v),
        _ => Ok(Vec::new()),
    }
}

fn merge_json_schema(
    base: Option<&Value>,
    additions: Option<&Value>,
) -> Result<Map<String, Value>, super::PyException> {
    let base_root = as_object(base);
    let additions_root = as_object(additions);
    if base_root.is_empty() {
        return Ok(additions_root);
    }
    if additions_root.is_empty() {
        return Ok(base_root);
    }
    let mut properties = as_object(base_root.get("properties"));
    let mut added = Vec::new();
    for (name, spec) in as_object(additions_root.get("properties")) {
        if name.is_empty() || properties.contains_key(&name) {
            continue;
        }
        properties.insert(name.clone(), spec);
        added.push(name);
    }
    let mut required: Vec<String> = Vec::new();
    for item in required_items(base_root.get("required"))? {
        if let Value::String(s) = item
            && !py_strip(&s).is_empty()
            && !required.contains(&s)
        {
            required.push(s);
        }
    }
    for item in required_items(additions_root.get("required"))? {
        if let Value::String(s) = item
            && !py_strip(&s).is_empty()
            && !required.contains(&s)
            && added.contains(&s)
        {
            required.push(s);
        }
    }
    let mut merged = base_root.clone();
    let ty = [base_root.get("type"), additions_root.get("type")]
        .into_iter()
        .flatten()
        .find(|v| py_truthy(v))
        .cloned()
        .unwrap_or_else(|| Value::String("object".into()));
    merged.insert("type".into(), ty);
    merged.insert("properties".into(), Value::Object(properties));
    for defs_key in ["$defs", "definitions"] {
        let additions_defs = as_object(additions_root.get(defs_key));
        if additions_defs.is_empty() {
            continue;
        }
        let mut next = as_object(base_root.get(defs_key));
        for (name, spec) in additions_defs {
            next.entry(name).or_insert(spec);
        }
        merged.insert(defs_key.into(), Value::Object(next));
    }
    if required.is_empty() {
        merged.shift_remove("required");
    } else {
        merged.insert(
            "required".into(),
            Value::Array(required.into_iter().map(Value::String).collect()),
        );
    }
    Ok(merged)
}

/// `edit_json_schema(schema)`: adds the fields authored in `literalValue` without
/// overwriting existing ones.
pub fn edit_json_schema(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let merged = merge_json_schema(inputs.get("schema"), ctx.literal_value())?;
    Ok(single("schema", Value::Object(merged)))
}

/// `path_mux(select, in0..inN, fallback)`: the selected arm (missing ≠ null), else `fallback`.
pub fn path_mux(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let idx: i128 = match input_or(inputs, "select", &Value::from(0)) {
        Value::Bool(b) => i128::from(*b),
        other => lenient_index(other),
    };
    let key = format!("in{idx}");
    let out = if let Some(v) = inputs.get(&key) {
        v.clone()
    } else {
        inputs.get("fallback").cloned().unwrap_or(Value::Null)
    };
    Ok(single("out", out))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{CtxParts, run};
    use serde_json::json;

    #[test]
    fn get_paths_and_defaults() {
        let obj = json!({"a": {"b": [10, {"c": "x"}]}, "n": null, "l": [1, 2]});
        let g = |key: serde_json::Value| {
            run("get", json!({"object": obj, "key": key, "default": "D"})).unwrap()
        };
        assert_eq!(g(json!("a.b[1].c")), json!({"value": "x"}));
        assert_eq!(g(json!("a.b.0")), json!({"value": 10}));
        assert_eq!(g(json!("a.b[x]")), json!({"value": "D"}));
        assert_eq!(g(json!("n")), json!({"value": "D"}));
        assert_eq!(g(json!("zz")), json!({"value": "D"}));
        assert_eq!(g(json!("")), json!({"value": "D"}));
        assert_eq!(g(json!(1)), json!({"value": "D"}));
        assert_eq!(
            run("get", json!({"object": [5, 6], "key": "[1]"})).unwrap(),
            json!({"value": 6})
        );
        assert_eq!(
            run("get", json!({"object": {"a": 1}, "key": "a"})).unwrap(),
            json!({"value": 1})
        );
        assert_eq!(
            run("get", json!({"key": "a"})).unwrap(),
            json!({"value": null})
        );
    }

    #[test]
    fn set_and_merge() {
        assert_eq!(
            run(
                "set",
                json!({"object": {"a": 1, "b": {"c": 2}}, "key": "b.d.e", "value": [1]})
            )
            .unwrap(),
            json!({"a": 1, "b": {"c": 2, "d": {"e": [1]}}})
        );
        assert_eq!(
            run("set", json!({"object": {"a": 5}, "key": "a.x", "value": 1})).unwrap(),
            json!({"a": {"x": 1}})
        );
        assert_eq!(run("set", json!({"key": "k"})).unwrap(), json!({"k": null}));
        assert_eq!(
            run("set", json!({"object": {"a": 1}, "key": null, "value": 2})).unwrap(),
            json!({"a": 1, "None": 2})
        );
        let e = run("set", json!({"object": null, "key": "a"})).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            ("TypeError", "'NoneType' object is not iterable")
        );
        assert_eq!(
            run(
                "merge",
                json!({"a": {"x": 1, "y": 2}, "b": {"y": 3, "z": 4}})
            )
            .unwrap(),
            json!({"x": 1, "y": 3, "z": 4})
        );
        assert_eq!(
            run("merge", json!({"b": [["k", "v"]]})).unwrap(),
            json!({"k": "v"})
        );
        assert!(run("merge", json!({"a": 3})).is_err());
    }

    #[test]
    fn make_object_skips_private_keys() {
        assert_eq!(
            run(
                "make_object",
                json!({"b": 1, "_pin_order": ["a"], "a": null})
            )
            .unwrap(),
            json!({"b": 1, "a": null})
        );
    }

    #[test]
    fn break_object_paths_and_json_strings() {
        let parts = CtxParts::new("break_object").with_data(json!({
            "breakConfig": {"selectedPaths": ["data", " result.tasks ", "list.1", "", 5, "missing.x"]}
        }));
        let obj = json!({"data": {"k": 1}, "result": {"tasks": ["t"]}, "list": ["a", "b"]});
        assert_eq!(
            parts.run(json!({"object": obj})).unwrap(),
            json!({"data": {"k": 1}, "result.tasks": ["t"], "list.1": "b", "missing.x": null})
        );
        let text = "Here you go:\n```json\n{\"data\": 7, \"list\": [0, 9]}\n```";
        assert_eq!(
            parts.run(json!({"object": text})).unwrap(),
            json!({"data": 7, "result.tasks": null, "list.1": 9, "missing.x": null})
        );
        let fenced = "```json\n{\"data\": 7, \"list\": [0, 9]}\n```";
        assert_eq!(
            parts.run(json!({"object": fenced})).unwrap(),
            json!({"data": 7, "result.tasks": null, "list.1": 9, "missing.x": null})
        );
        // Unparseable text stays a string, so every path is null.
        assert_eq!(
            parts.run(json!({"object": "echo: hi"})).unwrap()["data"],
            json!(null)
        );
        assert_eq!(parts.run(json!({})).unwrap()["data"], json!(null));
    }

    #[test]
    fn edit_json_schema_adds_fields_only() {
        let parts = CtxParts::new("edit_json_schema").with_data(json!({
            "literalValue": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "c": {"type": "boolean"}},
                "required": ["a", "c", "zz"],
                "$defs": {"D": {"type": "string"}, "E": {"type": "null"}}
            }
        }));
        let base = json!({
            "title": "T",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "required": ["b", "b", " "],
            "$defs": {"D": {"type": "integer"}}
        });
        assert_eq!(
            parts.run(json!({"schema": base})).unwrap(),
            json!({"schema": {
                "title": "T",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
                "required": ["b", "c"],
                "$defs": {"D": {"type": "integer"}, "E": {"type": "null"}},
                "type": "object"
            }})
        );
        assert_eq!(
            parts.run(json!({"schema": null})).unwrap()["schema"]["required"],
            json!(["a", "c", "zz"])
        );
        let bare = CtxParts::new("edit_json_schema");
        assert_eq!(
            bare.run(json!({"schema": {"x": 1}})).unwrap(),
            json!({"schema": {"x": 1}})
        );
    }

    #[test]
    fn path_mux_selects_arms() {
        assert_eq!(
            run(
                "path_mux",
                json!({"select": 1, "in0": "a", "in1": null, "fallback": "f"})
            )
            .unwrap(),
            json!({"out": null})
        );
        assert_eq!(
            run("path_mux", json!({"select": "2.7", "in2": "c"})).unwrap(),
            json!({"out": "c"})
        );
        assert_eq!(
            run("path_mux", json!({"select": 5, "fallback": "f"})).unwrap(),
            json!({"out": "f"})
        );
        assert_eq!(
            run("path_mux", json!({"select": true, "in1": "t"})).unwrap(),
            json!({"out": "t"})
        );
        assert_eq!(
            run("path_mux", json!({"in0": 0})).unwrap(),
            json!({"out": 0})
        );
        assert_eq!(
            run("path_mux", json!({"select": "x"})).unwrap(),
            json!({"out": null})
        );
    }
}

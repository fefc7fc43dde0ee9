//! Literal nodes (`{"value": literalValue}` verbatim), `tools_allowlist` and `tool_parameters`.

use serde_json::{Map, Value};

use super::{BuiltinCtx, PyResult};
use pycompat::repr::py_strip;

/// `literal_string|number|boolean|json|array` and `json_schema`: the compiler pre-evaluates
/// them to `{"value": data.literalValue}`, uncoerced (null when absent).
pub fn literal(_inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let mut m = Map::new();
    m.insert(
        "value".into(),
        ctx.data_field("literalValue")
            .cloned()
            .unwrap_or(Value::Null),
    );
    Ok(Value::Object(m))
}

/// `tools_allowlist`: the non-empty tool names of `literalValue`, trimmed, first occurrence kept.
pub fn tools_allowlist(_inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let mut tools: Vec<Value> = Vec::new();
    if let Some(Value::Array(items)) = ctx.literal_value() {
        for name in items.iter().filter_map(Value::as_str).map(py_strip) {
            let name = Value::String(name.to_string());
            if name != "" && !tools.contains(&name) {
                tools.push(name);
            }
        }
    }
    let mut m = Map::new();
    m.insert("tools".into(), Value::Array(tools));
    Ok(Value::Object(m))
}

/// `tool_parameters`: each declared parameter pin echoed, plus
/// `tool_call{name: toolParametersConfig.tool, arguments: the non-null parameters}`.
pub fn tool_parameters(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let cfg = ctx.data_field("toolParametersConfig");
    let pick = |key: &str| {
        cfg.and_then(|c| c.get(key))
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    };
    let tool_name = pick("tool")
        .or_else(|| pick("name"))
        .and_then(Value::as_str)
        .map(|s| py_strip(s).to_string())
        .unwrap_or_default();
    let mut out = Map::new();
    let mut args = Map::new();
    for pid in ctx
        .pin_order
        .iter()
        .map(|p| py_strip(p))
        .filter(|p| !p.is_empty())
    {
        let value = inputs.get(pid).cloned().unwrap_or(Value::Null);
        if !value.is_null() {
            args.insert(pid.to_string(), value.clone());
        }
        out.insert(pid.to_string(), value);
    }
    let mut call = Map::new();
    call.insert("name".into(), Value::String(tool_name));
    call.insert("arguments".into(), Value::Object(args));
    out.insert("tool_call".into(), Value::Object(call));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::CtxParts;
    use serde_json::json;

    #[test]
    fn literals_are_verbatim() {
        for (ty, lit) in [
            ("literal_string", json!("Hello, ")),
            ("literal_number", json!("12")),
            ("literal_boolean", json!(0)),
            ("literal_json", json!({"a": [1]})),
            ("literal_array", json!("not an array")),
            ("json_schema", json!({"type": "object"})),
        ] {
            let parts = CtxParts::new(ty).with_data(json!({"literalValue": lit}));
            assert_eq!(parts.run(json!({})).unwrap(), json!({"value": lit}), "{ty}");
        }
        assert_eq!(
            CtxParts::new("literal_string").run(json!({})).unwrap(),
            json!({"value": null})
        );
    }

    #[test]
    fn tools_allowlist_dedups() {
        let parts = CtxParts::new("tools_allowlist").with_data(
            json!({"literalValue": [" read_file", "read_file", "", "  ", 3, "web_search"]}),
        );
        assert_eq!(
            parts.run(json!({})).unwrap(),
            json!({"tools": ["read_file", "web_search"]})
        );
        let bad = CtxParts::new("tools_allowlist").with_data(json!({"literalValue": "read_file"}));
        assert_eq!(bad.run(json!({})).unwrap(), json!({"tools": []}));
    }

    #[test]
    fn tool_parameters_builds_a_call() {
        let parts = CtxParts::new("tool_parameters").with_data(json!({
            "toolParametersConfig": {"tool": "", "name": " read_file "},
            "inputs": [{"id": "file_path", "type": "string"}, {"id": "start_line", "type": "number"}]
        }));
        assert_eq!(
            parts
                .run(json!({"file_path": "a.txt", "start_line": null, "extra": 1}))
                .unwrap(),
            json!({"file_path": "a.txt", "start_line": null,
                   "tool_call": {"name": "read_file", "arguments": {"file_path": "a.txt"}}})
        );
    }
}

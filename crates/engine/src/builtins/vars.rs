//! Pure variable readers: `get_var`, `get_vars`, `var_decl`, `bool_var`, `get_context`.
//! They read the live run vars, so they are recomputed on every pull.

use serde_json::{Map, Value};

use super::{BuiltinCtx, PyResult, input};
use pycompat::repr::{py_str, py_strip, py_truthy};

/// The executor's `_get_by_path`: `.`-separated keys; digit parts index lists.
pub(crate) fn get_by_path<'a>(root: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = root.get(parts.next()?)?;
    descend(first, parts)
}

/// Walks `parts` down from `current`: keys into objects, all-digit parts index lists.
pub(crate) fn descend<'a, 'p>(
    mut current: &'a Value,
    parts: impl Iterator<Item = &'p str>,
) -> Option<&'a Value> {
    for part in parts {
        current = match current {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                items.get(part.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

fn name_value(name: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.to_string()));
    m.insert("value".into(), value);
    Value::Object(m)
}

/// `get_var(name, default)`: the run var at a dotted path; `default` when it is missing.
pub fn get_var(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let raw = input(inputs, "name");
    let name = match raw {
        Value::String(s) => s.clone(),
        other if py_truthy(other) => py_str(other),
        _ => String::new(),
    };
    let name = py_strip(&name);
    let value = if name.is_empty() {
        None
    } else {
        get_by_path(ctx.vars, name).filter(|v| !v.is_null())
    };
    let value = value
        .or_else(|| inputs.get("default"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("value".into(), value);
    Ok(Value::Object(m))
}

/// `get_vars`: one output per declared output pin, named by its var path (null if unset).
pub fn get_vars(_inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let mut out = Map::new();
    for pin in ctx.output_pins {
        let path = py_strip(pin);
        if path.is_empty() {
            continue;
        }
        let v = get_by_path(ctx.vars, path).cloned().unwrap_or(Value::Null);
        out.insert(pin.clone(), v);
    }
    Ok(Value::Object(out))
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn type_default(ty: &str) -> Value {
    match ty {
        "boolean" => Value::Bool(false),
        "number" => Value::from(0),
        "string" => Value::String(String::new()),
        "array" => Value::Array(Vec::new()),
        "object" => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// `var_decl`: `literalValue {name, type, default}`; the run var when it has the declared
/// type, else the default (or the type's zero value when the default has the wrong type).
pub fn var_decl(_inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let cfg = ctx.data_field("literalValue").and_then(Value::as_object);
    let field = |k: &str| cfg.and_then(|c| c.get(k));
    let name = field("name")
        .and_then(Value::as_str)
        .map(py_strip)
        .unwrap_or("");
    let ty = field("type")
        .and_then(Value::as_str)
        .map(py_strip)
        .filter(|t| {
            matches!(
                *t,
                "boolean" | "number" | "string" | "object" | "array" | "any"
            )
        })
        .unwrap_or("any");
    let default = field("default").cloned().unwrap_or(Value::Null);
    let fallback = if type_matches(ty, &default) {
        default
    } else {
        type_default(ty)
    };
    if name.is_empty() {
        return Ok(name_value(name, fallback));
    }
    let raw = get_by_path(ctx.vars, name).cloned().unwrap_or(Value::Null);
    if type_matches(ty, &raw) {
        return Ok(name_value(name, raw));
    }
    Ok(name_value(name, fallback))
}

/// `bool_var`: `literalValue` is the var name or `{name, default}`; a non-bool var reads
/// as the default.
pub fn bool_var(_inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let (name, default) = match ctx.data_field("literalValue") {
        Some(Value::String(s)) => (py_strip(s).to_string(), false),
        Some(Value::Object(cfg)) => (
            cfg.get("name")
                .and_then(Value::as_str)
                .map(|s| py_strip(s).to_string())
                .unwrap_or_default(),
            cfg.get("default").and_then(Value::as_bool).unwrap_or(false),
        ),
        _ => (String::new(), false),
    };
    let value = if name.is_empty() {
        default
    } else {
        get_by_path(ctx.vars, &name)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    Ok(name_value(&name, Value::Bool(value)))
}

/// `get_context`: `vars.context` with its `task` (a string) and `messages` (a list).
pub fn get_context(_inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let context = match ctx.vars.get("context") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let task = match context.get("task") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if py_truthy(v) => py_str(v),
        _ => String::new(),
    };
    let messages = match context.get("messages") {
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other.clone()],
    };
    let mut out = Map::new();
    out.insert("context".into(), Value::Object(context));
    out.insert("task".into(), Value::String(task));
    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::CtxParts;
    use serde_json::json;

    fn vars() -> serde_json::Value {
        json!({"count": 3, "flag": true, "user": {"tags": ["a", "b"]}, "name": "x", "nothing": null,
               "context": {"task": "do it", "messages": [{"role": "user", "content": "hi"}]}})
    }

    #[test]
    fn get_var_reads_dotted_paths() {
        let parts = CtxParts::new("get_var").with_vars(vars());
        assert_eq!(
            parts.run(json!({"name": "count"})).unwrap(),
            json!({"value": 3})
        );
        assert_eq!(
            parts.run(json!({"name": " user.tags.1 "})).unwrap(),
            json!({"value": "b"})
        );
        assert_eq!(
            parts.run(json!({"name": "user.tags.9"})).unwrap(),
            json!({"value": null})
        );
        assert_eq!(
            parts.run(json!({"name": "missing", "default": 7})).unwrap(),
            json!({"value": 7})
        );
        assert_eq!(
            parts.run(json!({"name": "nothing", "default": 1})).unwrap(),
            json!({"value": 1})
        );
        assert_eq!(
            parts.run(json!({"name": null, "default": 5})).unwrap(),
            json!({"value": 5})
        );
        assert_eq!(parts.run(json!({})).unwrap(), json!({"value": null}));
    }

    #[test]
    fn get_vars_uses_output_pins() {
        let parts = CtxParts::new("get_vars")
            .with_vars(vars())
            .with_data(json!({"outputs": [{"id": "count", "type": "number"}, {"id": "user.tags", "type": "array"}, {"id": "nope", "type": "any"}]}));
        assert_eq!(
            parts.run(json!({})).unwrap(),
            json!({"count": 3, "user.tags": ["a", "b"], "nope": null})
        );
    }

    #[test]
    fn var_decl_types_and_defaults() {
        let decl = |cfg: serde_json::Value| {
            CtxParts::new("var_decl")
                .with_vars(vars())
                .with_data(json!({"literalValue": cfg}))
                .run(json!({}))
                .unwrap()
        };
        assert_eq!(
            decl(json!({"name": "count", "type": "number", "default": 1})),
            json!({"name": "count", "value": 3})
        );
        assert_eq!(
            decl(json!({"name": "flag", "type": "number", "default": 1})),
            json!({"name": "flag", "value": 1})
        );
        assert_eq!(
            decl(json!({"name": "flag", "type": "string", "default": 1})),
            json!({"name": "flag", "value": ""})
        );
        assert_eq!(
            decl(json!({"name": "user", "type": "object"})),
            json!({"name": "user", "value": {"tags": ["a", "b"]}})
        );
        assert_eq!(
            decl(json!({"name": "missing", "type": "array"})),
            json!({"name": "missing", "value": []})
        );
        assert_eq!(
            decl(json!({"name": "missing", "type": "weird", "default": 2})),
            json!({"name": "missing", "value": null})
        );
        assert_eq!(
            decl(json!({"name": "", "type": "boolean", "default": true})),
            json!({"name": "", "value": true})
        );
        assert_eq!(decl(json!("count")), json!({"name": "", "value": null}));
    }

    #[test]
    fn bool_var_reads_booleans_only() {
        let bv = |cfg: serde_json::Value| {
            CtxParts::new("bool_var")
                .with_vars(vars())
                .with_data(json!({"literalValue": cfg}))
                .run(json!({}))
                .unwrap()
        };
        assert_eq!(bv(json!("flag")), json!({"name": "flag", "value": true}));
        assert_eq!(
            bv(json!({"name": "count", "default": true})),
            json!({"name": "count", "value": true})
        );
        assert_eq!(
            bv(json!({"name": "missing", "default": "yes"})),
            json!({"name": "missing", "value": false})
        );
        assert_eq!(bv(json!(null)), json!({"name": "", "value": false}));
    }

    #[test]
    fn get_context_normalises() {
        let parts = CtxParts::new("get_context").with_vars(vars());
        assert_eq!(
            parts.run(json!({})).unwrap(),
            json!({"context": {"task": "do it", "messages": [{"role": "user", "content": "hi"}]},
                   "task": "do it", "messages": [{"role": "user", "content": "hi"}]})
        );
        let odd = CtxParts::new("get_context")
            .with_vars(json!({"context": {"task": 0, "messages": "m"}}));
        assert_eq!(
            odd.run(json!({})).unwrap(),
            json!({"context": {"task": 0, "messages": "m"}, "task": "", "messages": ["m"]})
        );
        let none = CtxParts::new("get_context");
        assert_eq!(
            none.run(json!({})).unwrap(),
            json!({"context": {}, "task": "", "messages": []})
        );
    }
}

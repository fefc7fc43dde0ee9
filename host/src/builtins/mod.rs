//! Pure node functions (temporary minimal set; the full catalogue lands from its own branch).

use serde_json::{Map, Value};

/// What a builtin may read besides its inputs.
pub struct BuiltinCtx<'a> {
    pub node_type: &'a str,
    pub node_id: &'a str,
    pub data: &'a Value,
    pub pin_order: &'a [String],
    pub output_pins: &'a [String],
    pub vars: &'a Map<String, Value>,
}

/// A pure node: resolved inputs in, Python-shaped value out; `Err` is a Python exception.
pub type BuiltinFn = fn(&Map<String, Value>, &BuiltinCtx) -> Result<Value, String>;

fn s(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn concat(i: &Map<String, Value>, c: &BuiltinCtx) -> Result<Value, String> {
    let sep = c
        .data
        .get("concatConfig")
        .and_then(|x| x.get("separator"))
        .and_then(Value::as_str)
        .unwrap_or(" ")
        .to_string();
    let parts: Vec<String> = c.pin_order.iter().map(|p| s(i.get(p))).collect();
    Ok(Value::String(parts.join(&sep)))
}
fn uppercase(i: &Map<String, Value>, _: &BuiltinCtx) -> Result<Value, String> {
    Ok(Value::String(s(i.get("text")).to_uppercase()))
}
fn length(i: &Map<String, Value>, _: &BuiltinCtx) -> Result<Value, String> {
    Ok(Value::from(s(i.get("text")).chars().count()))
}
fn literal(_: &Map<String, Value>, c: &BuiltinCtx) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("value".into(), c.data.get("literalValue").cloned().unwrap_or(Value::Null));
    Ok(Value::Object(m))
}

/// The builtin for a node type, if it is a pure builtin.
pub fn lookup(node_type: &str) -> Option<BuiltinFn> {
    Some(match node_type {
        "concat" => concat,
        "uppercase" => uppercase,
        "length" => length,
        "literal_string" | "literal_number" | "literal_boolean" | "literal_json" | "literal_array"
        | "json_schema" => literal,
        _ => return None,
    })
}

/// Every supported type.
pub fn names() -> &'static [&'static str] {
    &["concat", "uppercase", "length", "literal_string"]
}

/// Python `str()` of a JSON value (temporary).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

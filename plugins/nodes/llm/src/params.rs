//! Reading a node's settings the way the seed does: the input pin, then the node's config, then a default.

use abstractgateway_plugin_sdk::{Invocation, Map, Value, json};

/// The first non-null, non-empty-string value of `key` among the pin and the config objects.
pub fn pick<'a>(inv: &'a Invocation, key: &str, configs: &[&'a Value]) -> Option<&'a Value> {
    let usable = |v: &&Value| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty());
    inv.input(key)
        .filter(usable)
        .or_else(|| configs.iter().find_map(|c| c.get(key).filter(usable)))
}

/// A trimmed string setting.
pub fn pick_str(inv: &Invocation, key: &str, configs: &[&Value]) -> Option<String> {
    pick(inv, key, configs)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A number setting (numeric strings accepted, as flows often carry them).
pub fn pick_f64(inv: &Invocation, key: &str, configs: &[&Value]) -> Option<f64> {
    match pick(inv, key, configs)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean setting (`"true"`/`"false"` accepted).
pub fn pick_bool(inv: &Invocation, key: &str, configs: &[&Value]) -> Option<bool> {
    match pick(inv, key, configs)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A JSON schema given as an object or as JSON text; OpenAI `{type: json_schema, json_schema: {schema}}`
/// wrappers are unwrapped.
pub fn schema(v: Option<&Value>) -> Option<Value> {
    let v = match v? {
        Value::String(s) => serde_json_parse(s)?,
        other => other.clone(),
    };
    let obj = v.as_object()?;
    if obj.is_empty() {
        return None;
    }
    if let Some(inner) = obj.get("json_schema").and_then(|j| j.get("schema")) {
        return Some(inner.clone());
    }
    if let Some(inner) = obj.get("schema").filter(|s| s.is_object())
        && !obj.contains_key("type")
        && !obj.contains_key("properties")
    {
        return Some(inner.clone());
    }
    Some(v)
}

fn serde_json_parse(s: &str) -> Option<Value> {
    abstractgateway_plugin_sdk::serde_json::from_str(s.trim()).ok()
}

/// Tool names from a `tools` / `allowed_tools` value: a list of names or of `{name}` specs.
pub fn tool_names(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let name = match item {
            Value::String(s) => Some(s.trim()),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::trim),
            _ => None,
        };
        if let Some(n) = name.filter(|n| !n.is_empty())
            && !out.iter().any(|o| o == n)
        {
            out.push(n.to_string());
        }
    }
    out
}

/// The `_gateway` facts the host adds to every node's config.
pub struct Gateway {
    /// local, passthrough or approval_required.
    pub tool_mode: String,
    /// The run executing the node.
    pub run_id: String,
    /// Its workflow id.
    pub workflow_id: String,
}

impl Gateway {
    /// Reads `config._gateway`; an absent one means the gateway defaults.
    pub fn of(config: &Value) -> Gateway {
        let g = config.get("_gateway").cloned().unwrap_or(json!({}));
        let s = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mode = s("tool_mode");
        Gateway {
            tool_mode: if mode.is_empty() {
                "approval_required".into()
            } else {
                mode
            },
            run_id: s("run_id"),
            workflow_id: s("workflow_id"),
        }
    }
}

/// Chat messages `[{role, content}]` from a `context` value (`{messages: [...]}`) or a bare list.
pub fn context_messages(v: Option<&Value>) -> Vec<Map<String, Value>> {
    let list = match v {
        Some(Value::Object(o)) => o.get("messages"),
        Some(list @ Value::Array(_)) => Some(list),
        _ => None,
    };
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_object().cloned())
        .filter(|m| m.get("role").and_then(Value::as_str).is_some())
        .collect()
}

/// The usage object the seed reports: both naming conventions.
pub fn usage_json(u: &abstractgateway_plugin_sdk::llm::Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens,
        "prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
    })
}

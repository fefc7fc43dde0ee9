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

/// A structured-output schema as the seed normalises it: an object or JSON text; `response_format` and
/// OpenAI `{type: json_schema, json_schema: {schema}}` wrappers are unwrapped, and a "field map" example
/// (`{"choice": "", "score": 0}`) becomes an object schema whose fields are inferred from the values.
pub fn schema(v: Option<&Value>) -> Option<Value> {
    let v = match v? {
        Value::String(s) => serde_json_parse(s)?,
        other => other.clone(),
    };
    let obj = v.as_object().filter(|o| !o.is_empty())?;
    let inner = unwrap_schema(obj.clone());
    if inner.is_empty() {
        return None;
    }
    Some(coerce_object_schema(&inner))
}

fn unwrap_schema(mut current: Map<String, Value>) -> Map<String, Value> {
    for key in ["response_format", "responseFormat"] {
        if let Some(Value::Object(inner)) = current.get(key) {
            current = inner.clone();
        }
    }
    if let Some(Value::Object(js)) = current.get("json_schema")
        && let Some(Value::Object(inner)) = js.get("schema")
    {
        return inner.clone();
    }
    if let Some(Value::Object(inner)) = current.get("schema")
        && !looks_like_json_schema(&current)
    {
        return inner.clone();
    }
    current
}

const PRIMITIVE_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];

fn looks_like_json_schema(o: &Map<String, Value>) -> bool {
    let keyed = [
        "$schema",
        "$id",
        "$ref",
        "$defs",
        "definitions",
        "oneOf",
        "anyOf",
        "allOf",
        "enum",
        "const",
        "items",
    ];
    if keyed.iter().any(|k| o.contains_key(*k)) {
        return true;
    }
    if o.get("required").is_some_and(Value::is_array)
        || o.get("properties").is_some_and(Value::is_object)
    {
        return true;
    }
    match o.get("type") {
        Some(Value::String(t)) => PRIMITIVE_TYPES.contains(&t.as_str()),
        Some(Value::Array(ts)) if !ts.is_empty() => ts
            .iter()
            .all(|t| t.as_str().is_some_and(|t| PRIMITIVE_TYPES.contains(&t))),
        _ => false,
    }
}

fn coerce_object_schema(o: &Map<String, Value>) -> Value {
    if looks_like_json_schema(o) {
        let mut out = o.clone();
        if out.get("properties").is_some_and(Value::is_object)
            && out.get("type").is_none_or(Value::is_null)
        {
            out.insert("type".into(), json!("object"));
        }
        return Value::Object(out);
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (k, v) in o {
        let key = k.trim();
        if key.is_empty() {
            continue;
        }
        required.push(json!(key));
        properties.insert(key.to_string(), infer_schema(v));
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    Value::Object(out)
}

fn infer_schema(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(s) => json!({"type": "string", "description": s}),
        Value::Array(items) => {
            let item = items.iter().find(|i| !i.is_null()).and_then(|i| match i {
                Value::Object(o) => Some(coerce_object_schema(o)),
                Value::Array(_) => None,
                other => Some(infer_schema(other)),
            });
            match item {
                Some(i) => json!({"type": "array", "items": i}),
                None => json!({"type": "array"}),
            }
        }
        Value::Object(o) => coerce_object_schema(o),
    }
}

/// The schema as the seed's structured-output model enforces it (and sends it to the provider): types,
/// enums, object properties and required names; length, pattern and count constraints are not kept, and
/// an optional field may be null. `None` when the schema is not an object with properties (the seed
/// refuses those).
pub fn model_schema(schema: &Value) -> Option<Value> {
    let o = schema.as_object()?;
    let is_object = match o.get("type") {
        None | Some(Value::Null) => o.get("properties").is_some_and(Value::is_object),
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => false,
    };
    let props = o.get("properties").and_then(Value::as_object)?;
    (is_object && !props.is_empty()).then(|| object_view(o, props))
}

fn object_view(o: &Map<String, Value>, props: &Map<String, Value>) -> Value {
    let required: Vec<&str> = o
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut properties = Map::new();
    let mut req = Vec::new();
    for (name, sub) in props {
        if name.trim().is_empty() {
            continue;
        }
        let view = type_view(sub);
        if required.contains(&name.as_str()) {
            req.push(json!(name));
            properties.insert(name.clone(), view);
        } else {
            let default = sub.get("default").cloned().unwrap_or(Value::Null);
            properties.insert(
                name.clone(),
                json!({"anyOf": [view, {"type": "null"}], "default": default}),
            );
        }
    }
    json!({"type": "object", "properties": properties, "required": req})
}

fn type_view(sub: &Value) -> Value {
    let Some(o) = sub.as_object() else {
        return json!({});
    };
    if let Some(Value::Array(e)) = o.get("enum")
        && !e.is_empty()
    {
        return json!({"enum": e});
    }
    match o.get("type") {
        Some(Value::Array(ts)) if !ts.is_empty() => {
            let mut variants: Vec<Value> = ts
                .iter()
                .filter_map(Value::as_str)
                .map(|t| {
                    let mut one = o.clone();
                    one.insert("type".into(), json!(t));
                    type_view(&Value::Object(one))
                })
                .collect();
            if variants.len() > 1 {
                variants.retain(|v| v.as_object().is_none_or(|m| !m.is_empty()));
            }
            match variants.len() {
                0 => json!({}),
                1 => variants.remove(0),
                _ => json!({"anyOf": variants}),
            }
        }
        Some(Value::String(t)) => match t.as_str() {
            "string" | "integer" | "number" | "boolean" | "null" => json!({"type": t}),
            "array" => {
                json!({"type": "array", "items": type_view(o.get("items").unwrap_or(&Value::Null))})
            }
            "object" => match o.get("properties").and_then(Value::as_object) {
                Some(p) if !p.is_empty() => object_view(o, p),
                _ => json!({"type": "object", "additionalProperties": true}),
            },
            _ => json!({}),
        },
        _ => json!({}),
    }
}

/// A validated answer as the seed's model dumps it: every declared field present (absent optional ones
/// are null or their default), undeclared keys dropped, nested objects and lists alike.
pub fn model_dump(view: &Value, value: &Value) -> Value {
    if let Some(Value::Array(variants)) = view.get("anyOf") {
        if value.is_null() {
            return Value::Null;
        }
        let first = variants
            .iter()
            .find(|v| v.get("type") != Some(&json!("null")));
        return first
            .map(|v| model_dump(v, value))
            .unwrap_or_else(|| value.clone());
    }
    match (view.get("type").and_then(Value::as_str), value) {
        (Some("object"), Value::Object(m)) => {
            let Some(props) = view.get("properties").and_then(Value::as_object) else {
                return value.clone();
            };
            let mut out = Map::new();
            for (name, sub) in props {
                let v = match m.get(name) {
                    Some(v) => model_dump(sub, v),
                    None => sub.get("default").cloned().unwrap_or(Value::Null),
                };
                out.insert(name.clone(), v);
            }
            Value::Object(out)
        }
        (Some("array"), Value::Array(items)) => {
            let item_view = view.get("items").cloned().unwrap_or(json!({}));
            Value::Array(items.iter().map(|i| model_dump(&item_view, i)).collect())
        }
        _ => value.clone(),
    }
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
    /// The host's default route (the seed's run-scoped `_runtime.provider/model`); empty when none.
    pub default_provider: String,
    /// The model of that route.
    pub default_model: String,
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
            default_provider: s("default_provider"),
            default_model: s("default_model"),
        }
    }
}

/// The conversation a "use context" call continues: the `context` pin's messages when it has any, else
/// the run's active context (`vars.context.messages`, handed over by the host as the run context).
pub fn active_context(inv: &Invocation) -> Vec<Map<String, Value>> {
    let pinned = context_messages(inv.input("context"));
    if !pinned.is_empty() {
        return pinned;
    }
    context_messages(inv.run_context())
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

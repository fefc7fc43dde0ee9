//! `llm_call`: one model call; pins, then `effectConfig`, then defaults (flow-format §3.8, §6).

use abstractgateway_plugin_sdk::llm::{Message, Request, Response, Role};
use abstractgateway_plugin_sdk::{
    ContextEdit, Error, Invocation, NodeResult, Outputs, Value, json,
};

use crate::host::Host;
use crate::params::{self, pick, pick_bool, pick_f64, pick_str, tool_names};

/// The seed's temperature when neither pin nor config sets one.
pub const DEFAULT_TEMPERATURE: f64 = 0.7;

/// Runs one `llm_call` node.
pub fn run(host: &mut dyn Host, inv: &Invocation) -> Result<NodeResult, Error> {
    let empty = json!({});
    let effect = inv.config_value("effectConfig").unwrap_or(&empty);
    let cfg = [effect];
    let req = build_request(host, inv, &cfg)?;
    let schema = req.response_schema.clone();
    let req_messages = req.messages.clone();
    let resp = host.complete(req)?;
    let data = match &schema {
        Some(schema) => Some(structured_answer(inv.node_id(), schema, &resp.content)?),
        None => None,
    };
    let trace_id = host.idempotency_key();
    let mut out = outputs(inv, &resp, data.clone(), &trace_id);
    if use_context(inv, &cfg) {
        let user = user_text(&req_messages);
        let assistant = match (resp.content.trim(), &data) {
            ("", Some(d)) => {
                abstractgateway_plugin_sdk::serde_json::to_string_pretty(d).unwrap_or_default()
            }
            (text, _) => text.to_string(),
        };
        let meta = json!({"kind": "llm_turn", "node_id": inv.node_id()});
        let turn: Vec<Value> = [("user", user), ("assistant", assistant)]
            .into_iter()
            .filter(|(_, text)| !text.is_empty())
            .map(|(role, text)| json!({"role": role, "content": text, "metadata": meta}))
            .collect();
        out.context_edit = Some(ContextEdit::Append(turn));
    }
    Ok(out)
}

/// The "use context" option (`use_context`, else `include_context`).
pub fn use_context(inv: &Invocation, cfg: &[&Value]) -> bool {
    pick_bool(inv, "use_context", cfg)
        .or_else(|| pick_bool(inv, "include_context", cfg))
        .unwrap_or(false)
}

/// The user text a "use context" turn records: the prompt, else the last non-empty user message.
fn user_text(messages: &[Message]) -> String {
    messages
        .iter()
        .rev()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.trim())
        .find(|t| !t.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// The structured answer validated against the schema's model and dumped as the seed does.
pub fn structured_answer(node_id: &str, schema: &Value, content: &str) -> Result<Value, Error> {
    let parsed = parse_structured(content).ok_or_else(|| {
        Error::invalid_input(format!(
            "llm_call (node {node_id}): the model's answer is not the requested JSON: {}",
            preview(content)
        ))
    })?;
    Ok(params::model_dump(schema, &parsed))
}

/// The chat request of an `llm_call` node.
pub fn build_request(
    host: &mut dyn Host,
    inv: &Invocation,
    cfg: &[&Value],
) -> Result<Request, Error> {
    let prompt = pick_str(inv, "prompt", cfg).unwrap_or_default();
    let system = pick_str(inv, "system", cfg).or_else(|| pick_str(inv, "system_prompt", cfg));
    let use_context = use_context(inv, cfg);
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(Message::system(s));
    }
    let mut history = params::context_messages(pick(inv, "messages", cfg));
    if use_context {
        history.splice(0..0, params::active_context(inv));
    }
    messages.extend(history.iter().filter_map(to_message));
    // With a conversation to continue, the seed still sends the (empty) prompt turn.
    if !prompt.is_empty() || (use_context && !history.is_empty()) {
        messages.push(Message::user(prompt));
    }
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(Error::invalid_input(empty_prompt_error(inv.node_id())));
    }
    let names = tool_names(pick(inv, "tools", cfg));
    let tools = if names.is_empty() {
        None
    } else {
        tool_specs(host, &names)?
    };
    let response_schema = match params::schema(
        pick(inv, "resp_schema", cfg).or_else(|| pick(inv, "response_schema", cfg)),
    ) {
        Some(s) => Some(params::model_schema(&s).ok_or_else(|| {
            Error::invalid_input("response_schema must be a JSON schema object with properties")
        })?),
        None => None,
    };
    let seed = pick_f64(inv, "seed", cfg)
        .filter(|s| *s >= 0.0 && s.fract() == 0.0)
        .map(|s| s as i64);
    let max_tokens = ["max_out_tokens", "max_output_tokens", "max_tokens"]
        .iter()
        .find_map(|k| pick_f64(inv, k, cfg))
        .filter(|n| *n >= 1.0)
        .map(|n| n.min(u32::MAX as f64) as u32);
    Ok(Request {
        provider: pick_str(inv, "provider", cfg).map(|p| p.to_ascii_lowercase()),
        model: pick_str(inv, "model", cfg),
        messages,
        tools,
        response_schema,
        temperature: Some(pick_f64(inv, "temperature", cfg).unwrap_or(DEFAULT_TEMPERATURE)),
        max_tokens,
        seed,
        options: None,
    })
}

/// The seed's refusal of a model call with nothing to send, naming the node.
pub fn empty_prompt_error(node_id: &str) -> String {
    format!(
        "llm_call (node {node_id}) requires payload.prompt or payload.messages; both were empty. Supply the \
         flow's prompt input when starting the run (input_data.<prompt pin>), or connect/pin it in the flow."
    )
}

/// The specs of the granted tools named in `names`, in that order; unknown names are dropped, as the seed does.
pub fn tool_specs(host: &mut dyn Host, names: &[String]) -> Result<Option<Value>, Error> {
    let known = host.list_tools()?;
    let specs: Vec<Value> = names
        .iter()
        .filter_map(|n| known.iter().find(|t| &t.name == n))
        .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    Ok((!specs.is_empty()).then_some(Value::Array(specs)))
}

/// A context message as a chat message; roles other than the four chat roles are skipped.
pub fn to_message(m: &abstractgateway_plugin_sdk::Map<String, Value>) -> Option<Message> {
    let role: Role = m.get("role").and_then(Value::as_str)?.parse().ok()?;
    let content = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let mut msg = Message::new(role, content);
    msg.tool_call_id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(msg)
}

/// The answer as JSON, tolerating a Markdown code fence around it.
pub fn parse_structured(content: &str) -> Option<Value> {
    let t = content.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|s| s.strip_suffix("```"))
        .unwrap_or(t);
    abstractgateway_plugin_sdk::serde_json::from_str::<Value>(t.trim())
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(200).collect();
    if p.len() < s.len() {
        format!("{p}...")
    } else {
        p
    }
}

/// Tool calls as the seed normalises them: `[{name, arguments, call_id}]`.
pub fn normalised_tool_calls(resp: &Response) -> Vec<Value> {
    resp.tool_calls
        .iter()
        .map(|c| json!({"name": c.name, "arguments": c.arguments, "call_id": c.call_id}))
        .collect()
}

/// The raw result object the seed stores (legacy `result`/`raw` pins expose it). A structured answer
/// comes back as the validated model only: no text, usage, model or trace.
pub fn raw_result(resp: &Response, data: Option<&Value>, trace_id: &str) -> Value {
    if let Some(d) = data {
        return json!({
            "content": null, "data": d, "tool_calls": null, "usage": null, "model": null,
            "finish_reason": null, "trace_id": null,
        });
    }
    let calls = normalised_tool_calls(resp);
    json!({
        "content": resp.content,
        "reasoning": resp.reasoning,
        "data": null,
        "tool_calls": if calls.is_empty() { Value::Null } else { Value::Array(calls) },
        "usage": params::usage_json(&resp.usage),
        "model": resp.model,
        "finish_reason": resp.finish_reason,
        "metadata": {"trace_id": trace_id},
        "trace_id": trace_id,
    })
}

/// The output pins of a completed call (the seed's mapping of an `LLM_CALL` result), and what the run
/// completes with when the node ends it (`{success, result: <raw result>}`, as for any effect node).
pub fn outputs(
    inv: &Invocation,
    resp: &Response,
    data: Option<Value>,
    trace_id: &str,
) -> NodeResult {
    let raw = raw_result(resp, data.as_ref(), trace_id);
    let calls = normalised_tool_calls(resp);
    let response = match &data {
        Some(d) => d.to_string(),
        None => resp.content.clone(),
    };
    let mut meta = abstractgateway_plugin_sdk::Map::new();
    meta.insert("schema".into(), json!("abstractflow.llm_call.v1.meta"));
    meta.insert("version".into(), json!(1));
    let mode = if data.is_some() {
        "structured"
    } else {
        "unstructured"
    };
    meta.insert("output_mode".into(), json!(mode));
    meta.insert("tool_calls".into(), json!(calls.len()));
    // Only what the raw result carries: the seed's provider path reports the model but not the provider.
    let text = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(m) = text("model") {
        meta.insert("model".into(), json!(m));
    }
    if let Some(f) = text("finish_reason") {
        meta.insert("finish_reason".into(), json!(f));
    }
    if let Some(u) = raw.get("usage").filter(|u| u.is_object()) {
        meta.insert("usage".into(), u.clone());
    }
    if let Some(t) = text("trace_id") {
        meta.insert("trace".into(), json!({"trace_id": t}));
    }
    let mut out = Outputs::new();
    out.insert("response".into(), json!(response));
    if let Some(d) = &data {
        out.insert("data".into(), d.clone());
    }
    out.insert("tool_calls".into(), Value::Array(calls));
    out.insert("success".into(), json!(true));
    out.insert("meta".into(), Value::Object(meta));
    // Legacy pins, only for flows that still declare them.
    for legacy in ["result", "raw"] {
        if declares_output(inv, legacy) {
            out.insert(legacy.into(), raw.clone());
        }
    }
    NodeResult::from(out).with_complete_output(json!({"success": true, "result": raw}))
}

/// True when the node's `data.outputs` lists the pin `id`.
pub fn declares_output(inv: &Invocation, id: &str) -> bool {
    inv.config_value("outputs")
        .and_then(Value::as_array)
        .is_some_and(|pins| {
            pins.iter()
                .any(|p| p.get("id").and_then(Value::as_str) == Some(id))
        })
}

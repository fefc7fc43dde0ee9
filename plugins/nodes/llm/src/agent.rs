//! `agent`: the ReAct loop inside one node (reason → act → observe → ... → answer; flow-format §3.9).
//! No child run exists: `sub_run_id` is the node's own run id.

use abstractgateway_plugin_sdk::llm::{Message, Request, Role};
use abstractgateway_plugin_sdk::{
    ContextEdit, Error, Invocation, Map, NodeResult, Outputs, Value, json,
};

use crate::host::Host;
use crate::llm_call::{
    declares_output, empty_prompt_error, structured_answer, to_message, tool_specs,
};
use crate::params::{self, Gateway, pick, pick_bool, pick_f64, pick_str, tool_names};
use crate::tool_calls::{Call, run_calls};

/// The iteration cap when neither pin nor `agentConfig` sets one.
pub const DEFAULT_MAX_ITERATIONS: u32 = 20;

/// The ReAct persona sent as the system prompt of every reasoning call.
pub const REACT_SYSTEM: &str = "You are a helpful assistant that works step by step. Think about the task, \
call a tool when you need information or an action, observe its result, and repeat. When you have enough \
information, reply with the final answer as plain text and no tool call.";

/// The final call made when the iteration budget is spent.
const CONCLUDE: &str = "You have used your iteration budget. Give your best final answer now from what you \
know, without calling tools.";

/// Runs one `agent` node.
pub fn run(host: &mut dyn Host, inv: &Invocation) -> Result<NodeResult, Error> {
    let empty = json!({});
    let agent_cfg = inv.config_value("agentConfig").unwrap_or(&empty);
    let cfg = [agent_cfg];
    let gw = Gateway::of(inv.config());
    let task = pick_str(inv, "prompt", &[]).unwrap_or_default();
    // The scratchpad reports the task as given (the seed keeps a template's trailing whitespace there); the model
    // and the conversation get it trimmed.
    let given_task = pick(inv, "prompt", &[])
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let provider = pick_str(inv, "provider", &cfg).map(|p| p.to_ascii_lowercase());
    let model = pick_str(inv, "model", &cfg);
    let max_iterations = pick_f64(inv, "max_iterations", &cfg)
        .filter(|n| *n >= 1.0)
        .map(|n| n.min(1000.0) as u32)
        .unwrap_or(DEFAULT_MAX_ITERATIONS);
    let allowed = tool_names(pick(inv, "tools", &cfg));
    let tools = if allowed.is_empty() {
        None
    } else {
        tool_specs(host, &allowed)?
    };
    let temperature = pick_f64(inv, "temperature", &cfg)
        .filter(|t| (*t - 0.7).abs() > f64::EPSILON)
        .unwrap_or(if tools.is_some() { 0.2 } else { 0.7 });
    let seed = pick_f64(inv, "seed", &cfg)
        .filter(|s| *s >= 0.0 && s.fract() == 0.0)
        .map(|s| s as i64);
    let mut system = REACT_SYSTEM.to_string();
    if let Some(extra) = pick_str(inv, "system", &cfg) {
        system = format!("{system}\n\n{extra}");
    }
    let include_context = pick_bool(inv, "include_context", &cfg)
        .or_else(|| pick_bool(inv, "use_context", &cfg))
        .unwrap_or(false);

    // The transcript the model sees, and the one reported in the scratchpad (with metadata).
    // A `context` pin with messages wins over the run's conversation ("use context").
    let mut history = params::context_messages(inv.input("context"));
    if history.is_empty() && include_context {
        // The run's active context, as the seed selects it for a model: system messages first.
        history = params::context_messages(inv.run_context());
        history.sort_by_key(|m| m.get("role").and_then(Value::as_str) != Some("system"));
    }
    let mut transcript: Vec<Message> = history
        .iter()
        .filter_map(to_message)
        .filter(|m| m.role != Role::System)
        .collect();
    // The ReAct sub-run's transcript starts with the history it inherited, verbatim (earlier agents' turns keep
    // their `agent_turn` metadata).
    let mut reported: Vec<Value> = history.iter().cloned().map(Value::Object).collect();
    if !task.trim().is_empty() {
        transcript.push(Message::user(task.clone()));
        reported.push(
            json!({"role": "user", "content": task, "metadata": {"message_id": message_id(&gw, inv, 0)}}),
        );
    }
    let workflow_id = format!(
        "visual_react_agent_{}_{}",
        sanitize(&gw.workflow_id),
        sanitize(inv.node_id())
    );
    // The ReAct child's first reasoning call has nothing to send: it fails, and so does the agent.
    if transcript.is_empty() {
        let run = AgentRun {
            gw: &gw,
            task: &given_task,
            // Like the seed, an agent naming no route reports the host default.
            provider: provider.unwrap_or_else(|| gw.default_provider.clone()),
            model: model.unwrap_or_else(|| gw.default_model.clone()),
            workflow_id,
        };
        let mut out = run.failed(inv, &empty_prompt_error("reason"));
        if include_context {
            let answer = out.outputs.get("response").cloned().unwrap_or_default();
            let turn = run.context_turn(inv, &[], &[], answer.as_str().unwrap_or_default());
            out.context_edit = Some(ContextEdit::Append(turn));
        }
        return Ok(out);
    }
    let (mut all_calls, mut all_results) = (Vec::new(), Vec::new());
    let base = Request {
        provider: provider.clone(),
        model: model.clone(),
        temperature: Some(temperature),
        seed,
        ..Default::default()
    };
    let mut iterations = 0;
    let (answer, last) = loop {
        if iterations >= max_iterations {
            let mut msgs = vec![Message::system(system.clone())];
            msgs.extend(transcript.iter().cloned());
            msgs.push(Message::user(CONCLUDE));
            let resp = host.complete(Request {
                messages: msgs,
                ..base.clone()
            })?;
            break (resp.content.clone(), resp);
        }
        iterations += 1;
        let mut msgs = vec![Message::system(system.clone())];
        msgs.extend(transcript.iter().cloned());
        let resp = host.complete(Request {
            messages: msgs,
            tools: tools.clone(),
            ..base.clone()
        })?;
        if resp.tool_calls.is_empty() {
            break (resp.content.clone(), resp);
        }
        let calls: Vec<Call> = resp
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| Call {
                call_id: c
                    .call_id
                    .clone()
                    .unwrap_or_else(|| format!("call_{iterations}_{}", i + 1)),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            })
            .collect();
        let listed: Vec<Value> = calls
            .iter()
            .map(|c| json!({"call_id": c.call_id, "name": c.name, "arguments": c.arguments}))
            .collect();
        let mut assistant = Message::assistant(resp.content.clone());
        assistant.tool_calls = Some(Value::Array(listed.clone()));
        transcript.push(assistant);
        reported.push(
            json!({"role": "assistant", "content": resp.content, "metadata": {"kind": "tool_calls",
            "message_id": message_id(&gw, inv, reported.len())}}),
        );
        let key = format!("tools:{}:{}:{iterations}", gw.run_id, inv.node_id());
        let results = run_calls(host, &gw.tool_mode, &key, &calls, &allowed)?;
        for (call, result) in calls.iter().zip(&results) {
            let body = match result.get("success").and_then(Value::as_bool) {
                Some(true) => result.get("output").map(text_of).unwrap_or_default(),
                _ => format!(
                    "Error: {}",
                    result.get("error").map(text_of).unwrap_or_default()
                ),
            };
            transcript.push(Message::tool_result(call.call_id.clone(), body.clone()));
            reported.push(json!({"role": "tool", "content": body, "metadata": {"kind": "observation",
                "name": call.name, "call_id": call.call_id, "message_id": message_id(&gw, inv, reported.len())}}));
        }
        all_calls.extend(listed);
        all_results.extend(results);
    };
    reported.push(
        json!({"role": "assistant", "content": answer, "metadata": {"kind": "final_answer",
        "message_id": message_id(&gw, inv, reported.len())}}),
    );

    let used_provider = provider.unwrap_or_else(|| last.provider.clone());
    let used_model = model.unwrap_or_else(|| last.model.clone());
    let schema = params::schema(pick(inv, "resp_schema", &[]))
        .or_else(|| params::schema(pick(inv, "response_schema", &[])))
        .or_else(|| output_schema(agent_cfg));
    let data = match schema {
        Some(schema) => Some(structure(host, inv, &base, &task, &answer, schema)?),
        None => None,
    };
    let run = AgentRun {
        gw: &gw,
        task: &given_task,
        provider: used_provider,
        model: used_model,
        workflow_id,
    };
    let scratchpad = json!({
        "sub_run_id": gw.run_id, "workflow_id": run.workflow_id, "task": given_task, "messages": reported,
        "node_traces": {}, "steps": [], "tool_calls": all_calls, "tool_results": all_results,
    });
    let mode = if data.is_some() {
        "structured"
    } else {
        "unstructured"
    };
    // What the node reports, and what the seed's later re-mapping of its result shows on the pins: the
    // structured pass drops `iterations` from the former only.
    let mut context_turn = None;
    let mut meta = run.meta(mode, all_calls.len(), all_results.len());
    let mut pin_meta = meta.clone();
    pin_meta.insert("iterations".into(), json!(iterations));
    if data.is_none() {
        meta.insert("iterations".into(), json!(iterations));
    }
    if include_context {
        let turn = run.context_turn(inv, &all_calls, &all_results, &answer);
        context_turn = Some(ContextEdit::Append(turn));
    }
    let response = match &data {
        Some(d) => d.to_string(),
        None => answer,
    };
    let mut node_out = Outputs::new();
    node_out.insert("response".into(), json!(response));
    if let Some(d) = &data {
        node_out.insert("data".into(), d.clone());
    }
    node_out.insert("success".into(), json!(true));
    node_out.insert("meta".into(), Value::Object(meta));
    node_out.insert("scratchpad".into(), scratchpad.clone());
    let completion = node_out.clone();
    node_out.insert("tool_calls".into(), Value::Array(all_calls.clone()));
    node_out.insert("tool_results".into(), Value::Array(all_results.clone()));
    let mut pins = node_out.clone();
    pins.insert("meta".into(), Value::Object(pin_meta.clone()));
    if declares_output(inv, "result") {
        // The legacy pin: the structured object, else the unstructured essentials.
        let legacy = match &data {
            Some(d) => d.clone(),
            None => json!({"response": response, "success": true, "meta": pin_meta,
                "scratchpad": scratchpad}),
        };
        pins.insert("result".into(), legacy);
    }
    Ok(NodeResult {
        outputs: pins,
        ambient: Some(Value::Object(node_out)),
        complete_output: Some(Value::Object(completion)),
        effect_payload: None,
        context_edit: context_turn,
    })
}

/// What every agent outcome reports about its (in-node) sub-run.
struct AgentRun<'a> {
    gw: &'a Gateway,
    task: &'a str,
    provider: String,
    model: String,
    workflow_id: String,
}

impl AgentRun<'_> {
    fn meta(&self, mode: &str, calls: usize, results: usize) -> Map<String, Value> {
        let mut meta = Map::new();
        meta.insert("schema".into(), json!("abstractcode.agent.v1.meta"));
        meta.insert("version".into(), json!(1));
        meta.insert("output_mode".into(), json!(mode));
        meta.insert("provider".into(), json!(self.provider));
        meta.insert("model".into(), json!(self.model));
        meta.insert("tool_calls".into(), json!(calls));
        meta.insert("tool_results".into(), json!(results));
        if !self.gw.run_id.is_empty() {
            meta.insert("sub_run_id".into(), json!(self.gw.run_id));
        }
        meta
    }

    /// The messages a "use context" agent adds to the run's conversation: its task, one observation per
    /// tool result, and its answer (empty texts are left out).
    fn context_turn(
        &self,
        inv: &Invocation,
        calls: &[Value],
        results: &[Value],
        answer: &str,
    ) -> Vec<Value> {
        let node = inv.node_id();
        let message = |role: &str, content: String, suffix: &str, extra: Value| {
            let mut meta = json!({"kind": "agent_turn", "node_id": node,
                "message_id": format!("agent:{}:{node}:{suffix}", self.gw.run_id)});
            if let (Value::Object(m), Value::Object(x)) = (&mut meta, extra) {
                m.extend(x);
            }
            if !self.gw.run_id.is_empty()
                && let Value::Object(m) = &mut meta
            {
                m.insert("sub_run_id".into(), json!(self.gw.run_id));
            }
            json!({"role": role, "content": content, "metadata": meta})
        };
        let mut out = Vec::new();
        if !self.task.trim().is_empty() {
            out.push(message(
                "user",
                self.task.trim().to_string(),
                "task",
                json!({}),
            ));
        }
        for (i, r) in results.iter().enumerate() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("tool");
            let call_id = r.get("call_id").and_then(Value::as_str).unwrap_or_default();
            let ok = r.get("success").and_then(Value::as_bool) == Some(true);
            let rendered = match r.get("output") {
                Some(v @ (Value::Object(_) | Value::Array(_))) => {
                    abstractgateway_plugin_sdk::serde_json::to_string_pretty(v).unwrap_or_default()
                }
                Some(Value::Null) | None => String::new(),
                Some(v) => text_of(v),
            };
            let mut details = if ok {
                rendered.trim().to_string()
            } else {
                r.get("error")
                    .filter(|e| !e.is_null())
                    .map(text_of)
                    .unwrap_or(rendered)
                    .trim()
                    .to_string()
            };
            let args = calls
                .iter()
                .find(|c| {
                    !call_id.is_empty() && c.get("call_id").and_then(Value::as_str) == Some(call_id)
                })
                .and_then(|c| c.get("arguments"))
                .filter(|a| a.as_object().is_some_and(|o| !o.is_empty()));
            if let Some(a) = args {
                details = format!("args={a}\n{details}").trim().to_string();
            }
            let content = if ok {
                format!("[{name}]: {details}")
            } else {
                format!("[{name}]: Error: {details}")
            };
            let suffix = if call_id.is_empty() {
                format!("tool:{i}")
            } else {
                format!("tool:{call_id}")
            };
            let mut extra = json!({"kind": "tool_observation", "tool_name": name, "success": ok});
            if !call_id.is_empty() {
                extra["call_id"] = json!(call_id);
            }
            out.push(message("assistant", content, &suffix, extra));
        }
        if !answer.trim().is_empty() {
            out.push(message(
                "assistant",
                answer.trim().to_string(),
                "answer",
                json!({}),
            ));
        }
        out
    }

    /// The seed's outputs when the ReAct loop failed before answering: `success: false`, a readable
    /// response, and the error in `meta.error` and `error`.
    fn failed(&self, inv: &Invocation, error: &str) -> NodeResult {
        let head: String = error.chars().take(300).collect();
        let head = if head.len() < error.len() {
            format!("{head}…")
        } else {
            head
        };
        let run_part = if self.gw.run_id.is_empty() {
            String::new()
        } else {
            format!(" (run {})", self.gw.run_id)
        };
        let answer =
            format!("The agent failed before producing a final answer{run_part}. Error: {head}");
        let scratchpad = json!({
            "sub_run_id": self.gw.run_id, "workflow_id": self.workflow_id, "task": self.task,
            "messages": [{"role": "assistant", "content": answer}], "node_traces": {}, "steps": [],
            "tool_calls": [], "tool_results": [],
        });
        let pin_meta = self.meta("unstructured", 0, 0);
        let mut meta = pin_meta.clone();
        meta.insert("error".into(), json!(error));
        let mut node_out = Outputs::new();
        node_out.insert("response".into(), json!(answer));
        node_out.insert("success".into(), json!(false));
        node_out.insert("meta".into(), Value::Object(meta));
        node_out.insert("scratchpad".into(), scratchpad);
        let mut completion = node_out.clone();
        completion.insert("error".into(), json!(error));
        node_out.insert("tool_calls".into(), json!([]));
        node_out.insert("tool_results".into(), json!([]));
        node_out.insert("error".into(), json!(error));
        let mut pins = node_out.clone();
        pins.insert("meta".into(), Value::Object(pin_meta));
        if declares_output(inv, "result") {
            pins.insert("result".into(), json!({"success": false, "error": error}));
        }
        NodeResult::from(pins)
            .with_ambient(Value::Object(node_out))
            .with_complete_output(Value::Object(completion))
    }
}

/// `agentConfig.outputSchema` when enabled: `{enabled, jsonSchema|schema}`.
fn output_schema(agent_cfg: &Value) -> Option<Value> {
    let s = agent_cfg.get("outputSchema")?;
    if s.get("enabled").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    params::schema(s.get("jsonSchema").or_else(|| s.get("schema")))
}

/// The extra call that turns the free-text answer into the required JSON.
fn structure(
    host: &mut dyn Host,
    inv: &Invocation,
    base: &Request,
    task: &str,
    answer: &str,
    schema: Value,
) -> Result<Value, Error> {
    let schema = params::model_schema(&schema).ok_or_else(|| {
        Error::invalid_input("response_schema must be a JSON schema object with properties")
    })?;
    let prompt = format!(
        "Convert the Agent answer into a JSON object matching the required schema. Return JSON only.\n\nTask:\n{task}\n\nAnswer:\n{answer}"
    );
    let resp = host.complete(Request {
        messages: vec![Message::user(prompt)],
        response_schema: Some(schema.clone()),
        ..base.clone()
    })?;
    structured_answer(inv.node_id(), &schema, &resp.content)
}

/// A tool output as observation text.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The seed's workflow-id sanitising: each run of characters outside `[A-Za-z0-9_-]` becomes one `_`;
/// an empty id is `unknown`.
pub fn sanitize(id: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in id.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

/// A message id stable across replays of the node.
fn message_id(gw: &Gateway, inv: &Invocation, index: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}:{}:{index}", gw.run_id, inv.node_id()).bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("msg_{h:016x}")
}

//! Effect nodes (§3.8): each writes a `started` record and a terminal record with the same step id,
//! stores its result at `_temp.effects.<node>` and maps it onto the node's output pins.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::control;
use super::exec::{Host, Plan, active_control};
use super::nodes::Effect;
use super::resolve;
use super::state::{as_number, obj_mut, set_node_output, temp};
use crate::flow::{CompiledFlow, CompiledNode, Next};
use crate::run::{Obj, RunState, RunStatus, StepRecord, WaitReason, WaitState};
use crate::time;

/// How an effect ended this step.
enum Outcome {
    Completed(Value),
    Waiting(WaitState),
    Failed(String),
}

/// `_temp.effects.<node>`: where the effect's result (or resume payload) is written.
pub fn result_key(node_id: &str) -> String {
    format!("_temp.effects.{node_id}")
}

/// Counts the run's effects (`_runtime.effect_seq`); each effect's idempotency key hashes its number.
pub(super) fn next_effect_seq(run: &mut RunState) -> u64 {
    let rt = obj_mut(&mut run.vars, "_runtime");
    let seq = rt.get("effect_seq").and_then(Value::as_u64).unwrap_or(0) + 1;
    rt.insert("effect_seq".into(), seq.into());
    seq
}

/// The seed's idempotency key: a hash of run, node, effect and issuance counter.
pub(super) fn idempotency_key(run_id: &str, node_id: &str, effect: &str, seq: u64) -> String {
    let digest = Sha256::digest(format!("{run_id}\0{node_id}\0{effect}\0{seq}").as_bytes());
    hex::encode(&digest[..16])
}

/// The `started` record of effect `effect_type` at node `id` (its next idempotency key taken), and a copy to
/// finish as the outcome record.
pub(super) fn started_records(
    run: &mut RunState,
    id: &str,
    effect_type: &str,
    payload: Value,
) -> (StepRecord, StepRecord) {
    let seq = next_effect_seq(run);
    let effect = json!({"type": effect_type, "payload": payload, "result_key": result_key(id)});
    let mut started = StepRecord::new(run, id, "started");
    started.effect = Some(effect);
    started.ended_at = None;
    started.idempotency_key = Some(idempotency_key(&run.run_id, id, effect_type, seq));
    let mut done = started.clone();
    done.ended_at = Some(time::now_iso());
    (started, done)
}

/// Where the cursor goes after this effect: its next node, or back to the active control node.
fn resume_target(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Option<String> {
    if let Next::Linear(t) = &node.next {
        return Some(t.clone());
    }
    let parent = active_control(run, &node.node.id, flow)?;
    control::mark_return(&mut run.vars, &parent);
    Some(parent)
}

/// Runs one effect node.
pub fn run(
    kind: Effect,
    run: &mut RunState,
    flow: &CompiledFlow,
    node: &CompiledNode,
    host: &mut dyn Host,
    records: &mut Vec<StepRecord>,
) -> Plan {
    let id = node.node.id.clone();
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        // An error while resolving an effect's inputs fails the run (§3.5).
        Err(e) => return Plan::Fail(e.to_string()),
    };
    if matches!(kind, Effect::OnEvent | Effect::OnSchedule) {
        // Listeners re-arm after their body: they sit on the control stack like a loop.
        let vars = &mut run.vars;
        if control::active(vars).as_deref() != Some(id.as_str()) {
            let c = obj_mut(temp(vars), "_control");
            let st = c.entry("stack").or_insert_with(|| Value::Array(vec![]));
            if let Value::Array(a) = st {
                a.push(Value::String(id.clone()));
            }
        }
        if let Some(Value::Object(c)) = temp(vars).get_mut("_control") {
            c.remove("return_to");
        }
    }
    let resume_to = match kind {
        Effect::OnEvent | Effect::OnSchedule => {
            Some(node.handle_target("exec-out").unwrap_or(&id).to_string())
        }
        _ => resume_target(run, flow, node),
    };
    let (payload, outcome) = build(kind, run, node, &inputs, resume_to.clone(), host);
    let (started, mut done) = started_records(run, &id, kind.effect_type(), payload);
    records.push(started);
    match outcome {
        Outcome::Completed(result) => {
            done.status = "completed".into();
            done.result = Some(result.clone());
            records.push(done);
            store_result(run, node, kind, result.clone());
            match resume_to {
                Some(t)
                    if !matches!(kind, Effect::OnEvent | Effect::OnSchedule)
                        && matches!(node.next, Next::Linear(_)) =>
                {
                    Plan::Goto(t)
                }
                _ => Plan::EffectDone(result),
            }
        }
        Outcome::Waiting(wait) => {
            done.status = "waiting".into();
            done.result = Some(json!({"wait": wait}));
            records.push(done);
            run.status = RunStatus::Waiting;
            run.waiting = Some(wait);
            Plan::Wait
        }
        Outcome::Failed(msg) => {
            let absorb = node
                .node
                .config("effectConfig", "continueOnError")
                .is_some_and(|v| v.as_bool() == Some(true));
            if absorb && let Next::Linear(t) = &node.next {
                done.status = "completed".into();
                let r = json!({"ok": false, "absorbed_failure": msg});
                done.result = Some(r.clone());
                records.push(done);
                store_result(run, node, kind, r);
                return Plan::Goto(t.clone());
            }
            done.status = "failed".into();
            done.error = Some(msg.clone());
            records.push(done);
            run.status = RunStatus::Failed;
            run.error = Some(msg);
            run.waiting = None;
            super::exec::terminal_status(run, records, &id);
            Plan::Wait
        }
    }
}

fn str_in(inputs: &Obj, key: &str) -> Option<String> {
    match inputs.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Null => None,
        Value::String(_) => None,
        other => Some(crate::builtins::py_str(other)),
    }
}

fn wait_for(node: &CompiledNode, reason: WaitReason, resume_to: Option<String>) -> WaitState {
    let mut w = WaitState::new(reason);
    w.resume_to_node = resume_to;
    w.result_key = Some(result_key(&node.node.id));
    w
}

/// Builds the effect payload and runs the effect.
fn build(
    kind: Effect,
    run: &mut RunState,
    node: &CompiledNode,
    inputs: &Obj,
    resume_to: Option<String>,
    host: &mut dyn Host,
) -> (Value, Outcome) {
    let id = node.node.id.clone();
    match kind {
        Effect::AskUser => {
            let prompt = str_in(inputs, "prompt").unwrap_or_else(|| "Please respond:".into());
            let choices = match inputs.get("choices") {
                Some(Value::Array(a)) => a.clone(),
                _ => vec![],
            };
            let allow = node
                .node
                .config("effectConfig", "allowFreeText")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let payload = json!({"type": "ask_user", "prompt": prompt, "choices": choices, "allow_free_text": allow, "resume_to_node": resume_to});
            let mut w = wait_for(node, WaitReason::User, resume_to);
            w.wait_key = Some(format!("user:{}:{}", run.run_id, id));
            w.prompt = Some(prompt);
            w.choices = Some(choices);
            w.allow_free_text = allow;
            (payload, Outcome::Waiting(w))
        }
        Effect::WaitUntil => {
            let amount = inputs.get("duration").and_then(as_number).unwrap_or(0.0);
            let unit = node
                .node
                .config("effectConfig", "durationType")
                .and_then(Value::as_str)
                .unwrap_or("seconds");
            let until = match unit {
                "timestamp" => inputs
                    .get("duration")
                    .and_then(Value::as_str)
                    .and_then(time::normalize_iso),
                "minutes" => Some(time::iso_after(amount * 60.0)),
                "hours" => Some(time::iso_after(amount * 3600.0)),
                _ => Some(time::iso_after(amount)),
            };
            let Some(until) = until else {
                return (
                    json!({"type": "wait_until"}),
                    Outcome::Failed("wait_until requires a valid duration or timestamp".into()),
                );
            };
            let payload =
                json!({"type": "wait_until", "until": until, "resume_to_node": resume_to});
            if until <= time::now_iso() {
                return (
                    payload,
                    Outcome::Completed(json!({"until": until, "ready": true})),
                );
            }
            let mut w = wait_for(node, WaitReason::Until, resume_to);
            w.until = Some(until);
            (payload, Outcome::Waiting(w))
        }
        Effect::WaitEvent => {
            let key = str_in(inputs, "event_key")
                .or_else(|| str_in(inputs, "wait_key"))
                .unwrap_or_else(|| "default".into());
            let allow = inputs
                .get("allow_free_text")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let mut payload = json!({"type": "wait_event", "wait_key": key, "allow_free_text": allow, "resume_to_node": resume_to});
            let mut w = wait_for(node, WaitReason::Event, resume_to);
            w.wait_key = Some(key);
            w.allow_free_text = allow;
            if let Some(p) = str_in(inputs, "prompt") {
                payload["prompt"] = p.clone().into();
                w.prompt = Some(p);
            }
            if let Some(Value::Array(c)) = inputs.get("choices") {
                payload["choices"] = Value::Array(c.clone());
                w.choices = Some(c.clone());
            }
            if let Some(t) = inputs
                .get("timeout_s")
                .and_then(as_number)
                .filter(|t| *t > 0.0)
            {
                let until = time::iso_after(t);
                payload["until"] = until.clone().into();
                w.until = Some(until);
            }
            (payload, Outcome::Waiting(w))
        }
        Effect::OnEvent => {
            let name = node
                .node
                .config("eventConfig", "name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("*")
                .to_string();
            let scope = str_in(inputs, "scope")
                .or_else(|| {
                    node.node
                        .config("eventConfig", "scope")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_else(|| "session".into());
            let key = event_key(run, &scope, &name, None);
            let payload = json!({"type": "wait_event", "scope": scope, "name": name, "wait_key": key, "resume_to_node": resume_to});
            let mut w = wait_for(node, WaitReason::Event, resume_to);
            w.wait_key = Some(key);
            (payload, Outcome::Waiting(w))
        }
        Effect::OnSchedule => {
            let sched = str_in(inputs, "schedule")
                .or_else(|| {
                    node.node
                        .config("eventConfig", "schedule")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_default();
            let until = time::parse_duration_s(&sched)
                .map(time::iso_after)
                .or_else(|| time::normalize_iso(&sched));
            let Some(until) = until else {
                return (
                    json!({"type": "wait_until"}),
                    Outcome::Failed(format!("on_schedule: invalid schedule {sched:?}")),
                );
            };
            let payload =
                json!({"type": "wait_until", "until": until, "resume_to_node": resume_to});
            let mut w = wait_for(node, WaitReason::Until, resume_to);
            w.until = Some(until);
            (payload, Outcome::Waiting(w))
        }
        Effect::EmitEvent => emit(run, node, inputs, host),
        Effect::Subflow => subflow(run, node, inputs, resume_to, host),
    }
}

/// `evt:{scope}:{scope_id}:{name}` (§3.8).
pub fn event_key(run: &RunState, scope: &str, name: &str, session: Option<&str>) -> String {
    let scope_id = match scope {
        "workflow" => run.workflow_id.clone(),
        "run" => run.run_id.clone(),
        "global" => "global".into(),
        _ => session
            .map(String::from)
            .or(run.session_id.clone())
            .unwrap_or(run.run_id.clone()),
    };
    format!("evt:{scope}:{scope_id}:{name}")
}

fn emit(
    run: &mut RunState,
    node: &CompiledNode,
    inputs: &Obj,
    host: &mut dyn Host,
) -> (Value, Outcome) {
    let cfg = |k: &str| {
        node.node
            .config("effectConfig", k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let name = str_in(inputs, "name")
        .or_else(|| cfg("name"))
        .unwrap_or_default();
    let scope = str_in(inputs, "scope")
        .or_else(|| cfg("scope"))
        .unwrap_or_else(|| "session".into());
    let session = str_in(inputs, "session_id").or_else(|| cfg("sessionId"));
    let payload_in = match inputs.get("payload") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        None | Some(Value::Null) => json!({}),
        Some(other) => json!({"value": other}),
    };
    let seq = run
        .vars
        .get("_runtime")
        .and_then(|r| r.get("effect_seq"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
        + 1;
    let event_id = format!("{}:{}:{seq}", run.run_id, node.node.id);
    let mut payload = json!({"name": name, "scope": scope, "payload": payload_in, "event_id": event_id, "max_steps": 0});
    if let Some(s) = &session {
        payload["session_id"] = s.clone().into();
    }
    if name.is_empty() {
        return (
            payload,
            Outcome::Failed("emit_event requires a non-empty name".into()),
        );
    }
    let key = event_key(run, &scope, &name, session.as_deref());
    let star = event_key(run, &scope, "*", session.as_deref());
    let envelope = json!({
        "event_id": event_id, "name": name, "scope": scope,
        "session_id": session.clone().or(run.session_id.clone()).unwrap_or(run.run_id.clone()),
        "payload": payload_in, "emitted_at": time::now_iso(),
        "emitter": {"run_id": run.run_id, "workflow_id": run.workflow_id, "node_id": node.node.id},
    });
    let resumed = host.emit_event(run, &[key.clone(), star], &envelope);
    let result = json!({"wait_key": key, "name": name, "scope": scope, "delivered": resumed.len(), "delivered_to": resumed, "resumed": resumed});
    (payload, Outcome::Completed(result))
}

fn subflow(
    run: &mut RunState,
    node: &CompiledNode,
    inputs: &Obj,
    resume_to: Option<String>,
    host: &mut dyn Host,
) -> (Value, Outcome) {
    let target = crate::bundle::SUBFLOW_ID_KEYS
        .iter()
        .find_map(|k| {
            node.node
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_default()
        .to_string();
    let mut vars = Obj::new();
    for spread in ["input", "vars"] {
        if let Some(Value::Object(m)) = inputs.get(spread) {
            vars.extend(m.clone());
        }
    }
    const CONTROL_PINS: [&str; 3] = ["inherit_context", "child_session_id", "session_id"];
    for pin in &node.data_inputs {
        if CONTROL_PINS.contains(&pin.as_str()) {
            continue;
        }
        if let Some(v) = inputs.get(pin) {
            vars.insert(pin.clone(), v.clone());
        }
    }
    // Riders the seed copies into every child.
    for (k, v) in &run.vars {
        if k.starts_with("workspace_") && !vars.contains_key(k) {
            vars.insert(k.clone(), v.clone());
        }
    }
    let payload = json!({"workflow_id": target, "vars": vars, "async": true, "wait": true, "include_traces": false, "resume_to_node": resume_to});
    if target.is_empty() {
        return (
            payload,
            Outcome::Failed(format!("subflow node '{}' has no subflowId", node.node.id)),
        );
    }
    // A schedule that does not share context gives each execution a session of its own.
    let session = node
        .node
        .config("effectConfig", "sessionPrefix")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}:{}", uuid::Uuid::new_v4().simple()));
    if let Err(e) = super::budget::count_child(run) {
        return (payload, Outcome::Failed(e.to_string()));
    }
    match host.start_child(run, &target, vars, session) {
        Ok(child) => {
            let mut w = wait_for(node, WaitReason::Subworkflow, resume_to);
            w.wait_key = Some(format!("subworkflow:{child}"));
            w.details = Some(
                json!({"sub_run_id": child, "sub_workflow_id": target, "async": true, "include_traces": false}),
            );
            (payload, Outcome::Waiting(w))
        }
        Err(e) => (payload, Outcome::Failed(e.to_string())),
    }
}

/// Stores `value` as the result of the effect node `node_id`; false when it is not an effect node.
fn store_at_current(run: &mut RunState, flow: &CompiledFlow, node_id: &str, value: Value) -> bool {
    match flow.node(node_id) {
        Some(node) => match node.kind {
            crate::engine::nodes::NodeKind::Effect(kind) => {
                store_result(run, node, kind, value);
                true
            }
            _ => false,
        },
        None => false,
    }
}

/// Writes an effect's result (or resume payload) and maps it onto the node's output pins.
pub fn store_result(run: &mut RunState, node: &CompiledNode, kind: Effect, result: Value) {
    obj_mut(temp(&mut run.vars), "effects").insert(node.node.id.clone(), result.clone());
    let outputs = map_outputs(kind, node, &result);
    set_node_output(&mut run.vars, &node.node.id, outputs);
}

fn map_outputs(kind: Effect, node: &CompiledNode, result: &Value) -> Value {
    match kind {
        Effect::AskUser => {
            let mut m = result.as_object().cloned().unwrap_or_default();
            let resp = result.get("response").cloned().unwrap_or(Value::Null);
            m.insert("response".into(), resp);
            Value::Object(m)
        }
        Effect::WaitEvent => {
            let mut m = result.as_object().cloned().unwrap_or_default();
            m.insert("event_data".into(), result.clone());
            Value::Object(m)
        }
        Effect::OnEvent => json!({
            "event": result, "payload": result.get("payload").cloned().unwrap_or(Value::Null),
            "event_id": result.get("event_id").cloned().unwrap_or(Value::Null),
            "name": result.get("name").cloned().unwrap_or(Value::Null),
        }),
        Effect::OnSchedule => json!({
            "timestamp": time::now_iso(),
            "recurrent": node.node.config("eventConfig", "recurrent").cloned().unwrap_or(Value::Bool(false)),
        }),
        Effect::Subflow => {
            let child_out = result.get("output").cloned().unwrap_or(Value::Null);
            let output = child_out
                .get("result")
                .cloned()
                .unwrap_or_else(|| child_out.clone());
            let mut m = Obj::new();
            m.insert(
                "sub_run_id".into(),
                result.get("sub_run_id").cloned().unwrap_or(Value::Null),
            );
            m.insert("output".into(), output.clone());
            m.insert("child_output".into(), child_out.clone());
            for pin in &node.data_outputs {
                if pin != "output" && pin != "sub_run_id" && pin != "child_output" {
                    let v = output
                        .get(pin)
                        .or_else(|| child_out.get(pin))
                        .cloned()
                        .unwrap_or(Value::Null);
                    m.insert(pin.clone(), v);
                }
            }
            Value::Object(m)
        }
        _ => result.clone(),
    }
}

/// Why [`resume`] did not resume a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The run is not waiting (running, paused without a wait, or ended).
    #[error("Run is not waiting")]
    NotWaiting,
}

/// Resumes a waiting run with `payload` (ask_user answer, event envelope, child output...).
pub fn resume(
    run: &mut RunState,
    flow: &CompiledFlow,
    payload: Value,
    records: &mut Vec<StepRecord>,
) -> Result<(), ResumeError> {
    if run.status != RunStatus::Waiting {
        return Err(ResumeError::NotWaiting);
    }
    let Some(wait) = run.waiting.clone() else {
        return Err(ResumeError::NotWaiting);
    };
    if !wait.is_pause() && super::plugin_node::resume_awaiting(run, payload.clone(), records) {
        return Ok(());
    }
    let node_id = run.current_node.clone().unwrap_or_default();
    if !store_at_current(run, flow, &node_id, payload.clone())
        && let Some(k) = &wait.result_key
    {
        super::state::set_path(&mut run.vars, k, payload.clone());
    }
    let mut rec = StepRecord::new(run, &node_id, "completed");
    rec.effect = Some(json!({"type": "resume", "payload": {
        "wait_reason": wait.reason.as_str(), "wait_key": wait.wait_key, "resume_to_node": wait.resume_to_node,
        "result_key": wait.result_key, "payload": payload}, "result_key": null}));
    rec.result = Some(json!({"resumed": true}));
    records.push(rec);
    run.waiting = None;
    match wait.resume_to_node {
        Some(t) => {
            run.status = RunStatus::Running;
            run.current_node = Some(t);
        }
        None => {
            let via = json!({"wait_reason": wait.reason.as_str(), "wait_key": wait.wait_key});
            super::exec::complete(
                run,
                records,
                &node_id,
                json!({"success": true, "result": payload}),
                Some(via),
            );
        }
    }
    Ok(())
}

/// A due `until` wait continues without a resume record (the seed writes none).
pub fn resume_due(run: &mut RunState, flow: &CompiledFlow, records: &mut Vec<StepRecord>) {
    let Some(wait) = run.waiting.take() else {
        return;
    };
    let node_id = run.current_node.clone().unwrap_or_default();
    let result = json!({"until": wait.until, "ready": true});
    store_at_current(run, flow, &node_id, result.clone());
    match wait.resume_to_node {
        Some(t) => {
            run.status = RunStatus::Running;
            run.current_node = Some(t);
        }
        None => super::exec::complete(
            run,
            records,
            &node_id,
            json!({"success": true, "result": result}),
            None,
        ),
    }
}

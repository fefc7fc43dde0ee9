//! Plugin nodes: the engine suspends the run on them, the runner executes the component, and the outcome
//! comes back here to be recorded and followed like any other node's.

use serde_json::{Value, json};

use super::exec::{Plan, apply_plan, complete_output, fail, next_or, node_error};
use super::nodes::PluginNode;
use super::resolve;
use super::state::set_node_output;
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::{
    InFlight, Obj, RunState, RunStatus, StepRecord, WaitReason, WaitState, host_call_record,
};

/// Reserved output key: the value the node leaves as the ambient payload (`_last_output`, §3.3). Effect-like
/// plugin nodes (an `effect` other than the default) set none unless they return this key; function-like
/// ones set their output pins.
pub const AMBIENT_KEY: &str = "_ambient";

/// Reserved output key: what the run completes with when this node ends it (the seed's `complete_output`);
/// without it a terminal plugin node completes with its output pins plus `success`.
pub const COMPLETE_KEY: &str = "_complete_output";

/// Reserved input key: the run's active context (`vars.context`), given to the model nodes (`llm_call`,
/// `agent`) whose "use context" option reads the conversation so far.
pub const RUN_CONTEXT_KEY: &str = "_run_context";

/// Reserved output key: messages the node appends to the run's `context.messages` (a "use context" turn).
pub const CONTEXT_APPEND_KEY: &str = "_context_append";

/// What executing a plugin node produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginOutcome {
    /// The node's output pins.
    Output(Obj),
    /// The node failed; the run fails with this message.
    Failed(String),
    /// The node called `durability.await-event(name, details)`: the run waits for that event.
    Suspended(String, Obj),
}

/// Starts a plugin node: records `started` and marks the run in flight (the step loop stops here).
pub fn start(
    run: &mut RunState,
    flow: &CompiledFlow,
    node: &CompiledNode,
    plugin: &PluginNode,
    records: &mut Vec<StepRecord>,
) -> Plan {
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        // The seed's agent node swallows a failing pull and starts from empty inputs.
        Err(_) if plugin.effect == "agent" => Default::default(),
        // An effect node's failing pull fails the run (§3.5); a function-like node reports it.
        Err(e) if plugin.effect != DEFAULT_EFFECT => return super::exec::Plan::Fail(e.to_string()),
        Err(e) => return node_error(run, &node.node.id, e.message),
    };
    let mut inputs = inputs;
    if matches!(plugin.node_type.as_str(), "llm_call" | "agent")
        && let Some(ctx @ Value::Object(_)) = run.vars.get("context")
    {
        inputs.insert(RUN_CONTEXT_KEY.into(), ctx.clone());
    }
    // A run keeps the component version it first used, so a plugin upgrade never changes a run midway.
    let digest = run
        .components
        .get(&plugin.plugin)
        .cloned()
        .unwrap_or_else(|| plugin.digest.clone());
    let mut rec = StepRecord::new(run, &node.node.id, "started");
    rec.effect = Some(json!({"type": plugin.effect, "payload": {
        "node_type": plugin.node_type, "plugin": plugin.plugin, "digest": digest, "inputs": inputs},
        "result_key": format!("_temp.effects.{}", node.node.id)}));
    rec.ended_at = None;
    records.push(rec);
    run.components.insert(plugin.plugin.clone(), digest.clone());
    run.inflight = Some(InFlight {
        node_id: node.node.id.clone(),
        node_type: plugin.node_type.clone(),
        plugin: plugin.plugin.clone(),
        digest,
        inputs: Value::Object(inputs),
        started_seq: 0,
        awaiting: None,
        started_ms: None,
    });
    Plan::Wait
}

/// Applies the outcome of the run's in-flight plugin node and moves the run on.
pub fn finish(
    run: &mut RunState,
    flow: &CompiledFlow,
    outcome: PluginOutcome,
    records: &mut Vec<StepRecord>,
) {
    let Some(inflight) = run.inflight.clone() else {
        return;
    };
    let node_id = inflight.node_id.clone();
    let Some(node) = flow.node(&node_id) else {
        run.inflight = None;
        fail(
            run,
            records,
            &node_id,
            format!("KeyError: node '{node_id}' not found"),
        );
        return;
    };
    let effect = node_effect(node);
    if is_function_like(&inflight.node_type)
        && let Some(record) = exception_record(&outcome)
    {
        run.inflight = None;
        let mut rec = StepRecord::new(run, &node_id, "completed");
        rec.effect = Some(
            json!({"type": effect, "payload": {"node_type": inflight.node_type,
            "plugin": inflight.plugin, "digest": inflight.digest}, "result_key": null}),
        );
        rec.result = Some(Value::Object(record.clone()));
        records.push(rec);
        let plan = code_error(run, &node_id, record);
        apply_plan(run, flow, node, plan, records);
        return;
    }
    match outcome {
        PluginOutcome::Output(mut out) => {
            run.inflight = None;
            let ambient = out.remove(AMBIENT_KEY);
            let completion = out.remove(COMPLETE_KEY);
            if let Some(Value::Array(turn)) = out.remove(CONTEXT_APPEND_KEY) {
                append_context(&mut run.vars, turn);
            }
            let out = Value::Object(out);
            let mut rec = StepRecord::new(run, &node_id, "completed");
            rec.effect = Some(
                json!({"type": effect, "payload": {"node_type": inflight.node_type,
                "plugin": inflight.plugin, "digest": inflight.digest}, "result_key": null}),
            );
            rec.result = Some(out.clone());
            records.push(rec);
            match ambient {
                Some(a) => {
                    run.vars.insert("_last_output".into(), a);
                }
                None if effect == DEFAULT_EFFECT => {
                    run.vars.insert("_last_output".into(), out.clone());
                }
                None => {}
            }
            set_node_output(&mut run.vars, &node_id, out.clone());
            let plan = next_or(node, || completion.unwrap_or_else(|| complete_output(&out)));
            apply_plan(run, flow, node, plan, records);
        }
        PluginOutcome::Failed(msg) => {
            run.inflight = None;
            fail(run, records, &node_id, msg);
        }
        PluginOutcome::Suspended(name, details) => {
            let reason = details.get("reason").and_then(Value::as_str);
            let by_user = reason == Some("user");
            let mut w = WaitState::new(if by_user {
                WaitReason::User
            } else {
                WaitReason::Event
            });
            // "user" and "key" wait on the literal key (resumed by a command naming it); otherwise the
            // wait is on the session event `name`, which `emit_event` reaches.
            w.wait_key = Some(if by_user || reason == Some("key") {
                name.clone()
            } else {
                super::event_key(run, "session", &name, None)
            });
            w.resume_to_node = Some(node_id.clone());
            w.prompt = details
                .get("prompt")
                .and_then(Value::as_str)
                .map(String::from);
            w.choices = details.get("choices").and_then(Value::as_array).cloned();
            let mut shown = details;
            shown.remove("reason");
            shown.insert("plugin_await_event".into(), Value::String(name.clone()));
            w.details = Some(Value::Object(shown));
            let mut rec = StepRecord::new(run, &node_id, "waiting");
            rec.effect = Some(
                json!({"type": if by_user { "ask_user" } else { "wait_event" },
                "payload": {"wait_key": w.wait_key, "name": name, "details": w.details}, "result_key": null}),
            );
            records.push(rec);
            run.status = RunStatus::Waiting;
            run.waiting = Some(w);
            if let Some(f) = run.inflight.as_mut() {
                f.awaiting = Some(name);
            }
        }
    }
}

/// Appends messages to `vars.context.messages`, creating the namespace as the seed does.
fn append_context(vars: &mut crate::run::Obj, turn: Vec<Value>) {
    let ctx = vars
        .entry("context")
        .or_insert_with(|| Value::Object(Default::default()));
    if !ctx.is_object() {
        *ctx = Value::Object(Default::default());
    }
    let Value::Object(ctx) = ctx else { return };
    let msgs = ctx
        .entry("messages")
        .or_insert_with(|| Value::Array(vec![]));
    if !msgs.is_array() {
        *msgs = Value::Array(vec![]);
    }
    if let Value::Array(list) = msgs {
        list.extend(turn);
    }
}

/// Resumes a plugin node suspended in `await-event`: the event becomes the recorded answer of that call,
/// and the run is runnable again (the runner re-executes the node, replaying every recorded call).
pub fn resume_awaiting(run: &mut RunState, payload: Value, records: &mut Vec<StepRecord>) -> bool {
    let Some(inflight) = run.inflight.as_mut() else {
        return false;
    };
    let Some(name) = inflight.awaiting.take() else {
        return false;
    };
    let node_id = inflight.node_id.clone();
    let text = payload.to_string();
    records.push(host_call_record(
        run,
        &node_id,
        ("durability", "await-event"),
        json!({"name": name}),
        Ok(Value::String(text)),
        0.0,
    ));
    run.status = RunStatus::Running;
    run.waiting = None;
    true
}

/// The effect type of a plugin node that declares none: a function-like node.
const DEFAULT_EFFECT: &str = "plugin_node";

fn node_effect(node: &CompiledNode) -> String {
    match &node.kind {
        super::nodes::NodeKind::Plugin(p) => p.effect.clone(),
        _ => DEFAULT_EFFECT.into(),
    }
}

/// The seed's function-like code nodes: an exception there completes the run with `success: false` (§3.5)
/// instead of failing it, as it does for effect nodes.
fn is_function_like(node_type: &str) -> bool {
    matches!(node_type, "code" | "function")
}

/// The record of a function-like node that raised: a `code` node reports its exception as an output record
/// with `success: false` and `error`; a failure (a sandbox limit) carries its message.
fn exception_record(outcome: &PluginOutcome) -> Option<Obj> {
    match outcome {
        PluginOutcome::Output(out)
            if out.get("success") == Some(&Value::Bool(false))
                && out.get("error").is_some_and(Value::is_string) =>
        {
            Some(out.clone())
        }
        // A cancel stops the run as cancelled, never as a flow error.
        PluginOutcome::Failed(msg) if !msg.starts_with("Cancelled:") => {
            let mut record = Obj::new();
            record.insert("success".into(), Value::Bool(false));
            record.insert("error".into(), Value::String(msg.clone()));
            Some(record)
        }
        _ => None,
    }
}

/// Completes the run like an exception in a builtin: `_flow_error` vars, the node's record as its output,
/// and the record plus `node` as the run's output.
fn code_error(run: &mut RunState, node_id: &str, mut record: Obj) -> Plan {
    let message = record
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // Sets `_flow_error`/`_flow_error_node` as for any function-like node; the output is the richer record.
    let _ = node_error(run, node_id, message);
    set_node_output(&mut run.vars, node_id, Value::Object(record.clone()));
    record.insert("node".into(), Value::String(node_id.into()));
    Plan::Complete(Value::Object(record))
}

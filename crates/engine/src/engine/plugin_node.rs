//! Plugin nodes: the engine suspends the run on them, the runner executes the component, and the outcome
//! comes back here to be recorded and followed like any other node's.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::exec::{Plan, apply_plan, complete_output, fail, next_or, node_error};
use super::nodes::{InputFailure, NodeFailure, PluginNode};
use super::resolve;
use super::state::set_node_output;
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::{
    InFlight, Obj, RunState, RunStatus, StepRecord, WaitReason, WaitState, host_call_record,
};

/// What a plugin node produced (WIT `node-result`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeOutput {
    /// Its output pins.
    pub outputs: Obj,
    /// The ambient payload (`_last_output`, §3.3) it leaves. `None`: a function-like node leaves its outputs,
    /// an effect node nothing.
    pub ambient: Option<Value>,
    /// What the run completes with when this node ends it (the seed's `complete_output`). `None`: the
    /// outputs plus `success`.
    pub complete: Option<Value>,
    /// The effect payload the `completed` record shows in the seed's shape (e.g. `answer_user`'s
    /// `{type, message, level}`); the outputs are then also kept at `_temp.effects.<node>`.
    pub effect_payload: Option<Value>,
    /// A change to the run's `context.messages`.
    pub context_edit: Option<ContextEdit>,
}

impl NodeOutput {
    /// Output pins and nothing else.
    pub fn pins(outputs: Obj) -> Self {
        NodeOutput {
            outputs,
            ..Default::default()
        }
    }
}

/// A change to the run's `context.messages` (WIT `context-edit`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContextEdit {
    /// Messages appended (a turn of a conversation that uses the context).
    Append(Vec<Value>),
    /// The new list (a compaction summary, spans rehydrated at a position, a note kept in context).
    Replace(Vec<Value>),
}

/// What a suspended plugin node waits for (WIT `wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// A person's answer, resumed by a command naming the wait key `name` (as `ask_user` waits).
    User,
    /// An event on the literal wait key `name`.
    Key,
    /// The session event `name` (`emit_event`, or a resume with its wait key).
    Event,
}

/// A plugin node's wait, as its run shows it to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginWait {
    pub kind: WaitKind,
    pub name: String,
    pub prompt: Option<String>,
    pub choices: Option<Vec<Value>>,
    /// Anything else shown in the run's wait.
    pub details: Obj,
}

/// What executing a plugin node produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginOutcome {
    /// The node's result.
    Output(NodeOutput),
    /// The node failed; the run fails with this message.
    Failed(String),
    /// A cancel stopped the node; the run ends as the cancel says, never as a flow error.
    Cancelled(String),
    /// The node called `durability.await`: the run waits.
    Suspended(PluginWait),
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
        Err(e) => match plugin.on_input_failure {
            InputFailure::StartEmpty => Default::default(),
            InputFailure::FailRun => return super::exec::Plan::Fail(e.to_string()),
            InputFailure::Report => return node_error(run, &node.node.id, e.message),
        },
    };
    begin(run, &node.node.id, plugin, inputs, records);
    Plan::Wait
}

/// Records `started` for `node_id` with `inputs` and puts the node in flight.
fn begin(
    run: &mut RunState,
    node_id: &str,
    plugin: &PluginNode,
    inputs: Obj,
    records: &mut Vec<StepRecord>,
) {
    // A run keeps the component version it first used, so a plugin upgrade never changes a run midway.
    let digest = run
        .components
        .get(&plugin.plugin)
        .cloned()
        .unwrap_or_else(|| plugin.digest.clone());
    // What the node reads of its run is fixed now, with its inputs: a re-execution after a restart or a
    // wait sees exactly what the first one saw.
    let run_context = plugin
        .reads
        .run_context
        .then(|| run.vars.get("context").filter(|c| c.is_object()).cloned())
        .flatten();
    let vars = plugin.reads.vars.then(|| Value::Object(run.vars.clone()));
    let mut rec = StepRecord::new(run, node_id, "started");
    let mut payload = json!({"node_type": plugin.node_type, "plugin": plugin.plugin, "digest": digest,
        "inputs": inputs});
    if let Some(ctx) = &run_context {
        payload["run_context"] = ctx.clone();
    }
    rec.effect = Some(json!({"type": plugin.effect_type(), "payload": payload,
        "result_key": format!("_temp.effects.{node_id}")}));
    rec.ended_at = None;
    if let Some(effect) = &plugin.effect {
        // Counted and keyed as the seed's effects, so native effects after it keep the seed's keys.
        let seq = super::effects::next_effect_seq(run);
        rec.idempotency_key = Some(super::effects::idempotency_key(
            &run.run_id,
            node_id,
            effect,
            seq,
        ));
    }
    records.push(rec);
    run.components.insert(plugin.plugin.clone(), digest.clone());
    run.inflight = Some(InFlight {
        node_id: node_id.to_string(),
        node_type: plugin.node_type.clone(),
        plugin: plugin.plugin.clone(),
        digest,
        inputs: Value::Object(inputs),
        run_context,
        vars,
        started_seq: 0,
        awaiting: None,
        started_ms: None,
    });
}

/// Where the outputs of data-only plugin nodes are kept: `vars._temp.plugin_data[node] = {inputs, output|error}`.
const DATA_MEMO: &str = "plugin_data";

/// Deeper than any real graph of data nodes (a cycle is reported by the pull itself).
const MAX_DATA_DEPTH: usize = 64;

/// The first data-only plugin node (not on the execution path) that `node`'s pull needs and that has not
/// run with its current inputs, with those inputs. Its own data sources come first.
pub fn pending_data_node<'f>(
    run: &RunState,
    flow: &'f CompiledFlow,
    node: &CompiledNode,
) -> Option<(&'f CompiledNode, Obj)> {
    pending_below(flow, node, &run.vars, 0, &mut HashSet::new())
}

/// `seen` holds the data nodes already searched without a find: a graph that fans out and joins again is walked
/// once per node, not once per path (2^depth paths for a chain of diamonds).
fn pending_below<'f>(
    flow: &'f CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
    depth: usize,
    seen: &mut HashSet<&'f str>,
) -> Option<(&'f CompiledNode, Obj)> {
    if depth > MAX_DATA_DEPTH {
        return None;
    }
    for edge in &node.inputs {
        let Some(src) = flow.node(&edge.source) else {
            continue;
        };
        if src.exec || !seen.insert(src.node.id.as_str()) {
            continue;
        }
        if let Some(found) = pending_below(flow, src, vars, depth + 1, seen) {
            return Some(found);
        }
        if !matches!(src.kind, super::nodes::NodeKind::Plugin(_)) {
            continue;
        }
        // A pull that fails here fails the same way in the node's own step, which reports it.
        let Ok(inputs) = resolve::data_inputs(flow, src, vars, depth + 1) else {
            continue;
        };
        let fresh = data_memo(vars, &src.node.id)
            .is_some_and(|m| m.get("inputs") == Some(&Value::Object(inputs.clone())));
        if !fresh {
            return Some((src, inputs));
        }
    }
    None
}

fn data_memo<'v>(vars: &'v Obj, node_id: &str) -> Option<&'v Value> {
    vars.get("_temp")?.get(DATA_MEMO)?.get(node_id)
}

/// The output a data-only plugin node produced for `inputs` (its failure as the pull's exception).
pub fn data_output(
    vars: &Obj,
    node_id: &str,
    inputs: &Obj,
) -> Result<Value, crate::builtins::PyException> {
    use crate::builtins::PyException;
    let memo = data_memo(vars, node_id)
        .filter(|m| m.get("inputs") == Some(&Value::Object(inputs.clone())))
        .ok_or_else(|| {
            PyException::new(
                "RuntimeError",
                format!("plugin data node '{node_id}' has not run with these inputs"),
            )
        })?;
    if let Some(Value::String(msg)) = memo.get("error") {
        return Err(match msg.strip_prefix("PluginError: ") {
            Some(rest) => PyException::new("PluginError", rest),
            None => PyException::new("RuntimeError", msg.clone()),
        });
    }
    Ok(memo.get("output").cloned().unwrap_or(Value::Null))
}

/// Starts data-only plugin node `node` with `inputs`; the run's cursor stays on the node that pulls it,
/// which steps again once the output is in. False (nothing started) when `node` is not a plugin node.
pub fn start_data(
    run: &mut RunState,
    node: &CompiledNode,
    inputs: Obj,
    records: &mut Vec<StepRecord>,
) -> bool {
    let super::nodes::NodeKind::Plugin(p) = &node.kind else {
        return false;
    };
    begin(run, &node.node.id, p, inputs, records);
    true
}

/// Keeps what a data-only plugin node produced and leaves the cursor where it is.
fn finish_data(
    run: &mut RunState,
    inflight: &InFlight,
    effect: &str,
    outcome: PluginOutcome,
    records: &mut Vec<StepRecord>,
) {
    let node_id = inflight.node_id.clone();
    run.inflight = None;
    let mut memo = Obj::new();
    memo.insert("inputs".into(), inflight.inputs.clone());
    let mut rec = StepRecord::new(run, &node_id, "completed");
    rec.effect = Some(
        json!({"type": effect, "payload": {"node_type": inflight.node_type,
        "plugin": inflight.plugin, "digest": inflight.digest}, "result_key": null}),
    );
    match outcome {
        // A data node's result is its output pins: it is pulled, never followed, so it completes no run and
        // leaves no ambient payload.
        PluginOutcome::Output(out) => {
            rec.result = Some(Value::Object(out.outputs.clone()));
            memo.insert("output".into(), Value::Object(out.outputs));
        }
        PluginOutcome::Cancelled(msg) => {
            fail(run, records, &node_id, msg);
            return;
        }
        PluginOutcome::Failed(msg) => {
            rec.error = Some(msg.clone());
            memo.insert("error".into(), Value::String(msg));
        }
        PluginOutcome::Suspended(PluginWait { name, .. }) => {
            let msg = format!(
                "PluginError: {}: a data node cannot wait for an event (it awaited {name:?}); give it execution pins",
                inflight.node_type
            );
            rec.error = Some(msg.clone());
            memo.insert("error".into(), Value::String(msg));
        }
    }
    records.push(rec);
    super::state::obj_mut(super::state::temp(&mut run.vars), DATA_MEMO)
        .insert(node_id, Value::Object(memo));
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
    let Some(plugin) = plugin_of(node) else {
        run.inflight = None;
        fail(
            run,
            records,
            &node_id,
            format!("TypeError: node '{node_id}' is not a plugin node"),
        );
        return;
    };
    let effect = plugin.effect_type().to_string();
    if !node.exec {
        finish_data(run, &inflight, &effect, outcome, records);
        return;
    }
    if plugin.on_failure == NodeFailure::CompleteRun
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
        PluginOutcome::Output(result) => {
            run.inflight = None;
            match result.context_edit {
                Some(ContextEdit::Replace(list)) => {
                    with_context_messages(&mut run.vars, |msgs| *msgs = list)
                }
                Some(ContextEdit::Append(turn)) => {
                    with_context_messages(&mut run.vars, |msgs| msgs.extend(turn))
                }
                None => {}
            }
            let out = Value::Object(result.outputs);
            let mut rec = StepRecord::new(run, &node_id, "completed");
            rec.effect = Some(match result.effect_payload {
                // The node's own effect payload, recorded as a native effect's: result under `_temp.effects`.
                Some(payload) => {
                    super::state::obj_mut(super::state::temp(&mut run.vars), "effects")
                        .insert(node_id.clone(), out.clone());
                    json!({"type": effect, "payload": payload,
                        "result_key": super::effects::result_key(&node_id)})
                }
                None => json!({"type": effect, "payload": {"node_type": inflight.node_type,
                    "plugin": inflight.plugin, "digest": inflight.digest}, "result_key": null}),
            });
            rec.idempotency_key = plugin
                .effect
                .as_deref()
                .and_then(|e| effect_key(run, &node_id, e));
            rec.result = Some(out.clone());
            records.push(rec);
            match result.ambient {
                Some(a) => {
                    run.vars.insert("_last_output".into(), a);
                }
                None if plugin.effect.is_none() => {
                    run.vars.insert("_last_output".into(), out.clone());
                }
                None => {}
            }
            set_node_output(&mut run.vars, &node_id, out.clone());
            let completion = result.complete;
            let plan = next_or(node, || completion.unwrap_or_else(|| complete_output(&out)));
            apply_plan(run, flow, node, plan, records);
        }
        PluginOutcome::Failed(msg) | PluginOutcome::Cancelled(msg) => {
            run.inflight = None;
            fail(run, records, &node_id, msg);
        }
        PluginOutcome::Suspended(wait) => suspend(run, &node_id, wait, records),
    }
}

/// The run waits for what its in-flight node awaits.
fn suspend(run: &mut RunState, node_id: &str, wait: PluginWait, records: &mut Vec<StepRecord>) {
    let PluginWait {
        kind,
        name,
        prompt,
        choices,
        details,
    } = wait;
    let by_user = kind == WaitKind::User;
    let mut w = WaitState::new(if by_user {
        WaitReason::User
    } else {
        WaitReason::Event
    });
    // User and key waits are on the literal key (resumed by a command naming it); an event wait is on the
    // session event `name`, which `emit_event` reaches.
    w.wait_key = Some(match kind {
        WaitKind::User | WaitKind::Key => name.clone(),
        WaitKind::Event => super::event_key(run, "session", &name, None),
    });
    w.resume_to_node = Some(node_id.to_string());
    // Clients see the prompt and choices both in the wait's fields and among its details.
    let mut shown = details;
    if let Some(p) = &prompt {
        shown.insert("prompt".into(), Value::String(p.clone()));
    }
    if let Some(c) = &choices {
        shown.insert("choices".into(), Value::Array(c.clone()));
    }
    shown.insert("plugin_await_event".into(), Value::String(name.clone()));
    w.prompt = prompt;
    w.choices = choices;
    w.details = Some(Value::Object(shown));
    let mut rec = StepRecord::new(run, node_id, "waiting");
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

/// Applies `f` to `vars.context.messages`, created (as the seed does) when missing or not a list.
fn with_context_messages(vars: &mut crate::run::Obj, f: impl FnOnce(&mut Vec<Value>)) {
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
        f(list);
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

/// The idempotency key of effect plugin node `node_id` (effect type `effect`), started last.
fn effect_key(run: &RunState, node_id: &str, effect: &str) -> Option<String> {
    let seq = run
        .vars
        .get("_runtime")
        .and_then(|r| r.get("effect_seq"))
        .and_then(Value::as_u64)?;
    Some(super::effects::idempotency_key(
        &run.run_id,
        node_id,
        effect,
        seq,
    ))
}

fn plugin_of(node: &CompiledNode) -> Option<&PluginNode> {
    match &node.kind {
        super::nodes::NodeKind::Plugin(p) => Some(p),
        _ => None,
    }
}

/// The record of a function-like node that raised: a `code` node reports its exception as an output record
/// with `success: false` and `error`; a failure (a sandbox limit) carries its message.
fn exception_record(outcome: &PluginOutcome) -> Option<Obj> {
    match outcome {
        PluginOutcome::Output(out)
            if out.outputs.get("success") == Some(&Value::Bool(false))
                && out.outputs.get("error").is_some_and(Value::is_string) =>
        {
            Some(out.outputs.clone())
        }
        // A cancel stops the run as cancelled, never as a flow error.
        PluginOutcome::Failed(msg) => {
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

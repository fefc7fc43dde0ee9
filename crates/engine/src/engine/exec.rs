//! The step loop: runs a run's current node, follows the plan it returns, and records what the ledger must show.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Value, json};

use super::nodes::NodeKind;
use super::state::{self, last_output, set_node_output};
use super::{control, effects, resolve, varnodes};
use crate::flow::{CompiledFlow, CompiledNode, Next};
use crate::run::{Obj, RunState, RunStatus, StepRecord};

/// Why [`Host::start_child`] started no child run; the text is the failure of the node that asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildStartError {
    /// The step waits for a pin-expression batch and will be discarded: nothing is started.
    #[error("the step waits for a pin expression")]
    PinWait,
    /// The child's variables are over a budget.
    #[error(transparent)]
    Budget(#[from] super::budget::BudgetError),
    /// No loaded workflow has this id.
    #[error("Workflow '{0}' not found in registry")]
    NotFound(String),
}

/// What the engine asks of the world outside one run: child runs and event delivery.
pub trait Host {
    /// Creates a child run of `parent` (durable with the parent's next commit; in `session`, else the parent's) and returns its id.
    fn start_child(
        &mut self,
        parent: &RunState,
        workflow_id: &str,
        vars: Obj,
        session: Option<String>,
    ) -> Result<String, ChildStartError>;
    /// Delivers `envelope` to every run waiting on one of `wait_keys`; returns the run ids resumed.
    fn emit_event(
        &mut self,
        emitter: &RunState,
        wait_keys: &[String],
        envelope: &Value,
    ) -> Vec<String>;
}

/// What a node asks the step loop to do next.
pub enum Plan {
    /// Move the cursor.
    Goto(String),
    /// Complete the run with this output (or return to the active control node, §3.5).
    Complete(Value),
    /// `on_flow_end`: always completes, even inside a control block.
    End(Value),
    /// A terminal effect completed with this result.
    EffectDone(Value),
    /// The run now waits (the effect has set `run.waiting`).
    Wait,
    /// The run fails with this error.
    Fail(String),
}

/// Runs at most `max_steps` steps of `run`; returns the number of steps taken.
pub fn advance(
    run: &mut RunState,
    flow: &CompiledFlow,
    host: &mut dyn Host,
    max_steps: usize,
    records: &mut Vec<StepRecord>,
) -> usize {
    let mut steps = 0;
    while run.status == RunStatus::Running
        && !run.control.paused
        && run.inflight.is_none()
        && steps < max_steps
    {
        steps += 1;
        let Some(node_id) = run.current_node.clone() else {
            fail(
                run,
                records,
                "",
                "RuntimeError: run has no current node".into(),
            );
            break;
        };
        let Some(node) = flow.node(&node_id) else {
            fail(
                run,
                records,
                &node_id,
                format!(
                    "KeyError: node '{node_id}' not found in workflow '{}'",
                    flow.workflow_id
                ),
            );
            break;
        };
        // A panic in one step (a builtin, a pull, an effect) fails this run, never the runner: what the step
        // recorded before it is dropped and the run fails at this node.
        if let Err(e) = super::budget::count_step(run) {
            fail(run, records, &node_id, e.to_string());
            break;
        }
        let mark = records.len();
        // A step that may wait for pin expressions evaluated off the runner thread can be discarded and run
        // again (`pinexpr::deferring`): it starts from a copy of the run.
        let snapshot =
            (flow.pin_exprs.is_some() && super::pinexpr::is_deferring()).then(|| run.clone());
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            // A data-only plugin node the step would pull runs first, in flight; the cursor stays here.
            if !matches!(node.kind, NodeKind::Start)
                && let Some((data, inputs)) = super::plugin_node::pending_data_node(run, flow, node)
                && super::plugin_node::start_data(run, data, inputs, records)
            {
                return;
            }
            let plan = step(run, flow, node, host, records);
            apply_plan(run, flow, node, plan, records);
        }));
        let discarded = super::pinexpr::end_step();
        if discarded && let Some(before) = snapshot {
            *run = before;
            records.truncate(mark);
            break;
        }
        super::budget::note_wait(run);
        if let Err(payload) = stepped {
            records.truncate(mark);
            fail_on_panic(run, records, &node_id, payload.as_ref());
            break;
        }
    }
    steps
}

/// What a caught panic says (its message, when it has one).
pub fn panic_cause(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Fails a run whose step, resume or recovery panicked at `node_id`: the record names the node and the
/// cause. The caller drops what the interrupted work recorded; the run fails even if that work had
/// already ended it.
pub fn fail_on_panic(
    run: &mut RunState,
    records: &mut Vec<StepRecord>,
    node_id: &str,
    payload: &(dyn Any + Send),
) {
    let cause = panic_cause(payload);
    tracing::error!(
        run_id = %run.run_id,
        node_id,
        "a step of the run panicked, the run fails: {cause}"
    );
    run.inflight = None;
    let error = format!("InternalError: node '{node_id}' hit a gateway bug: {cause}");
    fail(run, records, node_id, error);
}

fn step(
    run: &mut RunState,
    flow: &CompiledFlow,
    node: &CompiledNode,
    host: &mut dyn Host,
    records: &mut Vec<StepRecord>,
) -> Plan {
    match &node.kind {
        NodeKind::Start => start_node(run, node),
        NodeKind::Entry(e) => entry_node(*e, run, node),
        NodeKind::Missing(m) => super::missing::run(m, run, flow, node, records),
        NodeKind::End => end_node(run, flow, node),
        NodeKind::Control(c) => control::run(*c, run, flow, node),
        NodeKind::VarWrite(v) => varnodes::run(*v, run, flow, node),
        NodeKind::Builtin(_) => function_node(run, flow, node),
        NodeKind::Memact => memact_node(run, flow, node),
        NodeKind::Plugin(p) => super::plugin_node::start(run, flow, node, p, records),
        NodeKind::Effect(e) => effects::run(*e, run, flow, node, host, records),
    }
}

/// Follows the linear next of a node, or completes with `output`.
pub fn next_or(node: &CompiledNode, output: impl FnOnce() -> Value) -> Plan {
    match &node.next {
        Next::Linear(t) => Plan::Goto(t.clone()),
        _ => Plan::Complete(output()),
    }
}

/// The seed's completion shape for a function-like terminal node.
pub fn complete_output(result: &Value) -> Value {
    match result {
        Value::Object(m) => {
            let mut m = m.clone();
            m.entry("success").or_insert(Value::Bool(true));
            Value::Object(m)
        }
        other => json!({"response": other, "success": true}),
    }
}

/// A node-level error: the run completes with `{success:false, error, node}` (§3.5).
pub fn node_error(run: &mut RunState, node_id: &str, message: String) -> Plan {
    run.vars
        .insert("_flow_error".into(), Value::String(message.clone()));
    run.vars
        .insert("_flow_error_node".into(), Value::String(node_id.into()));
    let out = json!({"success": false, "error": message, "node": node_id});
    set_node_output(&mut run.vars, node_id, out.clone());
    Plan::Complete(out)
}

fn start_node(run: &mut RunState, node: &CompiledNode) -> Plan {
    let defaults = node
        .node
        .data
        .get("pinDefaults")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Obj::new();
    if node.data_outputs.is_empty() {
        for (k, v) in &run.vars {
            if !k.starts_with('_') {
                out.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &defaults {
            if !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
                if !k.starts_with('_') {
                    run.vars.insert(k.clone(), v.clone());
                }
            }
        }
    } else {
        for pin in &node.data_outputs {
            let v = if let Some(v) = run.vars.get(pin) {
                v.clone()
            } else if let Some(d) = defaults.get(pin) {
                if !pin.starts_with('_') {
                    run.vars.insert(pin.clone(), d.clone());
                }
                d.clone()
            } else {
                Value::Null
            };
            out.insert(pin.clone(), v);
        }
    }
    let out = Value::Object(out);
    run.vars.insert("_last_output".into(), out.clone());
    set_node_output(&mut run.vars, &node.node.id, out.clone());
    next_or(node, || complete_output(&out))
}

fn end_node(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let base = match state::node_output(&run.vars, &node.node.id).or_else(|| last_output(&run.vars))
    {
        Some(Value::Object(m)) => m.clone(),
        _ => run
            .vars
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let mut resolved = base;
    // The end node is function-like: a failing pull completes the run with `{success: false, error, node}`.
    if let Err(e) = resolve::apply_wires_and_defaults(flow, node, &run.vars, &mut resolved, 0) {
        return match node_error(run, &node.node.id, e.message) {
            Plan::Complete(out) => Plan::End(out),
            other => other,
        };
    }
    let mut out = if node.data_inputs.is_empty() {
        resolved
    } else {
        node.data_inputs
            .iter()
            .map(|p| (p.clone(), resolved.get(p).cloned().unwrap_or(Value::Null)))
            .collect()
    };
    out.entry("success").or_insert(Value::Bool(true));
    Plan::End(Value::Object(out))
}

fn function_node(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        Err(e) => return node_error(run, &node.node.id, e.message),
    };
    match resolve::call_node_fn_typed(node, &inputs, &run.vars) {
        Ok(v) => {
            run.vars.insert("_last_output".into(), v.clone());
            set_node_output(&mut run.vars, &node.node.id, v.clone());
            next_or(node, || complete_output(&v))
        }
        Err(e) => node_error(run, &node.node.id, e.message),
    }
}

/// `memact_compose`: composes the run's Active Memory (it writes `_runtime.active_memory`), then behaves as a
/// function node: its output becomes `_last_output` and the node's stored output.
fn memact_node(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        Err(e) => return node_error(run, &node.node.id, e.message),
    };
    let v = crate::builtins::memact::compose(&inputs, &mut run.vars);
    run.vars.insert("_last_output".into(), v.clone());
    set_node_output(&mut run.vars, &node.node.id, v.clone());
    next_or(node, || complete_output(&v))
}

/// `on_user_request` / `on_agent_message`: the seed's entry handlers over the run's variables (its input).
fn entry_node(entry: super::nodes::Entry, run: &mut RunState, node: &CompiledNode) -> Plan {
    use super::nodes::Entry;
    let message = run
        .vars
        .get("message")
        .cloned()
        .unwrap_or_else(|| json!(""));
    let out = match entry {
        Entry::UserRequest => json!({
            "message": message,
            "context": run.vars.get("context").cloned().unwrap_or_else(|| json!({})),
        }),
        Entry::AgentMessage => json!({
            "sender": run.vars.get("sender").cloned().unwrap_or_else(|| json!("unknown")),
            "message": message,
            "channel": node.node.config("eventConfig", "channel").cloned().unwrap_or_else(|| json!("")),
        }),
    };
    run.vars.insert("_last_output".into(), out.clone());
    set_node_output(&mut run.vars, &node.node.id, out.clone());
    next_or(node, || complete_output(&out))
}

/// The control node a terminal body node returns to, if any (§3.5).
pub fn active_control(run: &RunState, node_id: &str, flow: &CompiledFlow) -> Option<String> {
    let top = control::active(&run.vars)?;
    if top == node_id
        || flow
            .node(node_id)
            .is_some_and(|n| matches!(n.kind, NodeKind::End))
    {
        return None;
    }
    Some(top)
}

/// Follows `plan` after `node` ran.
pub(super) fn apply_plan(
    run: &mut RunState,
    flow: &CompiledFlow,
    node: &CompiledNode,
    plan: Plan,
    records: &mut Vec<StepRecord>,
) {
    let node_id = node.node.id.clone();
    match plan {
        Plan::Goto(next) => run.current_node = Some(next),
        Plan::Wait => {}
        Plan::Fail(msg) => fail(run, records, &node_id, msg),
        Plan::End(out) => complete(run, records, &node_id, out, None),
        Plan::Complete(out) => {
            if let Some(parent) = active_control(run, &node_id, flow) {
                control::mark_return(&mut run.vars, &parent);
                run.current_node = Some(parent);
            } else {
                complete(run, records, &node_id, out, None);
            }
        }
        Plan::EffectDone(result) => {
            if let Some(parent) = active_control(run, &node_id, flow) {
                control::mark_return(&mut run.vars, &parent);
                run.current_node = Some(parent);
            } else {
                complete(
                    run,
                    records,
                    &node_id,
                    json!({"success": true, "result": result}),
                    None,
                );
            }
        }
    }
}

/// Completes the run: the completion record, then the terminal `abstract.status` record.
pub fn complete(
    run: &mut RunState,
    records: &mut Vec<StepRecord>,
    node_id: &str,
    output: Value,
    via_resume: Option<Value>,
) {
    let mut rec = StepRecord::new(run, node_id, "completed");
    rec.result = Some(match via_resume {
        Some(Value::Object(mut extra)) => {
            let mut m = Obj::new();
            m.insert("completed".into(), Value::Bool(true));
            m.insert("via".into(), "resume".into());
            m.append(&mut extra);
            m.insert("output".into(), output.clone());
            Value::Object(m)
        }
        _ => json!({"completed": true, "output": output}),
    });
    rec.idempotency_key = Some(format!("system:completion:{node_id}"));
    records.push(rec);
    run.status = RunStatus::Completed;
    run.output = Some(output);
    run.waiting = None;
    run.current_node = Some(node_id.to_string());
    terminal_status(run, records, node_id);
}

/// Fails the run with `error` (always recorded, unlike the seed's tick-exception path).
pub fn fail(run: &mut RunState, records: &mut Vec<StepRecord>, node_id: &str, error: String) {
    let mut rec = StepRecord::new(run, node_id, "failed");
    rec.error = Some(error.clone());
    records.push(rec);
    run.status = RunStatus::Failed;
    run.error = Some(error);
    run.waiting = None;
    terminal_status(run, records, node_id);
}

/// The `abstract.status` emit_event record written on every terminal transition.
pub fn terminal_status(run: &RunState, records: &mut Vec<StepRecord>, node_id: &str) {
    let (effect, result) = status_event(run.status);
    let mut rec = StepRecord::new(run, node_id, "completed");
    rec.effect = Some(effect.clone());
    rec.result = Some(result.clone());
    rec.idempotency_key = Some(format!("system:terminal_status:{}", run.status.as_str()));
    records.push(rec);
}

/// The effect and result of the `abstract.status` event for `status`, built once per status: as `json!` every
/// run that ends paid for eleven hashed map inserts.
fn status_event(status: RunStatus) -> &'static (Value, Value) {
    fn build(text: &str) -> (Value, Value) {
        (
            json!({"type": "emit_event", "payload": {"name": "abstract.status", "scope": "session", "payload": {"text": text}}, "result_key": null}),
            json!({"emitted": true, "name": "abstract.status", "payload": {"text": text}}),
        )
    }
    static BY_STATUS: std::sync::LazyLock<[(Value, Value); 5]> = std::sync::LazyLock::new(|| {
        [
            RunStatus::Running,
            RunStatus::Waiting,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ]
        .map(|s| build(s.as_str()))
    });
    let i = match status {
        RunStatus::Running => 0,
        RunStatus::Waiting => 1,
        RunStatus::Completed => 2,
        RunStatus::Failed => 3,
        RunStatus::Cancelled => 4,
    };
    &BY_STATUS[i]
}

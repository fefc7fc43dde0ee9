//! Nodes of the seed's catalogue whose backend this gateway lacks ([`crate::flow::catalogue::Missing`]). They
//! run as the seed's do on a host without that backend: the run fails at the node with the seed's wording, or
//! (the deterministic tool-invoke nodes) the node reports a failed tool call and the run goes on. Either way the
//! ledger shows the node started with its effect, so a client sees where and why.

use serde_json::{Value, json};

use super::effects::started_records;
use super::exec::{Plan, next_or, terminal_status};
use super::resolve;
use super::state::set_node_output;
use crate::flow::catalogue::{Missing, MissingOutcome};
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::{RunState, RunStatus, StepRecord};

/// Runs `node`, whose backend is missing.
pub fn run(
    missing: &Missing,
    run: &mut RunState,
    flow: &CompiledFlow,
    node: &CompiledNode,
    records: &mut Vec<StepRecord>,
) -> Plan {
    let id = node.node.id.clone();
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        Err(e) => return Plan::Fail(e.to_string()),
    };
    let error = missing.error(&node.node.ty);
    let Some(effect_type) = missing.effect else {
        // A function node: it fails like any node whose function raised.
        return Plan::Fail(error);
    };
    let payload = match missing.outcome {
        MissingOutcome::ToolFails(_) => json!({"name": node.node.ty, "arguments": inputs}),
        _ => Value::Object(inputs),
    };
    let (started, mut done) = started_records(run, &id, effect_type, payload);
    records.push(started);
    match missing.outcome {
        MissingOutcome::ToolFails(_) => {
            let out = json!({"result": error, "success": false});
            done.status = "completed".into();
            done.result = Some(out.clone());
            records.push(done);
            run.vars.insert("_last_output".into(), out.clone());
            set_node_output(&mut run.vars, &id, out.clone());
            next_or(node, || out)
        }
        MissingOutcome::NoHandler | MissingOutcome::Fails(_) => {
            done.status = "failed".into();
            done.error = Some(error.clone());
            records.push(done);
            run.status = RunStatus::Failed;
            run.error = Some(error);
            run.waiting = None;
            terminal_status(run, records, &id);
            Plan::Wait
        }
    }
}

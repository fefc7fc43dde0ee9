//! The first round of a new run, taken before its start commits.
//!
//! A run whose flow touches nothing outside its own state ([`CompiledFlow::self_contained`]: pure nodes, control,
//! variables; no effect, plugin, memory, listener or pin expression) is stepped for one round (the runner's
//! `max_steps`) on the starting thread, and its start commits with the state and ledger records that round made.
//! A run that ends in that round is durable once, finished, and the runner never sees it; one that does not is
//! handed over as usual, where it stands.
//!
//! Why this keeps every guarantee: nothing the round does is visible outside the run, so if the start's commit is
//! lost (a crash before the fsync), the round is lost with it and nothing was acknowledged; the client's retry
//! repeats no side effect because there was none. Once the commit is durable the run's state and ledger are
//! exactly what the runner would have written after the same round, only one fsync earlier.

use crate::containment::contain;
use crate::engine::{self, Host};
use crate::flow::CompiledFlow;
use crate::run::{Obj, RunState, StepRecord};
use crate::time;

/// Steps `run` (new, not yet stored) for one round when its flow allows it; answers the round's records, which
/// the caller appends to its ledger in the start's batch. A flow that is not self-contained is left alone.
pub(crate) fn first_round(
    run: &mut RunState,
    flow: &CompiledFlow,
    max_steps: usize,
) -> Vec<StepRecord> {
    let mut recs = Vec::new();
    if !flow.self_contained {
        return recs;
    }
    let before = run.status;
    // `contain` turns a panic or a budget overrun into the run's failure, as it does on the runner thread.
    contain(run, &mut recs, before, |run, recs| {
        engine::advance(run, flow, &mut Sealed, max_steps, recs);
    });
    run.updated_at = time::now_iso();
    recs
}

/// The world as a self-contained flow sees it: nothing. Its nodes never ask for a child run or an event (the flow
/// would not be self-contained); if one did, the panic is contained as the run's failure, naming the broken rule.
struct Sealed;

impl Host for Sealed {
    fn start_child(
        &mut self,
        _: &RunState,
        workflow_id: &str,
        _: Obj,
        _: Option<String>,
    ) -> Result<String, engine::ChildStartError> {
        panic!("a self-contained flow started a child run of '{workflow_id}'")
    }

    fn emit_event(&mut self, _: &RunState, _: &[String], _: &serde_json::Value) -> Vec<String> {
        panic!("a self-contained flow emitted an event")
    }
}

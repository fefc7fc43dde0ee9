//! What the runner reports to the process's metrics recorder (with none installed, nothing is kept): runs started
//! and finished by workflow, their duration, the ready queue, and commands by type and outcome. The names are
//! listed, with the rest, in `docs/api.md` ("Metrics").

use std::collections::{BTreeMap, HashSet};

use parking_lot::Mutex;

use crate::run::RunState;

/// The values one label has taken, bounded: a label set that grows with what bundles or clients name would grow
/// the recorder's memory without end, so past `max` distinct values a new one reports as `other`.
pub struct Labels {
    seen: Mutex<Option<HashSet<String>>>,
    max: usize,
}

impl Labels {
    /// At most `max` distinct values.
    pub const fn new(max: usize) -> Labels {
        Labels {
            seen: Mutex::new(None),
            max,
        }
    }

    /// `value` (cut to 200 characters) while there is room, else `other`.
    pub fn get(&self, value: &str) -> String {
        let value: String = value.chars().take(200).collect();
        let mut seen = self.seen.lock();
        let seen = seen.get_or_insert_with(HashSet::new);
        if seen.contains(&value) || seen.len() < self.max && seen.insert(value.clone()) {
            value
        } else {
            "other".into()
        }
    }
}

static WORKFLOWS: Labels = Labels::new(500);

/// The workflow label of a run: a bundle's workflow id; a schedule's generated id (a new one per schedule) is
/// `scheduled`. Clients cannot grow the label set.
fn workflow_label(id: &str) -> String {
    if id.starts_with("scheduled:") {
        return "scheduled".into();
    }
    WORKFLOWS.get(id)
}

/// A run was created (a start, a schedule, a listener, or a child).
pub(crate) fn run_started(run: &RunState) {
    metrics::counter!("abstractgateway_runs_started_total", "workflow" => workflow_label(&run.workflow_id))
        .increment(1);
}

/// A run reached a terminal status.
pub(crate) fn run_finished(run: &RunState) {
    let workflow = workflow_label(&run.workflow_id);
    let status = run.status.as_str();
    metrics::counter!("abstractgateway_runs_finished_total", "workflow" => workflow.clone(), "status" => status)
        .increment(1);
    if let Some(started) = crate::time::iso_ms(&run.created_at) {
        let secs = (crate::time::now_ms().saturating_sub(started)) as f64 / 1000.0;
        metrics::histogram!("abstractgateway_run_duration_seconds", "workflow" => workflow, "status" => status)
            .record(secs);
    }
}

/// Runs ready to step, after a round.
pub(crate) fn ready_queue(shard: u32, depth: usize) {
    // One gauge for the process: the loops of the shards it steps add up.
    static DEPTHS: Mutex<BTreeMap<u32, usize>> = Mutex::new(BTreeMap::new());
    let total: usize = {
        let mut depths = DEPTHS.lock();
        depths.insert(shard, depth);
        depths.values().sum()
    };
    metrics::gauge!("abstractgateway_ready_queue_depth").set(total as f64);
}

/// A command was applied or rejected.
pub(crate) fn command(kind: &str, status: &str) {
    let kind = if crate::run::COMMAND_TYPES.contains(&kind) {
        kind
    } else {
        "other"
    };
    metrics::counter!("abstractgateway_commands_total", "type" => kind.to_string(), "outcome" => status.to_string())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::Labels;

    #[test]
    fn a_label_set_stops_growing_at_its_bound() {
        let labels = Labels::new(3);
        for v in ["a", "b", "c"] {
            assert_eq!(labels.get(v), v);
        }
        assert_eq!(labels.get("d"), "other");
        assert_eq!(labels.get("a"), "a", "a known value keeps its label");
        let long = "x".repeat(1000);
        assert_eq!(Labels::new(1).get(&long).len(), 200);
    }

    #[test]
    fn schedules_share_one_workflow_label() {
        assert_eq!(super::workflow_label("scheduled:1f2e"), "scheduled");
    }
}

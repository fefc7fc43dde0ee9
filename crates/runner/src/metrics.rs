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
        let value = match value.char_indices().nth(200) {
            Some((cut, _)) => &value[..cut],
            None => value,
        };
        let mut seen = self.seen.lock();
        let seen = seen.get_or_insert_with(HashSet::new);
        if seen.contains(value) || seen.len() < self.max && seen.insert(value.to_string()) {
            value.to_string()
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
    with_handles(&run.workflow_id, |h| {
        h.started
            .get_or_insert_with(|| {
                metrics::counter!("abstractgateway_runs_started_total", "workflow" => h.label.clone())
            })
            .increment(1)
    });
}

/// A run reached a terminal status.
pub(crate) fn run_finished(run: &RunState) {
    let status = run.status;
    let (count, seconds) = with_handles(&run.workflow_id, |h| {
        h.finished[status as usize]
            .get_or_insert_with(|| {
                let (workflow, status) = (h.label.clone(), status.as_str());
                (
                    metrics::counter!("abstractgateway_runs_finished_total", "workflow" => workflow.clone(), "status" => status),
                    metrics::histogram!("abstractgateway_run_duration_seconds", "workflow" => workflow, "status" => status),
                )
            })
            .clone()
    });
    count.increment(1);
    if let Some(started) = crate::time::iso_ms(&run.created_at) {
        seconds.record((crate::time::now_ms().saturating_sub(started)) as f64 / 1000.0);
    }
}

/// The run metrics' handles of one workflow label.
struct WorkflowHandles {
    label: String,
    started: Option<metrics::Counter>,
    /// By `RunStatus` (its discriminant).
    finished: [Option<(metrics::Counter, metrics::Histogram)>; 5],
}

/// Handles kept per workflow label, with the recorder they were registered with. Registering a labelled metric
/// builds and hashes its key, a few thousand instructions a run; a kept handle is an atomic add. A handle taken
/// before the recorder was installed belongs to the no-op recorder, so a change of recorder drops them all.
struct Kept {
    recorder: usize,
    by_label: std::collections::HashMap<String, WorkflowHandles>,
}

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

fn with_handles<T>(workflow_id: &str, f: impl FnOnce(&mut WorkflowHandles) -> T) -> T {
    // The address of the recorder in effect identifies it (the no-op one is a static).
    let recorder =
        metrics::with_recorder(|r| r as *const dyn metrics::Recorder as *const () as usize);
    let label = workflow_label(workflow_id);
    let mut kept = KEPT.lock();
    let kept = match kept.as_mut() {
        Some(k) if k.recorder == recorder => k,
        _ => kept.insert(Kept {
            recorder,
            by_label: Default::default(),
        }),
    };
    let h = kept
        .by_label
        .entry(label)
        .or_insert_with_key(|label| WorkflowHandles {
            label: label.clone(),
            started: None,
            finished: Default::default(),
        });
    f(h)
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};

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

    /// Counts `abstractgateway_runs_finished_total` increments, whatever their labels.
    #[derive(Default)]
    struct Finished(Arc<AtomicU64>);

    impl metrics::Recorder for Finished {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            if key.name() == "abstractgateway_runs_finished_total" {
                Counter::from_arc(self.0.clone())
            } else {
                Counter::noop()
            }
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn handles_kept_before_a_recorder_is_installed_do_not_swallow_its_counts() {
        let mut run = crate::run::new_run_state(
            "kept-handles@1:wf",
            "start",
            Default::default(),
            None,
            None,
            None,
        );
        run.status = crate::run::RunStatus::Completed;
        // Without a recorder: the kept handles are the no-op recorder's.
        super::run_finished(&run);
        let recorder = Finished::default();
        metrics::with_local_recorder(&recorder, || {
            super::run_finished(&run);
            super::run_finished(&run);
        });
        assert_eq!(recorder.0.load(Ordering::Relaxed), 2);
        // A second recorder (another address) gets handles of its own too.
        let other = Finished::default();
        metrics::with_local_recorder(&other, || super::run_finished(&run));
        assert_eq!(other.0.load(Ordering::Relaxed), 1);
        assert_eq!(recorder.0.load(Ordering::Relaxed), 2);
    }
}

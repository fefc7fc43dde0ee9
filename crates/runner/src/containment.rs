//! Containment: a panic in the work on one run (a step, a resume, a plugin outcome, a command, the
//! recovery of a parent) fails that run and never the runner; a runner thread that dies anyway takes the
//! process with it, so the API never goes on accepting runs that would never move.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::engine::budget;
use crate::engine::exec::{fail, fail_on_panic, panic_cause};
use crate::run::{RunState, RunStatus, StepRecord};

/// The exit status of a process whose runner thread died (`EX_SOFTWARE`).
pub const RUNNER_DIED_EXIT_CODE: i32 = 70;

/// Runs `f` on `run` (whose status was `before`); `None` when it panicked. What `f` recorded is then
/// dropped and the run fails with a record naming its node and the cause; a run that had already ended
/// keeps its end.
///
/// A run that `f` left over one of its budgets (`engine::budget`) fails the same way, with the budget's
/// error, and keeps only the part of its state that fits: nothing is stored that could not be read back.
pub(crate) fn contain<T>(
    run: &mut RunState,
    recs: &mut Vec<StepRecord>,
    before: RunStatus,
    f: impl FnOnce(&mut RunState, &mut Vec<StepRecord>) -> T,
) -> Option<T> {
    let mark = recs.len();
    let payload = match catch_unwind(AssertUnwindSafe(|| f(run, recs))) {
        Ok(out) => {
            if !before.is_terminal()
                && let Err(e) = budget::check_run(run, &recs[mark..])
                    .and_then(|()| budget::count_records(run, &recs[mark..]))
            {
                recs.truncate(mark);
                let node = node_of(run);
                tracing::warn!(run_id = %run.run_id, node_id = %node, "the run fails: {e}");
                budget::shed(run);
                fail(run, recs, &node, e.to_string());
            }
            return Some(out);
        }
        Err(payload) => payload,
    };
    recs.truncate(mark);
    if before.is_terminal() {
        tracing::error!(
            run_id = %run.run_id,
            "work on an ended run panicked, the run keeps its end: {}",
            panic_cause(payload.as_ref())
        );
        run.status = before;
        return None;
    }
    let node = node_of(run);
    fail_on_panic(run, recs, &node, payload.as_ref());
    None
}

/// The node a run is at: its plugin node in flight, else its cursor.
fn node_of(run: &RunState) -> String {
    run.inflight
        .as_ref()
        .map(|f| f.node_id.clone())
        .or_else(|| run.current_node.clone())
        .unwrap_or_default()
}

/// Held by the runner thread: dropped while armed (the thread returned on an error, or is unwinding from
/// a panic nothing contained), it ends the process with [`RUNNER_DIED_EXIT_CODE`] so that it is restarted
/// and recovers, instead of serving runs that never move. Disarmed only when the runner was asked to stop.
pub(crate) struct ExitIfRunnerDies {
    armed: bool,
}

impl ExitIfRunnerDies {
    /// An armed guard.
    pub(crate) fn arm() -> Self {
        ExitIfRunnerDies { armed: true }
    }

    /// The runner stops because it was asked to: the process goes on.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ExitIfRunnerDies {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let how = if std::thread::panicking() {
            "panicked"
        } else {
            "stopped on an error"
        };
        tracing::error!(
            "the runner thread {how}; exiting with status {RUNNER_DIED_EXIT_CODE} so that the gateway restarts and recovers its runs"
        );
        eprintln!(
            "abstractgateway: the runner thread {how}; exiting with status {RUNNER_DIED_EXIT_CODE}"
        );
        std::process::exit(RUNNER_DIED_EXIT_CODE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::flows::Flows;
    use crate::store::{Batch, Store};
    use crate::world::World;

    /// The (node, status, error) of every record of `run_id`.
    fn ledger(store: &Store, run_id: &str) -> Vec<(String, String, Option<String>)> {
        store
            .ledger_after(run_id, 0, 100)
            .expect("ledger")
            .iter()
            .map(|e| {
                let r: Value = serde_json::from_str(e.json.get()).expect("record");
                (
                    r["node_id"].as_str().unwrap_or_default().to_string(),
                    r["status"].as_str().unwrap_or_default().to_string(),
                    r["error"].as_str().map(String::from),
                )
            })
            .collect()
    }

    #[test]
    fn a_panic_in_the_work_on_one_run_fails_that_run_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let mut world = World::new(Arc::new(Flows::new()), 10);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let run = crate::run::new_run_state("w", "n1", Default::default(), None, None, None);
            ids.push(run.run_id.clone());
            world.adopt(run);
        }
        let out: Option<()> = world.with_run(&ids[0], |run, recs, _| {
            run.vars.insert("half".into(), Value::Bool(true));
            recs.push(StepRecord::new(run, "n1", "completed"));
            panic!("boom in a resume");
        });
        assert_eq!(out, None);
        // The other run is untouched and the world still works on it.
        assert_eq!(world.with_run(&ids[1], |_, _, _| 7), Some(7));
        let failed = &world.runs[&ids[0]];
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("InternalError: node 'n1' hit a gateway bug: boom in a resume")
        );
        assert_eq!(world.runs[&ids[1]].status, RunStatus::Running);
        let mut batch = Batch::default();
        let evict = world.drain_into(&mut batch);
        store.commit(batch).expect("commit");
        world.evict(&evict);
        // The half-done record is dropped: the failure and the terminal status are all the ledger shows.
        let recs = ledger(&store, &ids[0]);
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0].0, "n1");
        assert_eq!(recs[0].1, "failed");
        assert!(recs[0].2.as_deref().is_some_and(|e| e.contains("boom")));
        let stored = store.get_run(&ids[0]).expect("get").expect("run");
        assert_eq!(stored.status, RunStatus::Failed);
        assert!(!world.runs.contains_key(&ids[0]), "ended runs are evicted");
    }

    #[test]
    fn a_panic_in_the_work_on_an_ended_run_keeps_its_end() {
        let mut world = World::new(Arc::new(Flows::new()), 10);
        let mut run = crate::run::new_run_state("w", "n1", Default::default(), None, None, None);
        run.status = RunStatus::Completed;
        let id = run.run_id.clone();
        world.adopt(run);
        let out: Option<()> = world.with_run(&id, |run, _, _| {
            run.status = RunStatus::Running;
            panic!("late");
        });
        assert_eq!(out, None);
        assert_eq!(world.runs[&id].status, RunStatus::Completed);
        assert_eq!(world.runs[&id].error, None);
    }

    /// Set in the child process of the guard test: what its runner thread does.
    const CHILD: &str = "ABSTRACTGATEWAY_TEST_RUNNER_DEATH";

    #[test]
    #[ignore = "run as a child process by a_runner_thread_that_dies_ends_the_process"]
    fn child_runner_thread() {
        let Ok(mode) = std::env::var(CHILD) else {
            return;
        };
        // A thread holding the guard panics, returns on an error, or is asked to stop.
        let thread = std::thread::spawn(move || {
            let guard = ExitIfRunnerDies::arm();
            match mode.as_str() {
                "panic" => panic!("a bug outside any run"),
                "stop" => guard.disarm(),
                _ => drop(guard),
            }
        });
        let _ = thread.join();
        std::process::exit(0)
    }

    /// The exit status of this test binary running [`child_runner_thread`] in `mode`.
    fn child_exit(mode: &str) -> Option<i32> {
        let exe = std::env::current_exe().expect("test binary");
        // The harness names tests by their path without the crate's name.
        let module = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, rest)| rest);
        let out = std::process::Command::new(exe)
            .args([
                &format!("{module}::child_runner_thread"),
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD, mode)
            .output()
            .expect("child runs");
        // A filter that matches nothing would exit 0 too: the child must really have run the test.
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("running 1 test"),
            "the child ran no test: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        out.status.code()
    }

    #[test]
    fn a_runner_thread_that_dies_ends_the_process() {
        assert_eq!(child_exit("panic"), Some(RUNNER_DIED_EXIT_CODE));
        assert_eq!(child_exit("error"), Some(RUNNER_DIED_EXIT_CODE));
        assert_eq!(child_exit("stop"), Some(0));
    }
}

//! Run state is bounded (engine + runner + store in process): a var path, a value's nesting and a run's
//! size over budget fail that run with a clear error, so every stored run reads back; listing skips a
//! run that cannot be decoded, and recovery quarantines it while the other runs recover.

mod inproc;

use inproc::flowgen::{edge, node, write_bundle};
use inproc::wait_for;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::engine::NodeRegistry;
use abstractgateway::engine::budget::{MAX_VALUE_DEPTH, MAX_VAR_PATH_SEGMENTS};
use abstractgateway::run::{RunState, RunStatus};
use abstractgateway::runner::{Gateway, GatewayOptions, StartError, StartRequest, catalog};
use abstractgateway::store::{Batch, NewCommand, RunQuery};
use serde_json::{Value, json};

/// `start(name, value) -> set_var(name, value) -> ask_user -> end(response)`.
fn set_then_wait() -> Value {
    json!({"id": "setwait", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["name", "value"], json!({})),
        node("set", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({})),
        node("ask", "ask_user", true, &["exec-out"], &["prompt"], &["response"], json!({})),
        node("e", "on_flow_end", true, &[], &["response"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "set", "exec-in"), edge("s", "name", "set", "name"),
                edge("s", "value", "set", "value"), edge("set", "exec-out", "ask", "exec-in"),
                edge("ask", "exec-out", "e", "exec-in"), edge("ask", "response", "e", "response")]})
}

const WORKFLOW: &str = "features@1.0.0:setwait";

fn gateway(dir: &Path) -> Arc<Gateway> {
    let b = write_bundle(dir, &[("setwait", set_then_wait())], "setwait");
    let bundle = Arc::new(read_bundle(&b, &Limits::default()).expect("bundle loads"));
    let (flows, _, problems) = catalog::build(vec![bundle], &NodeRegistry::new());
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner: true,
            max_steps: 100,
            executor: None,
        },
        flows,
    )
    .expect("open")
}

fn try_start(gw: &Gateway, input: Value) -> Result<RunState, StartError> {
    gw.start_run(StartRequest {
        workflow_id: WORKFLOW.into(),
        input: input.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    })
}

fn start(gw: &Gateway, name: &str, value: Value) -> String {
    try_start(gw, json!({"name": name, "value": value}))
        .expect("start")
        .run_id
}

fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

fn dotted(segments: usize) -> String {
    vec!["a"; segments].join(".")
}

fn answer(gw: &Gateway, id: &str, run_id: &str) {
    gw.submit_command(NewCommand {
        command_id: id.into(),
        run_id: run_id.into(),
        kind: "resume".into(),
        payload: json!({"payload": {"response": "red"}}),
        ts: None,
        client_id: Some("test".into()),
    })
    .expect("append");
}

fn completes(gw: &Gateway, run_id: &str) {
    let r = wait_for(gw, run_id, |r| r.status.is_terminal());
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(
        r.output.as_ref().map(|o| &o["response"]),
        Some(&json!("red"))
    );
}

fn all_runs(gw: &Gateway) -> Vec<RunState> {
    gw.store()
        .list_runs(&RunQuery {
            limit: 100,
            ..RunQuery::default()
        })
        .expect("listing never fails")
}

#[test]
fn a_200_segment_set_var_fails_its_run_and_a_restart_reads_everything_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let (deep, deep_value, fine) = {
        let gw = gateway(dir.path());
        // Before: the run waited with vars nested 200 deep; after a restart the runner died reading it.
        let deep = start(&gw, &dotted(200), json!(1));
        // A path within budget, but a value that takes the run's state past the nesting budget.
        let deep_value = start(
            &gw,
            &dotted(MAX_VAR_PATH_SEGMENTS),
            nested(MAX_VALUE_DEPTH - 10),
        );
        let fine = start(&gw, &dotted(MAX_VAR_PATH_SEGMENTS), json!(1));
        let r = wait_for(&gw, &deep, |r| r.status.is_terminal());
        assert_eq!(r.status, RunStatus::Failed);
        let error = r.error.clone().unwrap_or_default();
        assert!(error.starts_with("RunBudgetExceeded: "), "{error}");
        assert!(error.contains("200 segments"), "{error}");
        assert_eq!(
            inproc::ledger_summary(&gw, &deep)[0],
            ("set".into(), "failed".into(), Some(error))
        );
        let r = wait_for(&gw, &deep_value, |r| r.status.is_terminal());
        assert_eq!(r.status, RunStatus::Failed);
        let error = r.error.clone().unwrap_or_default();
        assert!(
            error.contains("variable 'a' is nested more than"),
            "{error}"
        );
        assert!(
            !r.vars.contains_key("a"),
            "the value over budget is not kept"
        );
        wait_for(&gw, &fine, |r| r.status == RunStatus::Waiting);
        // A start whose input is over budget is refused before anything is stored.
        match try_start(
            &gw,
            json!({"name": "x", "value": nested(MAX_VALUE_DEPTH + 1)}),
        ) {
            Err(StartError::Invalid(e)) => assert!(e.contains("RunBudgetExceeded"), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        gw.shutdown();
        (deep, deep_value, fine)
    };
    let gw = gateway(dir.path());
    let listed: Vec<String> = all_runs(&gw).into_iter().map(|r| r.run_id).collect();
    for id in [&deep, &deep_value, &fine] {
        assert!(listed.contains(id), "{id} listed");
    }
    // The waiting run recovered and completes.
    answer(&gw, "after", &fine);
    completes(&gw, &fine);
}

/// The run once recovery has quarantined it (until then, reading it fails).
fn quarantined(gw: &Gateway, run_id: &str) -> RunState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(r)) = gw.store().get_run(run_id)
            && r.status.is_terminal()
        {
            return r;
        }
        assert!(Instant::now() < deadline, "run {run_id} never quarantined");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn recovery_quarantines_an_unreadable_run_and_the_others_recover() {
    let dir = tempfile::tempdir().expect("tmp");
    let (bad, good) = {
        let gw = gateway(dir.path());
        let good = start(&gw, "x", json!(1));
        wait_for(&gw, &good, |r| r.status == RunStatus::Waiting);
        // An active run stored (as before the budgets) nested past what serde_json reads back.
        let mut bad = gw.store().get_run(&good).expect("get").expect("good run");
        bad.run_id = "unreadable-run".into();
        bad.status = RunStatus::Running;
        bad.waiting = None;
        bad.ledger_len = 0;
        bad.vars.insert("deep".into(), nested(200));
        let mut batch = Batch::new();
        batch.put_run(&bad);
        gw.store().commit(batch).expect("commit");
        assert!(
            gw.store().get_run(&bad.run_id).is_err(),
            "stored unreadable"
        );
        // Listing skips it, with a warning.
        let listed: Vec<String> = all_runs(&gw).into_iter().map(|r| r.run_id).collect();
        assert!(
            listed.contains(&good) && !listed.contains(&bad.run_id),
            "{listed:?}"
        );
        gw.shutdown();
        (bad.run_id, good)
    };
    // Twice: the quarantine holds and no start trips over the bad run.
    for round in 0..2 {
        let gw = gateway(dir.path());
        let r = quarantined(&gw, &bad);
        assert_eq!(r.status, RunStatus::Failed);
        let error = r.error.clone().unwrap_or_default();
        assert!(error.starts_with("RunStateUnreadable: "), "{error}");
        assert!(error.contains("recursion limit"), "{error}");
        assert_eq!(r.workflow_id, WORKFLOW);
        let recs = inproc::ledger_summary(&gw, &bad);
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0], ("".into(), "failed".into(), Some(error)));
        let listed: Vec<String> = all_runs(&gw).into_iter().map(|r| r.run_id).collect();
        assert!(
            listed.contains(&bad) && listed.contains(&good),
            "{listed:?}"
        );
        if round == 0 {
            answer(&gw, "after", &good);
            completes(&gw, &good);
        }
        // The runner goes on with new runs.
        let more = start(&gw, "y", json!(2));
        wait_for(&gw, &more, |r| r.status == RunStatus::Waiting);
        gw.shutdown();
    }
}

//! Run state is bounded (engine + runner + store in process): a var path, a value's nesting and a run's
//! size over budget fail that run with a clear error, so every stored run reads back; listing skips a
//! run that cannot be decoded, and recovery quarantines it while the other runs recover.

mod in_process;

use in_process::flowgen::{edge, node, write_bundle};
use in_process::wait_for;

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
    small_budgets();
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
            in_process::ledger_summary(&gw, &deep)[0],
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
            Err(StartError::Budget(e)) => {
                assert!(e.to_string().contains("RunBudgetExceeded"), "{e}")
            }
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
        let recs = in_process::ledger_summary(&gw, &bad);
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

// ---------------------------------------------------------------------------------------------------------
// Per-run budgets: steps, loop iterations, child runs, ledger bytes.

/// Every test of this binary runs with these budgets (one set per process; same values everywhere).
fn small_budgets() {
    abstractgateway::engine::budget::configure(abstractgateway::engine::budget::RunBudgets {
        steps: 30_000,
        child_runs: 5,
        ledger_records: 0,
        ledger_bytes: 40 << 20,
    });
}

/// A gateway over bundle `features` holding `flows` (the first is the entry).
fn gateway_of(dir: &Path, flows: &[(&str, Value)]) -> Arc<Gateway> {
    small_budgets();
    let b = write_bundle(dir, flows, flows[0].0);
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

fn run_flow(gw: &Gateway, flow: &str, input: Value) -> RunState {
    let id = gw
        .start_run(StartRequest {
            workflow_id: format!("features@1.0.0:{flow}"),
            input: input.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        })
        .expect("start")
        .run_id;
    wait_for(gw, &id, |r| r.status.is_terminal())
}

fn error_of(r: &RunState) -> String {
    r.error.clone().unwrap_or_default()
}

#[test]
fn an_exec_edge_cycle_fails_at_the_step_budget() {
    let dir = tempfile::tempdir().expect("tmp");
    // s → a → b → a → ... with no wait anywhere.
    let cycle = json!({"id": "cycle", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("a", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({"pinDefaults": {"name": "x", "value": 1}})),
        node("b", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({"pinDefaults": {"name": "y", "value": 2}}))],
      "edges": [edge("s", "exec-out", "a", "exec-in"), edge("a", "exec-out", "b", "exec-in"),
                edge("b", "exec-out", "a", "exec-in")]});
    let ok = json!({"id": "ok", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "e", "exec-in")]});
    let gw = gateway_of(dir.path(), &[("cycle", cycle), ("ok", ok)]);
    let r = run_flow(&gw, "cycle", json!({}));
    assert_eq!(r.status, RunStatus::Failed);
    let e = error_of(&r);
    assert!(
        e.starts_with("RunBudgetExceeded: the run took 30000 steps without waiting"),
        "{e}"
    );
    // The failure is recorded and the ledger reads back whole.
    let tail = gw
        .store()
        .ledger_after(&r.run_id, r.ledger_len.saturating_sub(2), 10)
        .expect("ledger");
    let failed = tail.iter().any(|e| {
        let rec: Value = serde_json::from_str(e.json.get()).expect("record");
        rec["status"] == json!("failed")
            && rec["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("RunBudgetExceeded"))
    });
    assert!(failed, "no failure record at the end of the ledger");
    // The gateway goes on: another run completes.
    assert_eq!(run_flow(&gw, "ok", json!({})).status, RunStatus::Completed);
}

#[test]
fn a_loop_limit_with_a_huge_max_stops_at_the_loop_ceiling() {
    let dir = tempfile::tempdir().expect("tmp");
    // s → L(loop_limit max=1e12) --again--> a → L ; L --limit_reached--> e.
    let flow = json!({"id": "limit", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("L", "loop_limit", true, &["again", "limit_reached"], &["max"], &["count"], json!({"pinDefaults": {"max": 1e12}})),
        node("a", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({"pinDefaults": {"name": "x", "value": 1}})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "L", "exec-in"), edge("L", "again", "a", "exec-in"),
                edge("a", "exec-out", "L", "exec-in"), edge("L", "limit_reached", "e", "exec-in")]});
    let gw = gateway_of(dir.path(), &[("limit", flow)]);
    let r = run_flow(&gw, "limit", json!({}));
    // The seed's for/while way: the node errors, the run completes with success false.
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.expect("output");
    assert_eq!(out["success"], json!(false), "{out}");
    assert_eq!(
        out["error"],
        json!("loop_limit exceeded max_iterations=10000"),
        "{out}"
    );
    assert_eq!(out["node"], json!("L"));
}

#[test]
fn child_runs_are_bounded_per_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let child = json!({"id": "child", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "e", "exec-in")]});
    // for i in 0..100: subflow(child).
    let parent = json!({"id": "parent", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("f", "for", true, &["loop", "done"], &["start", "end"], &["i"], json!({"pinDefaults": {"start": 0, "end": 100}})),
        node("sub", "subflow", true, &["exec-out"], &[], &["output"], json!({"subflowId": "child"})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "f", "exec-in"), edge("f", "loop", "sub", "exec-in"),
                edge("f", "done", "e", "exec-in")]});
    let gw = gateway_of(dir.path(), &[("parent", parent), ("child", child)]);
    let r = run_flow(&gw, "parent", json!({}));
    assert_eq!(r.status, RunStatus::Failed, "{:?}", r.output);
    let e = error_of(&r);
    assert!(
        e.contains("RunBudgetExceeded: the run started 5 child runs"),
        "{e}"
    );
    let children = gw
        .store()
        .list_runs(&RunQuery {
            limit: 1000,
            ..Default::default()
        })
        .expect("list")
        .into_iter()
        .filter(|c| c.parent_run_id.as_deref() == Some(r.run_id.as_str()))
        .count();
    assert_eq!(children, 5);
}

#[test]
fn a_run_that_waits_between_big_records_fails_at_the_ledger_byte_budget() {
    let dir = tempfile::tempdir().expect("tmp");
    // s → big(emit_event with the blob) → w(wait_until 10 ms) → big → ...: each pass waits for time (the
    // step budget starts again) and writes a few MiB to the ledger.
    let flow = json!({"id": "bytes", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["blob"], json!({})),
        node("big", "emit_event", true, &["exec-out"], &["name", "payload"], &[], json!({"pinDefaults": {"name": "blob"}})),
        node("w", "wait_until", true, &["exec-out"], &["duration"], &[], json!({"pinDefaults": {"duration": 0.01}}))],
      "edges": [edge("s", "exec-out", "big", "exec-in"), edge("s", "blob", "big", "payload"),
                edge("big", "exec-out", "w", "exec-in"), edge("w", "exec-out", "big", "exec-in")]});
    let gw = gateway_of(dir.path(), &[("bytes", flow)]);
    let r = run_flow(&gw, "bytes", json!({"blob": "x".repeat(2 << 20)}));
    assert_eq!(r.status, RunStatus::Failed);
    let e = error_of(&r);
    assert!(
        e.starts_with("RunBudgetExceeded: the run's ledger would take about"),
        "{e}"
    );
    // Under 40 MiB of records (plus the failure record), read back whole.
    let items = gw
        .store()
        .ledger_after(&r.run_id, 0, 10_000)
        .expect("ledger");
    let bytes: usize = items.iter().map(|e| e.json.get().len()).sum();
    assert!(bytes < (41 << 20), "{bytes}");
    assert_eq!(items.len() as u64, r.ledger_len);
}

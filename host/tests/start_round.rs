//! A new run whose flow touches nothing outside its own state takes its first round before its start commits
//! (engine + runner + store in process, real plugin host): such a run is stored finished by the start itself,
//! one that needs more than a round is handed over where it stands, and every other flow starts as before.
//! The gateways here run no runner loop unless a test says so, so whatever a stored run shows after its start
//! was done by the start.

mod in_process;

use in_process::flowgen::{diamonds_flow, edge, loops_flow, node, one_node_flow, write_bundle};
use in_process::wait_for;

use std::path::Path;
use std::sync::Arc;

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::run::RunStatus;
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use abstractgateway::store::RunQuery;
use serde_json::{Value, json};

const WF: &str = "features@1.0.0:";

fn flows() -> Vec<(&'static str, Value)> {
    let upper = one_node_flow("upper", "uppercase", &["text"], &["result"]);
    let loops = loops_flow();
    // A var path far over the budget: the run fails at `set`.
    let deep_path = vec!["a"; 200].join(".");
    let too_deep = json!({"id": "too_deep", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("set", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({"pinDefaults": {"name": deep_path, "value": 1}})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "set", "exec-in"), edge("set", "exec-out", "e", "exec-in")]});
    let ask = one_node_flow("ask", "ask_user", &["prompt"], &["response"]);
    let sub = json!({"id": "sub", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["text"], json!({})),
        node("call", "subflow", true, &["exec-out"], &["text"], &["output"], json!({"subflowId": "upper"})),
        node("e", "on_flow_end", true, &[], &["output"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "call", "exec-in"), edge("s", "text", "call", "text"),
                edge("call", "exec-out", "e", "exec-in"), edge("call", "output", "e", "output")]});
    let emit = json!({"id": "emit", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("x", "emit_event", true, &["exec-out"], &["name", "payload"], &[], json!({"pinDefaults": {"name": "ping"}})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "x", "exec-in"), edge("x", "exec-out", "e", "exec-in")]});
    // Pure nodes, but an `on_event` listener: every root run starts a listener run beside it.
    let listens = json!({"id": "listens", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({})),
        node("on", "on_event", false, &["exec-out"], &[], &["payload"], json!({"eventConfig": {"name": "ping"}})),
        node("up", "uppercase", true, &["exec-out"], &["text"], &["result"], json!({}))],
      "edges": [edge("s", "exec-out", "e", "exec-in"), edge("on", "exec-out", "up", "exec-in")]});
    // A built-in component: a plugin node.
    let answers = one_node_flow("answers", "answer_user", &["message"], &["message"]);
    let diamonds = diamonds_flow(40);
    vec![
        ("diamonds", diamonds),
        ("upper", upper),
        ("loops", loops),
        ("too_deep", too_deep),
        ("ask", ask),
        ("sub", sub),
        ("emit", emit),
        ("listens", listens),
        ("answers", answers),
    ]
}

/// A gateway over [`flows`] with the built-in components; `runner` says whether it steps runs itself.
fn gateway(dir: &Path, runner: bool, max_steps: usize) -> Arc<Gateway> {
    let b = write_bundle(dir, &flows(), "upper");
    let bundle = Arc::new(read_bundle(&b, &Limits::default()).expect("bundle loads"));
    let (host, warnings) =
        abstractgateway::plugins::setup(&dir.join("data"), None).expect("plugin host");
    assert!(warnings.is_empty(), "{warnings:?}");
    let (flows, _, problems) = catalog::build(vec![bundle], &host.registry());
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner,
            max_steps,
            executor: Some(host),
        },
        flows,
    )
    .expect("open")
}

fn start(gw: &Gateway, flow: &str, input: Value) -> String {
    let req = StartRequest {
        workflow_id: format!("{WF}{flow}"),
        input: input.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    gw.start_run(req).expect("start").run_id
}

fn stored(gw: &Gateway, id: &str) -> abstractgateway::run::RunState {
    gw.store().get_run(id).expect("get").expect("stored")
}

fn records(gw: &Gateway, id: &str) -> Vec<Value> {
    gw.store()
        .ledger_after(id, 0, 1000)
        .expect("ledger")
        .iter()
        .map(|e| serde_json::from_str(e.json.get()).expect("record"))
        .collect()
}

#[test]
fn only_flows_that_touch_nothing_outside_their_run_are_self_contained() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), false, 100);
    let flows = gw.flows();
    let contained = |f: &str| {
        flows
            .get(&format!("{WF}{f}"))
            .unwrap_or_else(|| panic!("flow {f} loaded"))
            .self_contained
    };
    for f in ["upper", "loops", "too_deep", "diamonds"] {
        assert!(contained(f), "{f} only touches its run");
    }
    // Pin expressions (evaluated by the Python component) are checked in `pin_expressions.rs`.
    for f in ["ask", "sub", "emit", "listens", "answers"] {
        assert!(!contained(f), "{f} reaches outside its run");
    }
}

#[test]
fn a_self_contained_run_is_stored_finished_by_its_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), false, 100);
    let id = start(&gw, "upper", json!({"text": "hello"}));
    let r = stored(&gw, &id);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(r.output, Some(json!({"result": "HELLO", "success": true})));
    // Its ledger is whole and contiguous, and nothing is left active for a runner to recover.
    let recs = records(&gw, &id);
    assert_eq!(recs.len() as u64, r.ledger_len);
    assert!(
        recs.last().is_some_and(|rec| rec["status"] == "completed"),
        "{recs:?}"
    );
    let active = gw
        .store()
        .list_runs(&RunQuery {
            status: Some(RunStatus::Running),
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert!(active.is_empty(), "{active:?}");
    // After a restart it is the same run, finished once.
    gw.shutdown();
    drop(gw);
    let gw = gateway(dir.path(), true, 100);
    let again = stored(&gw, &id);
    assert_eq!(again.status, RunStatus::Completed);
    assert_eq!(records(&gw, &id), recs);
}

#[test]
fn a_run_that_reaches_outside_is_stored_as_it_started() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), false, 100);
    for (flow, input) in [
        ("ask", json!({"prompt": "?"})),
        ("sub", json!({"text": "x"})),
        ("emit", json!({})),
        ("answers", json!({"message": "m"})),
    ] {
        let r = stored(&gw, &start(&gw, flow, input));
        assert_eq!(r.status, RunStatus::Running, "{flow}");
        assert_eq!(r.ledger_len, 0, "{flow}: no step was taken");
        assert_eq!(r.current_node.as_deref(), Some("s"), "{flow}");
    }
}

#[test]
fn a_run_longer_than_a_round_is_handed_over_where_its_first_round_left_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let id = {
        let gw = gateway(dir.path(), false, 7);
        let id = start(&gw, "loops", json!({}));
        let r = stored(&gw, &id);
        assert_eq!(r.status, RunStatus::Running);
        assert_ne!(
            r.current_node.as_deref(),
            Some("s"),
            "the first round moved the run"
        );
        assert!(r.vars.contains_key("seen"), "{:?}", r.vars);
        gw.shutdown();
        id
    };
    // A runner takes it from there, as it would after any committed round.
    let gw = gateway(dir.path(), true, 7);
    let r = wait_for(&gw, &id, |r| r.status.is_terminal());
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(
        r.output,
        Some(json!({"seen": [1, 2, 3], "is": [0.0, 1.0, 2.0], "k": 4.0, "success": true}))
    );
}

#[test]
fn a_first_round_over_a_budget_fails_its_run_and_the_start_still_answers() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), false, 100);
    let id = start(&gw, "too_deep", json!({}));
    let r = stored(&gw, &id);
    assert_eq!(r.status, RunStatus::Failed);
    let error = r.error.clone().unwrap_or_default();
    assert!(error.starts_with("RunBudgetExceeded: "), "{error}");
    let recs = records(&gw, &id);
    assert_eq!(recs.len() as u64, r.ledger_len);
    assert!(
        recs.iter()
            .any(|rec| rec["node_id"] == "set" && rec["status"] == "failed"),
        "{recs:?}"
    );
    // The gateway goes on starting runs.
    assert_eq!(
        stored(&gw, &start(&gw, "upper", json!({"text": "a"}))).status,
        RunStatus::Completed
    );
}

#[test]
fn an_idempotent_start_of_a_self_contained_flow_makes_one_finished_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), false, 100);
    let req = || StartRequest {
        workflow_id: format!("{WF}upper"),
        input: json!({"text": "once"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        idempotency_key: Some("start-once".into()),
        ..Default::default()
    };
    let first = gw.start_run(req()).expect("start");
    let second = gw.start_run(req()).expect("start again");
    assert_eq!(first.run_id, second.run_id);
    assert_eq!(second.status, RunStatus::Completed);
    let all = gw
        .store()
        .list_runs(&RunQuery {
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert_eq!(all.len(), 1, "{all:?}");
}

#[test]
fn a_data_graph_that_fans_out_ends_its_run_instead_of_holding_the_thread() {
    // Pure nodes are recomputed on every pull (as on the seed): the pull stops at `MAX_PURE_EVALS` evaluations.
    // The start takes the first round on the caller's thread, so an unbounded pull would hold it for hours.
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), false, 100);
    let r = stored(&gw, &start(&gw, "diamonds", json!({})));
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.expect("output");
    assert_eq!(out["success"], json!(false), "{out}");
    let error = out["error"].as_str().unwrap_or_default();
    assert!(error.contains("more than 10000 pure nodes"), "{error}");
    // The same thread resolves the next run's pulls from zero.
    let ok = stored(&gw, &start(&gw, "upper", json!({"text": "after"})));
    assert_eq!(ok.output, Some(json!({"result": "AFTER", "success": true})));
}

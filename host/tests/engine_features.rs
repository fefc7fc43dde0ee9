//! Engine features beyond the fixture bundles, through the real runner and store: subflows as
//! child runs, loops, sequence, while, on_event listeners, and fair scheduling of many runs.

mod in_process;

use in_process::flowgen::{edge, loops_flow, node, write_bundle};
use in_process::wait_for;

use std::path::Path;
use std::sync::Arc;

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::run::RunStatus;
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use abstractgateway::store::{NewCommand, RunQuery};
use serde_json::{Value, json};

fn flows() -> Vec<(&'static str, Value)> {
    let child = json!({"id": "child", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["x"], json!({})),
        node("up", "uppercase", false, &[], &["text"], &["result"], json!({})),
        node("e", "on_flow_end", true, &[], &["y"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "e", "exec-in"), edge("s", "x", "up", "text"), edge("up", "result", "e", "y")]});
    let parent = json!({"id": "parent", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["n"], json!({})),
        node("sub", "subflow", true, &["exec-out"], &["x"], &["output", "y"], json!({"subflowId": "child"})),
        node("e", "on_flow_end", true, &[], &["got"], &[], json!({}))],
      "edges": [edge("s", "exec-out", "sub", "exec-in"), edge("s", "n", "sub", "x"),
                edge("sub", "exec-out", "e", "exec-in"), edge("sub", "y", "e", "got")]});
    let loops = loops_flow();
    let listen = json!({"id": "listen", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("ask", "ask_user", true, &["exec-out"], &["prompt"], &["response"], json!({})),
        node("e", "on_flow_end", true, &[], &["response"], &[], json!({})),
        node("on", "on_event", false, &["exec-out"], &[], &["payload"], json!({"eventConfig": {"name": "ping"}})),
        node("say", "answer_user", true, &["exec-out"], &["message"], &["message"], json!({"pinDefaults": {"message": "pong"}}))],
      "edges": [edge("s", "exec-out", "ask", "exec-in"), edge("ask", "exec-out", "e", "exec-in"),
                edge("ask", "response", "e", "response"), edge("on", "exec-out", "say", "exec-in")]});
    vec![
        ("child", child),
        ("parent", parent),
        ("loops", loops),
        ("listen", listen),
    ]
}

/// A gateway over [`flows`]; `answer_user` (the listener's body) is a built-in component, so the plugin
/// host runs alongside the engine.
fn gateway(dir: &Path, max_steps: usize) -> Arc<Gateway> {
    let b = write_bundle(dir, &flows(), "parent");
    let bundle = Arc::new(read_bundle(&b, &Limits::default()).expect("bundle loads"));
    let (host, warnings) =
        abstractgateway::plugins::setup(&dir.join("data"), None).expect("plugin host");
    assert!(warnings.is_empty(), "{warnings:?}");
    let (flows, _, problems) = catalog::build(vec![bundle], &host.registry());
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner: true,
            max_steps,
            executor: Some(host),
        },
        flows,
    )
    .expect("open")
}

fn start(gw: &Gateway, wf: &str, input: Value) -> String {
    let req = StartRequest {
        workflow_id: wf.into(),
        input: input.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    gw.start_run(req).expect("start").run_id
}

#[test]
fn subflow_runs_as_a_child_and_resumes_the_parent() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), 100);
    let id = start(&gw, "features@1.0.0:parent", json!({"n": "abc"}));
    let r = wait_for(&gw, &id, |r| r.status.is_terminal());
    assert_eq!(r.output, Some(json!({"got": "ABC", "success": true})));
    let children = gw.store().child_run_ids(&id).expect("children");
    assert_eq!(children.len(), 1);
    let c = gw
        .store()
        .get_run(&children[0])
        .expect("get")
        .expect("child");
    assert_eq!(c.workflow_id, "features@1.0.0:child");
    assert_eq!(c.parent_run_id.as_deref(), Some(id.as_str()));
    assert_eq!(c.session_id, r.session_id);
    let kinds: Vec<String> = gw
        .store()
        .ledger_after(&id, 0, 100)
        .expect("ledger")
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e.json.get()).expect("json");
            format!(
                "{}/{}/{}",
                v["node_id"].as_str().unwrap_or(""),
                v["status"].as_str().unwrap_or(""),
                v["effect"]["type"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "sub/started/start_subworkflow",
            "sub/waiting/start_subworkflow",
            "sub/completed/resume",
            "e/completed/-",
            "e/completed/emit_event"
        ]
    );
}

#[test]
fn loops_sequence_and_while() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), 7);
    let id = start(&gw, "features@1.0.0:loops", json!({}));
    let r = wait_for(&gw, &id, |r| r.status.is_terminal());
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(
        r.output,
        Some(json!({"seen": [1, 2, 3], "is": [0.0, 1.0, 2.0], "k": 4.0, "success": true}))
    );
}

#[test]
fn on_event_listener_receives_events_and_rearms() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path(), 100);
    let root = start(&gw, "features@1.0.0:listen", json!({}));
    wait_for(&gw, &root, |r| r.status == RunStatus::Waiting);
    let listener = gw
        .store()
        .child_run_ids(&root)
        .expect("children")
        .pop()
        .expect("listener");
    wait_for(&gw, &listener, |r| r.status == RunStatus::Waiting);
    for i in 0..2 {
        let cmd = NewCommand {
            command_id: format!("ping{i}"),
            run_id: root.clone(),
            kind: "emit_event".into(),
            payload: json!({"name": "ping"}),
            ts: None,
            client_id: None,
        };
        gw.submit_command(cmd).expect("append");
        let want = 3 + 4 * (i + 1);
        wait_for(&gw, &listener, |r| {
            r.ledger_len as usize >= want && r.status == RunStatus::Waiting
        });
    }
    let effects: Vec<String> = gw
        .store()
        .ledger_after(&listener, 0, 100)
        .expect("ledger")
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e.json.get()).expect("json")["effect"]["type"]
                .as_str()
                .unwrap_or("-")
                .to_string()
        })
        .collect();
    assert_eq!(
        &effects[..7],
        [
            "wait_event",
            "wait_event",
            "resume",
            "answer_user",
            "answer_user",
            "wait_event",
            "wait_event"
        ]
    );
    // Ending the root ends its listener (the seed leaves it waiting forever).
    let cmd = NewCommand {
        command_id: "answer".into(),
        run_id: root.clone(),
        kind: "resume".into(),
        payload: json!({"payload": {"response": "ok"}}),
        ts: None,
        client_id: None,
    };
    gw.submit_command(cmd).expect("append");
    wait_for(&gw, &root, |r| r.status == RunStatus::Completed);
    let l = wait_for(&gw, &listener, |r| r.status.is_terminal());
    assert_eq!(l.status, RunStatus::Cancelled);
}

#[test]
fn thousands_of_runs_all_progress() {
    let dir = tempfile::tempdir().expect("tmp");
    // One step per turn: every run must come back to the front of the queue to finish.
    let gw = gateway(dir.path(), 1);
    let ids: Vec<String> = (0..2000)
        .map(|i| start(&gw, "features@1.0.0:parent", json!({"n": format!("r{i}")})))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let r = wait_for(&gw, id, |r| r.status.is_terminal());
        assert_eq!(
            r.output.as_ref().and_then(|o| o.get("got")),
            Some(&json!(format!("R{i}")))
        );
    }
    let q = RunQuery {
        limit: 10,
        status: Some(RunStatus::Running),
        ..Default::default()
    };
    assert!(gw.store().list_runs(&q).expect("list").is_empty());
}

//! The five no-LLM bundles through the real runner and a real fjall store: outputs and the
//! (node, status, effect) ledger sequences recorded from the seed (peer-observed §4.5), plus the
//! command semantics (durable outcomes, pause buffering events, cancel).

mod in_process;

use in_process::wait_for;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::engine::NodeRegistry;
use abstractgateway::run::RunStatus;
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use abstractgateway::store::NewCommand;
use serde_json::{Value, json};

fn bundles_dir() -> PathBuf {
    abstractgateway_testkit::repo_root().join("bundles")
}

fn gateway(dir: &std::path::Path) -> Arc<Gateway> {
    let mut bundles = vec![];
    for e in std::fs::read_dir(bundles_dir()).expect("bundles").flatten() {
        // `bundles/llm/` holds the seed's LLM bundles; this runner has no model.
        if e.path().extension().is_none_or(|x| x != "flow") {
            continue;
        }
        bundles.push(Arc::new(
            read_bundle(&e.path(), &Limits::default()).expect("bundle loads"),
        ));
    }
    let (flows, ok, problems) = catalog::build(bundles, &NodeRegistry::new());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(ok.len(), 5);
    Gateway::open(
        GatewayOptions {
            data_dir: dir.to_path_buf(),
            runner: true,
            max_steps: 100,
            executor: None,
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

fn summary(gw: &Gateway, run_id: &str) -> Vec<(String, String, Option<String>)> {
    gw.store()
        .ledger_after(run_id, 0, 1000)
        .expect("ledger")
        .iter()
        .map(|e| {
            let r: Value = serde_json::from_str(e.json.get()).expect("record");
            (
                r["node_id"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["effect"]
                    .get("type")
                    .and_then(Value::as_str)
                    .map(String::from),
            )
        })
        .collect()
}

fn s(n: &str, st: &str, e: Option<&str>) -> (String, String, Option<String>) {
    (n.into(), st.into(), e.map(String::from))
}

fn command(gw: &Gateway, id: &str, run_id: &str, kind: &str, payload: Value) -> u64 {
    let a = gw
        .submit_command(NewCommand {
            command_id: id.into(),
            run_id: run_id.into(),
            kind: kind.into(),
            payload,
            ts: None,
            client_id: Some("test".into()),
        })
        .expect("append");
    assert!(!a.duplicate);
    a.seq
}

fn outcome(gw: &Gateway, id: &str) -> Value {
    for _ in 0..3000 {
        if let Some((_, Some(o))) = gw.store().get_command(id).expect("get") {
            return serde_json::to_value(o).expect("json");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("command {id} never got an outcome");
}

#[test]
fn echo_chain_and_delay_match_the_seed() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path());
    let echo = start(&gw, "echo-upper@1.0.0:echo", json!({"name": "Alice"}));
    let chain = start(&gw, "chain@1.0.0:chain", json!({"name": "c"}));
    let delay = start(&gw, "delay@1.0.0:delay", json!({"seconds": 0.3}));
    let r = wait_for(&gw, &echo, |r| r.status.is_terminal());
    assert_eq!(
        r.output,
        Some(json!({"response": "HELLO,  ALICE", "length": 13, "success": true}))
    );
    let done = vec![
        s("end", "completed", None),
        s("end", "completed", Some("emit_event")),
    ];
    assert_eq!(summary(&gw, &echo), done);
    let r = wait_for(&gw, &chain, |r| r.status.is_terminal());
    assert_eq!(r.output, Some(json!({"response": "c", "success": true})));
    assert_eq!(summary(&gw, &chain), done);
    let r = wait_for(&gw, &delay, |r| r.status.is_terminal());
    assert_eq!(r.output, Some(json!({"response": "done", "success": true})));
    let mut expected = vec![
        s("delay", "started", Some("wait_until")),
        s("delay", "waiting", Some("wait_until")),
    ];
    expected.extend(done);
    assert_eq!(summary(&gw, &delay), expected);
}

#[test]
fn ask_user_resume_and_idempotent_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path());
    let run = start(&gw, "ask-user@1.0.0:ask", json!({"name": "Bob"}));
    let w = wait_for(&gw, &run, |r| r.status == RunStatus::Waiting);
    let key = w.waiting.and_then(|w| w.wait_key).expect("key");
    assert_eq!(key, format!("user:{run}:ask"));
    command(
        &gw,
        "c-resume",
        &run,
        "resume",
        json!({"wait_key": key, "payload": {"response": "blue"}}),
    );
    let r = wait_for(&gw, &run, |r| r.status.is_terminal());
    assert_eq!(
        r.output.as_ref().and_then(|o| o.get("response")),
        Some(&json!("Bob  answered:  blue"))
    );
    assert_eq!(
        summary(&gw, &run),
        vec![
            s("ask", "started", Some("ask_user")),
            s("ask", "waiting", Some("ask_user")),
            s("ask", "completed", Some("resume")),
            s("end", "completed", None),
            s("end", "completed", Some("emit_event")),
        ]
    );
    assert_eq!(outcome(&gw, "c-resume")["status"], "applied");
    // Same command id again: the seed's duplicate answer, nothing applied twice.
    let again = gw
        .submit_command(NewCommand {
            command_id: "c-resume".into(),
            run_id: run.clone(),
            kind: "resume".into(),
            payload: json!({}),
            ts: None,
            client_id: None,
        })
        .expect("append");
    assert!(again.duplicate);
    // A stale resume gets a durable rejection with its reason (the seed only logs it).
    command(
        &gw,
        "c-stale",
        &run,
        "resume",
        json!({"payload": {"response": "x"}}),
    );
    let o = outcome(&gw, "c-stale");
    assert_eq!(o["status"], "rejected");
    assert!(
        o["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not active"),
        "{o}"
    );
}

#[test]
fn paused_waiter_keeps_its_event_and_others_still_get_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path());
    let a = start(&gw, "wait-event@1.0.0:waitev", json!({}));
    let b = start(&gw, "wait-event@1.0.0:waitev", json!({}));
    wait_for(&gw, &a, |r| r.status == RunStatus::Waiting);
    wait_for(&gw, &b, |r| r.status == RunStatus::Waiting);
    command(&gw, "p1", &a, "pause", json!({"reason": "hold"}));
    assert_eq!(outcome(&gw, "p1")["status"], "applied");
    command(
        &gw,
        "e1",
        "whatever",
        "emit_event",
        json!({"name": "go", "scope": "global", "payload": {"text": "hi"}}),
    );
    let o = outcome(&gw, "e1");
    assert_eq!(o["status"], "applied");
    let rb = wait_for(&gw, &b, |r| r.status.is_terminal());
    assert_eq!(
        rb.output
            .as_ref()
            .and_then(|o| o["event"]["payload"].get("text")),
        Some(&json!("hi"))
    );
    // The paused run did not move, but holds the event...
    let ra = gw.store().get_run(&a).expect("get").expect("run");
    assert_eq!(ra.status, RunStatus::Waiting);
    assert!(ra.control.paused);
    // ...and gets it when resumed.
    command(&gw, "r1", &a, "resume", json!({}));
    let ra = wait_for(&gw, &a, |r| r.status.is_terminal());
    assert_eq!(
        ra.output
            .as_ref()
            .and_then(|o| o["event"]["payload"].get("text")),
        Some(&json!("hi"))
    );
    let kinds: Vec<Option<String>> = summary(&gw, &a).into_iter().map(|x| x.2).collect();
    assert!(
        kinds.contains(&Some("pause".into())) && kinds.contains(&Some("resume".into())),
        "{kinds:?}"
    );
}

#[test]
fn cancel_writes_the_seed_record_and_rejects_unknown_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = gateway(dir.path());
    let run = start(&gw, "wait-event@1.0.0:waitev", json!({}));
    wait_for(&gw, &run, |r| r.status == RunStatus::Waiting);
    command(
        &gw,
        "k1",
        &run,
        "cancel",
        json!({"reason": "operator cancel"}),
    );
    let r = wait_for(&gw, &run, |r| r.status.is_terminal());
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.error.as_deref(), Some("operator cancel"));
    assert_eq!(
        summary(&gw, &run),
        vec![
            s("wait", "started", Some("wait_event")),
            s("wait", "waiting", Some("wait_event")),
            s("wait", "completed", Some("emit_event"))
        ]
    );
    command(&gw, "k2", "nope", "cancel", json!({}));
    assert_eq!(outcome(&gw, "k2")["status"], "rejected");
    command(&gw, "k3", &run, "compact_memory", json!({}));
    assert_eq!(outcome(&gw, "k3")["status"], "rejected");
}

#[test]
fn active_runs_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = {
        let gw = gateway(dir.path());
        let run = start(&gw, "ask-user@1.0.0:ask", json!({"name": "Zed"}));
        wait_for(&gw, &run, |r| r.status == RunStatus::Waiting);
        gw.shutdown();
        run
    };
    let gw = gateway(dir.path());
    command(
        &gw,
        "after",
        &run,
        "resume",
        json!({"payload": {"response": "red"}}),
    );
    let r = wait_for(&gw, &run, |r| r.status.is_terminal());
    assert_eq!(
        r.output.as_ref().and_then(|o| o.get("response")),
        Some(&json!("Zed  answered:  red"))
    );
}

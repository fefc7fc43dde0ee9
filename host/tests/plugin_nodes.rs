//! Plugin nodes through the real runner and store: real components built from `plugins/`, every host
//! call in the ledger, grants enforced, and hostile components contained.

mod in_process;

use std::path::Path;

use abstractgateway::run::{HostCall, RunState, RunStatus};
use abstractgateway::runner::{Gateway, StartRequest};
use in_process::flowgen::{edge, node, write_bundle};
use in_process::plugins::{gateway, plugins_dir};
use in_process::standin::StepServer;
use in_process::wait_for;
use serde_json::{Value, json};

/// start → `ty` (inputs `ins` wired from the start node) → end (outputs `outs`).
fn one_node_flow(ty: &str, ins: &[&str], outs: &[&str]) -> Value {
    let mut edges = vec![
        edge("s", "exec-out", "p", "exec-in"),
        edge("p", "exec-out", "e", "exec-in"),
    ];
    edges.extend(ins.iter().map(|i| edge("s", i, "p", i)));
    edges.extend(outs.iter().map(|o| edge("p", o, "e", o)));
    json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], ins, json!({})),
        node("p", ty, true, &["exec-out"], ins, outs, json!({})),
        node("e", "on_flow_end", true, &[], outs, &[], json!({}))],
      "edges": edges})
}

fn start(gw: &Gateway, input: Value) -> String {
    let req = StartRequest {
        workflow_id: "features@1.0.0:main".into(),
        input: input.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    gw.start_run(req).expect("start").run_id
}

fn ledger(gw: &Gateway, run_id: &str) -> Vec<Value> {
    gw.store()
        .ledger_after(run_id, 0, 100_000)
        .expect("ledger")
        .iter()
        .map(|e| serde_json::from_str(e.json.get()).expect("json"))
        .collect()
}

fn host_calls(records: &[Value]) -> Vec<HostCall> {
    records.iter().filter_map(HostCall::from_record).collect()
}

fn setup(dir: &Path, flow: Value, plugins: &[(&str, Value)]) -> std::sync::Arc<Gateway> {
    let bundle = write_bundle(dir, &[("main", flow)], "main");
    let pdir = plugins_dir(dir, plugins);
    gateway(&dir.join("data"), &bundle, &pdir)
}

fn done(gw: &Gateway, id: &str) -> RunState {
    wait_for(gw, id, |r| r.status.is_terminal())
}

#[test]
fn a_plugin_node_runs_and_its_output_flows_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = setup(
        dir.path(),
        one_node_flow("plugin_echo", &["value"], &["value"]),
        &[("plugin_echo", Value::Null)],
    );
    let id = start(&gw, json!({"value": {"a": [1, 2, "x"]}}));
    let r = done(&gw, &id);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(
        r.output,
        Some(json!({"value": {"a": [1, 2, "x"]}, "success": true}))
    );
    let recs = ledger(&gw, &id);
    let p: Vec<(&str, &str)> = recs
        .iter()
        .filter(|r| r["node_id"] == "p")
        .map(|r| {
            (
                r["status"].as_str().unwrap_or(""),
                r["effect"]["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        p,
        vec![("started", "plugin_node"), ("completed", "plugin_node")]
    );
    let started = recs.iter().find(|r| r["node_id"] == "p").expect("started");
    assert_eq!(
        started["effect"]["payload"]["digest"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    assert_eq!(r.components.get("plugin_echo").map(String::len), Some(64));
}

#[test]
fn every_http_call_is_recorded_in_order() {
    let server = StepServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let grants = json!({"http": [server.url]});
    let gw = setup(
        dir.path(),
        one_node_flow("http_steps", &["base_url", "count"], &["bodies"]),
        &[("http_steps", grants)],
    );
    let id = start(&gw, json!({"base_url": server.url, "count": 3}));
    let r = done(&gw, &id);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(
        r.output,
        Some(json!({"bodies": ["step-0", "step-1", "step-2"], "success": true}))
    );
    assert_eq!(server.hits(), 3);
    let calls = host_calls(&ledger(&gw, &id));
    let urls: Vec<&str> = calls
        .iter()
        .filter(|c| c.interface == "http")
        .map(|c| c.request["url"].as_str().unwrap_or(""))
        .collect();
    let expect: Vec<String> = (0..3).map(|i| format!("{}/step/{i}", server.url)).collect();
    assert_eq!(urls, expect);
    assert!(calls.iter().all(|c| c.answer.is_ok()));
}

#[test]
fn an_ungranted_origin_is_refused_and_recorded() {
    let server = StepServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let gw = setup(
        dir.path(),
        one_node_flow("http_steps", &["base_url"], &["bodies"]),
        &[("http_steps", Value::Null)],
    );
    let id = start(&gw, json!({"base_url": server.url}));
    let r = done(&gw, &id);
    assert_eq!(r.status, RunStatus::Failed);
    let err = r.error.unwrap_or_default();
    assert!(
        err.contains("access-denied") && err.contains("not granted"),
        "{err}"
    );
    assert_eq!(server.hits(), 0, "a refused call never leaves the host");
    let calls = host_calls(&ledger(&gw, &id));
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].answer.as_ref().err().map(|e| e["code"].clone()),
        Some(json!("access-denied"))
    );
}

/// One gateway running every attack at once, plus an honest run: each attack fails (or is contained in)
/// its own node, with a clear error in the ledger, and the honest run completes.
#[test]
fn hostile_components_fail_only_their_own_node() {
    let dir = tempfile::tempdir().expect("tmp");
    let ins = ["attack", "mb", "calls", "mode"];
    let outs = ["allocation_failed", "allocated_mb", "http", "kv"];
    let grants = json!({"memory_mb": 32, "timeout_ms": 300, "max_output_bytes": 1 << 20,
        "max_host_calls": 1000, "http": [], "kv": []});
    let bundle = write_bundle(
        dir.path(),
        &[
            ("main", one_node_flow("hostile", &ins, &outs)),
            ("echo", one_node_flow("plugin_echo", &["value"], &["value"])),
        ],
        "main",
    );
    let pdir = plugins_dir(
        dir.path(),
        &[("hostile", grants), ("plugin_echo", Value::Null)],
    );
    let gw = gateway(&dir.path().join("data"), &bundle, &pdir);
    let attacks = [
        (
            "infinite_loop",
            json!({}),
            "exceeded its CPU time limit of 300 ms",
        ),
        // Rust's shadow stack lives in linear memory: deep recursion runs off its start before the wasm stack ends.
        ("recursion", json!({}), "stack|out of bounds memory access"),
        ("trap", json!({"mode": "panic"}), "trapped"),
        ("trap", json!({"mode": "unreachable"}), "trapped"),
        ("huge_output", json!({"mb": 8}), "exceeded its memory limit"),
        ("huge_output", json!({"mb": 2}), "its limit is 1048576"),
        (
            "call_flood",
            json!({"calls": 100_000}),
            "more than 1000 host calls",
        ),
        // Host-side resources never dropped: the table's cap stops it, not the host's memory.
        ("resource_flood", json!({}), "resource table"),
    ];
    let ids: Vec<(String, &str)> = attacks
        .iter()
        .map(|(attack, extra, want)| {
            let mut input = json!({"attack": attack});
            input
                .as_object_mut()
                .expect("obj")
                .extend(extra.as_object().cloned().unwrap_or_default());
            (start(&gw, input), *want)
        })
        .collect();
    let bomb = start(&gw, json!({"attack": "memory_bomb"}));
    let ungranted = start(&gw, json!({"attack": "ungranted"}));
    let honest = gw
        .start_run(StartRequest {
            workflow_id: "features@1.0.0:echo".into(),
            input: json!({"value": 7}).as_object().cloned().unwrap_or_default(),
            ..Default::default()
        })
        .expect("start")
        .run_id;
    for (id, want) in &ids {
        let r = done(&gw, id);
        let err = r.error.clone().unwrap_or_default();
        assert_eq!(r.status, RunStatus::Failed, "{id}: {err}");
        assert!(
            want.split('|').any(|w| err.contains(w)),
            "expected {want:?} in {err:?}"
        );
        let failed = ledger(&gw, id)
            .into_iter()
            .find(|rec| rec["node_id"] == "p" && rec["status"] == "failed")
            .expect("a failed record of the plugin node");
        assert_eq!(failed["error"].as_str(), Some(err.as_str()));
    }
    let r = done(&gw, &bomb);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.expect("output");
    assert_eq!(out["allocation_failed"], json!(true));
    assert!(
        out["allocated_mb"].as_u64().is_some_and(|mb| mb < 32),
        "{out}"
    );
    let r = done(&gw, &ungranted);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let out = r.output.expect("output");
    for cap in ["http", "kv"] {
        assert_eq!(out[cap]["error"], json!("AccessDenied"), "{out}");
        assert!(
            out[cap]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not granted")),
            "{out}"
        );
    }
    let r = done(&gw, &honest);
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.output, Some(json!({"value": 7, "success": true})));
}

/// A bundle whose component does not match its declared digest is refused, naming both digests.
#[test]
fn a_bundle_component_with_the_wrong_digest_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = write_bundle(
        dir.path(),
        &[("main", one_node_flow("plugin_echo", &["value"], &["value"]))],
        "main",
    );
    std::fs::create_dir_all(b.join("plugins")).expect("mkdir");
    std::fs::write(
        b.join("plugins/echo.wasm"),
        in_process::plugins::component("plugin_echo"),
    )
    .expect("wasm");
    let manifest_path = b.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    manifest["plugins"] = json!([{"path": "plugins/echo.wasm", "sha256": "0".repeat(64)}]);
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let (host, _) = abstractgateway::plugins::setup(&dir.path().join("data"), None).expect("host");
    let bundle = std::sync::Arc::new(
        abstractgateway::bundle::read_bundle(&b, &abstractgateway::bundle::Limits::default())
            .expect("reads"),
    );
    let (_, ok, problems) = abstractgateway::runner::catalog::build(vec![bundle], &host.registry());
    assert!(ok.is_empty());
    assert!(
        problems[0]
            .message
            .contains("but the manifest declares 0000"),
        "{:?}",
        problems[0].message
    );
}

/// A run pinned to a component version that was since replaced still executes exactly that version: the
/// compiled-component cache keeps every source by digest.
#[test]
fn a_pinned_older_component_version_still_runs() {
    use abstractgateway::plugins::{Grants, PluginHost, caps::Capabilities, invoke};
    use abstractgateway::runner::executor::{CancelFlag, NodeJob};
    let dir = tempfile::tempdir().expect("tmp");
    let old = in_process::plugins::component("plugin_echo");
    let old_digest = abstractgateway::bundle::sha256_hex(&old);
    PluginHost::new(dir.path(), Capabilities::new(), None)
        .expect("host")
        .load("plugin_echo", &old, Grants::default())
        .expect("load");
    // A restart with another component under the same name.
    let host = PluginHost::new(dir.path(), Capabilities::new(), None).expect("host");
    host.load(
        "plugin_echo",
        &in_process::plugins::component("text_tools"),
        Grants::default(),
    )
    .expect("load new");
    let store = abstractgateway::store::Store::open(&dir.path().join("db")).expect("store");
    let job = NodeJob {
        run_id: "pinned".into(),
        session_id: None,
        actor_id: None,
        workflow_id: "wf".into(),
        node_id: "p".into(),
        node_type: "plugin_echo".into(),
        plugin: "plugin_echo".into(),
        digest: old_digest,
        config: Default::default(),
        inputs: json!({"value": 5}),
        run_context: None,
        vars: None,
        workspace_root: None,
        bundle: None,
        started_seq: 0,
        started_ms: None,
        ledger_len: 0,
        shard: 0,
        cancel: std::sync::Arc::new(CancelFlag::default()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let done = rt.block_on(invoke::run_node(host, store, job));
    assert_eq!(
        done.outcome,
        abstractgateway::engine::PluginOutcome::Output(abstractgateway::engine::NodeOutput::pins(
            json!({"value": 5}).as_object().cloned().unwrap_or_default()
        ))
    );
}

/// Why a component was refused is a type the caller matches on; its text is what operators always read.
#[test]
fn a_refused_component_says_why_by_type() {
    use abstractgateway::plugins::caps::Capabilities;
    use abstractgateway::plugins::{Grants, LoadError, PluginHost};
    let dir = tempfile::tempdir().expect("tmp");
    let host = PluginHost::new(dir.path(), Capabilities::new(), None).expect("host");
    let bad_bytes = host.load("junk", b"\0asm not really", Grants::default());
    match &bad_bytes {
        Err(e @ LoadError::NotAComponent { plugin, .. }) => {
            assert_eq!(plugin, "junk");
            assert!(
                e.to_string()
                    .starts_with("plugin junk: not a valid component: ")
            );
        }
        other => panic!("expected NotAComponent, got {:?}", other.as_ref().err()),
    }
    let grants = Grants {
        memory_mb: 0,
        ..Grants::default()
    };
    let echo = in_process::plugins::component("plugin_echo");
    match host.load("echo", &echo, grants) {
        Err(e @ LoadError::Grants { .. }) => {
            assert_eq!(
                e.to_string(),
                "plugin echo: grants.memory_mb must be 1..=1024"
            )
        }
        other => panic!("expected Grants, got {:?}", other.err()),
    }
}

//! kill -9 while a plugin node is between two external calls: after a restart the node replays its recorded
//! calls, makes only the missing one, and ends exactly as an uninterrupted run does. The component travels
//! inside the bundle, pinned by its digest.

mod binary;
mod in_process;

use std::path::Path;
use std::time::{Duration, Instant};

use binary::Server;
use in_process::flowgen::{edge, node};
use in_process::plugins::component;
use in_process::standin::StepServer;
use serde_json::{Value, json};

/// Hash rounds between two calls: long enough (seconds) to kill the process in between.
const SPIN: u64 = 3_000_000_000;

/// Packs bundle `steps@1.0.0` carrying `http_steps.wasm`, granted the stand-in's origin, into `flows/`.
fn write_bundle(dir: &Path, origin: &str) {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("flows")).expect("mkdir");
    std::fs::create_dir_all(src.join("plugins")).expect("mkdir");
    let wasm = component("http_steps");
    std::fs::write(src.join("plugins/http_steps.wasm"), &wasm).expect("wasm");
    let ins = ["base_url", "count", "spin"];
    let mut edges = vec![
        edge("s", "exec-out", "p", "exec-in"),
        edge("p", "exec-out", "e", "exec-in"),
    ];
    edges.extend(ins.iter().map(|i| edge("s", i, "p", i)));
    edges.push(edge("p", "bodies", "e", "bodies"));
    edges.push(edge("p", "spin_digest", "e", "spin_digest"));
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &ins, json!({})),
        node("p", "http_steps", true, &["exec-out"], &ins, &["bodies", "spin_digest"], json!({})),
        node("e", "on_flow_end", true, &[], &["bodies", "spin_digest"], &[], json!({}))],
      "edges": edges});
    std::fs::write(src.join("flows/main.json"), flow.to_string()).expect("flow");
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "steps", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main", "flows": {"main": "flows/main.json"},
        "plugins": [{"path": "plugins/http_steps.wasm", "sha256": abstractgateway::bundle::sha256_hex(&wasm),
                     "grants": {"http": [origin], "timeout_ms": 120000}}]});
    std::fs::write(src.join("manifest.json"), manifest.to_string()).expect("manifest");
    std::fs::create_dir_all(dir.join("flows")).expect("mkdir");
    abstractgateway::bundle::pack_dir(&src, &dir.join("flows/steps.flow")).expect("pack");
}

fn http_calls(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .filter(|r| {
            r["effect"]["type"] == "host_call" && r["effect"]["payload"]["interface"] == "http"
        })
        .map(|r| {
            r["effect"]["payload"]["request"]["url"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_calls_replays_recorded_calls_and_repeats_none() {
    let standin = StepServer::start();
    let tmp = tempfile::tempdir().expect("tmp");
    write_bundle(tmp.path(), &standin.url);
    // The stand-in is on loopback and the node spins for long: the operator allows both for bundles.
    let policy = tmp.path().join("policy.json");
    std::fs::write(&policy, r#"{"max_timeout_ms": 120000}"#).expect("policy");
    let policy = policy.to_string_lossy().into_owned();
    let mut s = Server::start_in(
        tmp.path(),
        &[
            ("ABSTRACTGATEWAY_PLUGIN_POLICY", policy.as_str()),
            ("ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1"),
        ],
    )
    .await;
    let input = json!({"base_url": standin.url, "count": 3, "spin": SPIN});

    let run = s.start_run("steps", input.clone()).await;
    // Kill as soon as the second call's record is durable: the node is then spinning before the third.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let calls = http_calls(&s.ledger(&run).await);
        assert!(
            calls.len() < 3,
            "the third call happened before the kill; raise SPIN"
        );
        if calls.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never made its second call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.kill();
    assert_eq!(standin.hits(), 2);

    s.restart().await;
    let done = s.wait_done(&run, 120).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        standin.hits(),
        3,
        "after the restart only the missing call is made"
    );
    let recs = s.ledger(&run).await;
    let urls: Vec<String> = (0..3)
        .map(|i| format!("{}/step/{i}", standin.url))
        .collect();
    assert_eq!(
        http_calls(&recs),
        urls,
        "each call recorded exactly once, in order"
    );
    let started: Vec<&Value> = recs
        .iter()
        .filter(|r| r["node_id"] == "p" && r["status"] == "started")
        .collect();
    assert_eq!(started.len(), 1);
    let digest = started[0]["effect"]["payload"]["digest"].clone();
    assert_eq!(
        digest,
        json!(abstractgateway::bundle::sha256_hex(&component(
            "http_steps"
        )))
    );

    // An uninterrupted run gives the same output.
    let again = s.start_run("steps", input).await;
    let clean = s.wait_done(&again, 120).await;
    assert_eq!(clean["status"], "completed");
    assert_eq!(standin.hits(), 6);
    let (_, a) = s.get(&format!("/api/gateway/runs/{run}")).await;
    let (_, b) = s.get(&format!("/api/gateway/runs/{again}")).await;
    assert_eq!(a["output"], b["output"]);
    assert_eq!(a["output"]["bodies"], json!(["step-0", "step-1", "step-2"]));
}

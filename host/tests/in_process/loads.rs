//! Loads shared by the crash and cluster tests: a bundle whose component calls an HTTP stand-in, and the shape of a
//! ledger that a replay must reproduce.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

use super::flowgen::{edge, node};
use super::plugins::component;

/// Packs bundle `steps@1.0.0` carrying `http_steps.wasm` (granted the stand-in, a kv bucket, artifacts).
pub fn write_steps_bundle(dir: &Path, origin: &str) {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("flows")).expect("mkdir");
    std::fs::create_dir_all(src.join("plugins")).expect("mkdir");
    let wasm = component("http_steps");
    std::fs::write(src.join("plugins/http_steps.wasm"), &wasm).expect("wasm");
    let ins = ["base_url", "count", "journal"];
    let outs = ["bodies", "artifact_id"];
    let mut edges = vec![
        edge("s", "exec-out", "p", "exec-in"),
        edge("p", "exec-out", "e", "exec-in"),
    ];
    edges.extend(ins.iter().map(|i| edge("s", i, "p", i)));
    edges.extend(outs.iter().map(|o| edge("p", o, "e", o)));
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &ins, json!({})),
        node("p", "http_steps", true, &["exec-out"], &ins, &outs, json!({})),
        node("e", "on_flow_end", true, &[], &outs, &[], json!({}))],
      "edges": edges});
    std::fs::write(src.join("flows/main.json"), flow.to_string()).expect("flow");
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "steps", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main", "flows": {"main": "flows/main.json"},
        "plugins": [{"path": "plugins/http_steps.wasm", "sha256": abstractgateway::bundle::sha256_hex(&wasm),
                     "grants": {"http": [origin], "kv": ["journal"], "artifacts": true}}]});
    std::fs::write(src.join("manifest.json"), manifest.to_string()).expect("manifest");
    abstractgateway::bundle::pack_dir(&src, &dir.join("flows/steps.flow")).expect("pack");
}

/// `node/status/effect[/interface.function]` of every record: the shape a replay must reproduce exactly.
pub fn shape(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .map(|r| {
            let p = &r["effect"]["payload"];
            let call = if r["effect"]["type"] == "host_call" {
                format!(
                    "/{}.{}",
                    p["interface"].as_str().unwrap_or(""),
                    p["function"].as_str().unwrap_or("")
                )
            } else {
                String::new()
            };
            format!(
                "{}/{}/{}{call}",
                r["node_id"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
                r["effect"]["type"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Keys whose values differ between two uninterrupted runs of the same input (ids, clocks, durations).
pub const VOLATILE: &[&str] = &[
    "sub_run_id",
    "run_id",
    "parent_run_id",
    "session_id",
    "step_id",
    "message_id",
    "trace_id",
    "timestamp",
    "ts",
    "updated_at",
    "created_at",
    "duration_ms",
    "gen_time",
    "idempotency_key",
    "effect_idempotency_key",
    "prompt_cache_key",
    "local_datetime",
    "display",
    "artifact_id",
    "$artifact",
    "event_id",
    "emitted_at",
];

/// `v` without its volatile keys, with `tag` replaced by `TAG`.
pub fn normalized(v: &Value, tag: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), normalized(v, tag)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| normalized(v, tag)).collect()),
        Value::String(s) => Value::String(s.replace(tag, "TAG")),
        other => other.clone(),
    }
}

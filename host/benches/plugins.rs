//! Component host costs: one trivial plugin node (fresh pooled instance + run), one recorded host call, and a
//! component's cold compile against its cached load. Needs `scripts/build-plugins.sh` (components in
//! `target/plugins/`). Run: `cargo bench -p abstractgateway --bench plugins`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abstractgateway::plugins::caps::Capabilities;
use abstractgateway::plugins::{Grants, PluginHost, invoke};
use abstractgateway::runner::executor::{CancelFlag, NodeJob};
use abstractgateway::store::Store;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn component(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("AG_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| abstractgateway_testkit::repo_root().join("target/plugins"));
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("run scripts/build-plugins.sh first")
}

fn job(n: u64, node_type: &str, plugin: &str, digest: &str, inputs: serde_json::Value) -> NodeJob {
    NodeJob {
        run_id: format!("bench-{n}"),
        session_id: None,
        actor_id: None,
        workflow_id: "bench".into(),
        node_id: "p".into(),
        node_type: node_type.into(),
        plugin: plugin.into(),
        digest: digest.into(),
        config: Default::default(),
        inputs,
        run_context: None,
        vars: None,
        workspace_root: None,
        bundle: None,
        started_seq: 0,
        started_ms: None,
        ledger_len: 0,
        shard: 0,
        cancel: Arc::new(CancelFlag::default()),
    }
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    let host = PluginHost::new(tmp.path(), Capabilities::new(), None).expect("host");
    let echo = host
        .load("plugin_echo", &component("plugin_echo"), Grants::default())
        .expect("echo");
    let flood_grants = Grants {
        max_host_calls: u64::MAX,
        // Room for a flood counted under an instruction-level simulator, many times slower than the CPU.
        timeout_ms: 600_000,
        ..Grants::default()
    };
    let hostile = host
        .load("hostile", &component("hostile"), flood_grants)
        .expect("hostile");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let mut n = 0u64;

    // `AG_BENCH_FIXED=nodes:N` or `calls:N`: exactly N echo nodes, or one node making N host calls, then exit,
    // so that a counter of instructions (run at two values of N) gives the cost of one without criterion.
    if let Ok(fixed) = std::env::var("AG_BENCH_FIXED") {
        let (what, count) = fixed.split_once(':').expect("nodes:N or calls:N");
        let count: u64 = count.parse().expect("a count");
        if what == "nodes" {
            for i in 0..count {
                let j = job(
                    i,
                    "plugin_echo",
                    "plugin_echo",
                    echo.digest(),
                    json!({"value": 1}),
                );
                rt.block_on(invoke::run_node(host.clone(), store.clone(), j));
            }
        } else {
            let j = job(
                0,
                "hostile",
                "hostile",
                hostile.digest(),
                json!({"attack": "call_flood", "calls": count}),
            );
            let done = rt.block_on(invoke::run_node(host.clone(), store.clone(), j));
            assert!(matches!(
                done.outcome,
                abstractgateway::engine::PluginOutcome::Output(_)
            ));
        }
        std::process::exit(0);
    }

    c.bench_function("plugin node: instantiate + run plugin_echo", |b| {
        b.iter(|| {
            n += 1;
            let j = job(
                n,
                "plugin_echo",
                "plugin_echo",
                echo.digest(),
                json!({"value": 1}),
            );
            rt.block_on(invoke::run_node(host.clone(), store.clone(), j))
        })
    });

    // Per call = (1,000 calls − 0 calls) / 1,000: each call goes through the recorder and appends a ledger record.
    let mut per_call = Vec::new();
    for _ in 0..15 {
        let mut t = [Duration::ZERO; 2];
        for (i, calls) in [0, 1000].into_iter().enumerate() {
            n += 1;
            let j = job(
                n,
                "hostile",
                "hostile",
                hostile.digest(),
                json!({"attack": "call_flood", "calls": calls}),
            );
            let t0 = Instant::now();
            let done = rt.block_on(invoke::run_node(host.clone(), store.clone(), j));
            t[i] = t0.elapsed();
            assert!(matches!(
                done.outcome,
                abstractgateway::engine::PluginOutcome::Output(_)
            ));
        }
        per_call.push(t[1].saturating_sub(t[0]).as_secs_f64() * 1e6 / 1000.0);
    }
    per_call.sort_by(f64::total_cmp);
    println!(
        "host call (log) incl. its ledger record: median {:.2} µs over 15 rounds of 1,000",
        per_call[7]
    );

    let bytes = component("http_steps");
    let mut g = c.benchmark_group("component load");
    g.sample_size(10);
    g.bench_function("cold compile (empty cache)", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("tmp");
            let h = PluginHost::new(dir.path(), Capabilities::new(), None).expect("host");
            h.load("http_steps", &bytes, Grants::default())
                .expect("load")
        })
    });
    let warm = tempfile::tempdir().expect("tmp");
    PluginHost::new(warm.path(), Capabilities::new(), None)
        .expect("host")
        .load("http_steps", &bytes, Grants::default())
        .expect("load");
    g.bench_function("cached load (compiled on disk)", |b| {
        b.iter(|| {
            let h = PluginHost::new(warm.path(), Capabilities::new(), None).expect("host");
            h.load("http_steps", &bytes, Grants::default())
                .expect("load")
        })
    });
    g.bench_function("plugin host start alone (engine, pool, runtime)", |b| {
        b.iter(|| PluginHost::new(warm.path(), Capabilities::new(), None).expect("host"))
    });
    g.finish();
}

criterion_group!(plugins, benches);
criterion_main!(plugins);

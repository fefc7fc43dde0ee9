//! The Python `code` node component: cold load (compile the 18 MB component), load from the on-disk cache
//! of compiled components, and one `code` node run start → completed through the runner and store, first
//! and then warm (a fresh sandboxed instance per node execution either way).
//!
//! Build the component first (`scripts/build-python-plugin.sh`), then run:
//! `cargo bench -p abstractgateway --bench python_code`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::plugins::{Grants, PluginHost};
use abstractgateway::run::RunStatus;
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use serde_json::{Value, json};

/// Warm runs measured.
const WARM_RUNS: usize = 30;

fn component() -> (Vec<u8>, Grants) {
    let dir = std::env::var_os("AG_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| abstractgateway_testkit::repo_root().join("target/plugins"));
    let wasm = dir.join("python_code.wasm");
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): build it with scripts/build-python-plugin.sh",
            wasm.display()
        )
    });
    let grants: Value = serde_json::from_slice(
        &std::fs::read(wasm.with_extension("grants.json"))
            .expect("grants file next to the component"),
    )
    .expect("grants JSON");
    (bytes, Grants::parse(&grants).expect("valid grants"))
}

/// start → code (`return sum(nums)`) → end.
fn write_bundle(dir: &Path) -> PathBuf {
    let exec = |id: &str| json!({"id": id, "label": "", "type": "execution"});
    let pin = |id: &str| json!({"id": id, "label": id, "type": "any"});
    let edge = |s: &str, sh: &str, t: &str, th: &str| json!({"id": format!("{s}.{sh}->{t}.{th}"), "source": s, "sourceHandle": sh, "target": t, "targetHandle": th});
    let flow = json!({"id": "main", "entryNode": "s", "nodes": [
        {"id": "s", "type": "on_flow_start", "data": {"inputs": [], "outputs": [exec("exec-out"), pin("nums")]}},
        {"id": "c", "type": "code", "data": {"inputs": [exec("exec-in"), pin("nums")],
            "outputs": [exec("exec-out"), pin("output")], "codeBody": "return sum(nums)"}},
        {"id": "e", "type": "on_flow_end", "data": {"inputs": [exec("exec-in"), pin("total")], "outputs": []}}],
      "edges": [edge("s", "exec-out", "c", "exec-in"), edge("c", "exec-out", "e", "exec-in"),
                edge("s", "nums", "c", "nums"), edge("c", "output", "e", "total")]});
    let b = dir.join("bench");
    std::fs::create_dir_all(b.join("flows")).expect("mkdir");
    std::fs::write(b.join("flows/main.json"), flow.to_string()).expect("flow");
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "bench", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main", "flows": {"main": "flows/main.json"}});
    std::fs::write(b.join("manifest.json"), manifest.to_string()).expect("manifest");
    b
}

fn gateway(host: &Arc<PluginHost>, dir: &Path) -> Arc<Gateway> {
    let bundle = Arc::new(read_bundle(&write_bundle(dir), &Limits::default()).expect("bundle"));
    let (flows, _, problems) = catalog::build(vec![bundle], &host.registry());
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: dir.join("data"),
            runner: true,
            max_steps: 100,
            executor: Some(host.clone()),
        },
        flows,
    )
    .expect("open")
}

/// One run start → completed; returns its latency.
fn one_run(gw: &Gateway) -> Duration {
    let started = Instant::now();
    let req = StartRequest {
        workflow_id: "bench@1.0.0:main".into(),
        input: json!({"nums": [1, 2, 3]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    let id = gw.start_run(req).expect("start").run_id;
    loop {
        let r = gw.store().get_run(&id).expect("get").expect("run");
        if r.status.is_terminal() {
            assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
            assert_eq!(r.output.expect("output")["total"], json!(6));
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let (bytes, grants) = component();
    let cache = tempfile::tempdir().expect("tmp");
    println!("python_code.wasm: {:.1} MB", bytes.len() as f64 / 1e6);

    let host = PluginHost::new(cache.path(), Default::default(), None).expect("host");
    let t = Instant::now();
    host.load("python_code", &bytes, grants.clone())
        .expect("component loads");
    println!("cold load (compile + link + describe): {}", ms(t.elapsed()));
    let work = tempfile::tempdir().expect("tmp");
    let gw = gateway(&host, work.path());
    println!(
        "first code-node run (start -> completed): {}",
        ms(one_run(&gw))
    );
    let mut warm: Vec<Duration> = (0..WARM_RUNS).map(|_| one_run(&gw)).collect();
    warm.sort();
    println!(
        "warm code-node run (start -> completed, {WARM_RUNS} runs): median {}, min {}, max {}",
        ms(warm[WARM_RUNS / 2]),
        ms(warm[0]),
        ms(warm[WARM_RUNS - 1])
    );
    drop(gw);

    // A restarted process: the compiled form comes from the cache by digest.
    let host2 = PluginHost::new(cache.path(), Default::default(), None).expect("host");
    let t = Instant::now();
    host2
        .load("python_code", &bytes, grants)
        .expect("component loads");
    println!(
        "load from the compiled cache (restart): {}",
        ms(t.elapsed())
    );
    let work2 = tempfile::tempdir().expect("tmp");
    let gw2 = gateway(&host2, work2.path());
    println!("first code-node run after a restart: {}", ms(one_run(&gw2)));
}

//! The Python `code`/`function` component (`scripts/build-python-plugin.sh`) and a plugin host that runs it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use abstractgateway::plugins::{Grants, PluginHost};
use abstractgateway::runner::executor::{CancelFlag, NodeExecutor, NodeJob};
use abstractgateway::runner::world::World;
use abstractgateway::store::Store;
use serde_json::Value;

use super::plugins::built_dir;

/// Name the component is loaded under (its file stem).
pub const NAME: &str = "python_code";

/// Where the built component is.
pub fn component_path() -> PathBuf {
    built_dir().join(format!("{NAME}.wasm"))
}

/// The component's bytes and shipped grants; panics naming the build script when they are missing.
pub fn component() -> (Vec<u8>, Grants) {
    let path = component_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): build it with scripts/build-python-plugin.sh (scripts/test.sh does it first)",
            path.display()
        )
    });
    let grants_path = path.with_extension("grants.json");
    let grants: Value = serde_json::from_slice(&std::fs::read(&grants_path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): build with scripts/build-python-plugin.sh",
            grants_path.display()
        )
    }))
    .expect("grants JSON");
    (bytes, Grants::from_json(&grants).expect("valid grants"))
}

/// Compiled components outlive one test run here, so only the first run pays the 10-25 s compilation.
fn cache_root() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/python-plugin/test-cache"
    ))
}

/// One plugin host per test binary with the Python component loaded (compiled once, then cached on disk).
pub fn host() -> Arc<PluginHost> {
    static HOST: OnceLock<Arc<PluginHost>> = OnceLock::new();
    HOST.get_or_init(|| {
        let host = PluginHost::new(&cache_root(), Default::default()).expect("plugin host");
        let (bytes, grants) = component();
        host.load(NAME, &bytes, grants)
            .unwrap_or_else(|e| panic!("the Python component does not load: {e}"));
        host
    })
    .clone()
}

/// Executes every plugin node the world has made durable (one at a time, to completion) and applies the
/// outcomes; true when some ran. Stands in for the runner's dispatch in tests that drive a `World` by hand.
pub fn execute_pending(world: &mut World, store: &Store, host: &Arc<PluginHost>) -> bool {
    let ids = world.take_dispatch();
    for id in &ids {
        let Some(run) = world.runs.get(id) else {
            continue;
        };
        let Some(inflight) = run.inflight.clone() else {
            continue;
        };
        let config = world
            .flows
            .get(&run.workflow_id)
            .and_then(|f| f.node(&inflight.node_id).map(|n| n.node.data.clone()))
            .unwrap_or_default();
        let job = NodeJob {
            run_id: id.clone(),
            session_id: run.session_id.clone(),
            actor_id: run.actor_id.clone(),
            workflow_id: run.workflow_id.clone(),
            node_id: inflight.node_id.clone(),
            node_type: inflight.node_type.clone(),
            plugin: inflight.plugin.clone(),
            digest: inflight.digest.clone(),
            config,
            inputs: inflight.inputs.clone(),
            started_seq: inflight.started_seq,
            ledger_len: store.ledger_len(id),
            cancel: Arc::new(CancelFlag::default()),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        host.clone().spawn(
            store.clone(),
            job,
            Box::new(move |done| {
                let _ = tx.send(done);
            }),
        );
        let done = rx.recv().expect("the plugin host reports every node");
        world.finish_plugin(&done.run_id, done.outcome, done.ledger_len);
    }
    !ids.is_empty()
}

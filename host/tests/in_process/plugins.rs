//! The components built from `plugins/` (by `scripts/build-plugins.sh`) and a gateway that runs them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::plugins::PluginHost;
use abstractgateway::runner::executor::{CancelFlag, NodeExecutor};
use abstractgateway::runner::workspace::Workspaces;
use abstractgateway::runner::world::World;
use abstractgateway::runner::{Gateway, GatewayOptions, catalog, node_job};
use abstractgateway::store::Store;

/// Where the built components are: `AG_PLUGINS_DIR`, else `<repo>/target/plugins`.
pub fn built_dir() -> PathBuf {
    std::env::var_os("AG_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| abstractgateway_testkit::repo_root().join("target/plugins"))
}

/// The bytes of built component `name` (e.g. `http_steps`).
pub fn component(name: &str) -> Vec<u8> {
    let p = built_dir().join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); build the plugins first: scripts/build-plugins.sh",
            p.display()
        )
    })
}

/// A plugins dir holding `(component, grants JSON)` pairs.
pub fn plugins_dir(dir: &Path, plugins: &[(&str, serde_json::Value)]) -> PathBuf {
    let p = dir.join("plugins");
    std::fs::create_dir_all(&p).expect("mkdir plugins");
    for (name, grants) in plugins {
        std::fs::write(p.join(format!("{name}.wasm")), component(name)).expect("write wasm");
        if !grants.is_null() {
            std::fs::write(p.join(format!("{name}.grants.json")), grants.to_string())
                .expect("grants");
        }
    }
    p
}

/// A gateway over the bundle at `bundle` with the plugins of `plugins`.
pub fn gateway(data: &Path, bundle: &Path, plugins: &Path) -> Arc<Gateway> {
    gateway_in_mode(data, bundle, plugins, None)
}

/// Like [`gateway`], with tools run without approval (`ABSTRACTGATEWAY_TOOL_MODE=local`).
pub fn gateway_local(data: &Path, bundle: &Path, plugins: &Path) -> Arc<Gateway> {
    gateway_in_mode(data, bundle, plugins, Some("local"))
}

fn gateway_in_mode(data: &Path, bundle: &Path, plugins: &Path, mode: Option<&str>) -> Arc<Gateway> {
    let (host, warnings) = abstractgateway::plugins::setup_in_mode(
        data,
        Some(plugins),
        abstractgateway::llm::LlmConfig::from_env(),
        mode,
    )
    .expect("plugin host");
    assert!(warnings.is_empty(), "{warnings:?}");
    let b = Arc::new(read_bundle(bundle, &Limits::default()).expect("bundle loads"));
    let (flows, _, problems) = catalog::build(vec![b], &host.registry());
    assert!(problems.is_empty(), "{problems:?}");
    Gateway::open(
        GatewayOptions {
            data_dir: data.to_path_buf(),
            runner: true,
            max_steps: 100,
            executor: Some(host),
        },
        flows,
    )
    .expect("open")
}

/// Executes every plugin node the world has made durable (one at a time, to completion) and applies the
/// outcomes; true when some ran. Stands in for the runner's dispatch in tests that drive a `World` by hand.
pub fn execute_pending(world: &mut World, store: &Store, host: &Arc<PluginHost>) -> bool {
    let ids = world.take_dispatch();
    for id in &ids {
        let workspaces = Workspaces::default_for(&std::env::temp_dir().join("ag-test-workspaces"));
        let Some(job) = node_job(
            world,
            store,
            &workspaces,
            id,
            Arc::new(CancelFlag::default()),
        ) else {
            continue;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        host.clone().spawn(
            store.clone(),
            job,
            Box::new(move |done| {
                let _ = tx.send(done);
            }),
        );
        let done = rx.recv().expect("the executor answers");
        world.finish_plugin(&done.run_id, done.outcome, done.ledger_len);
    }
    !ids.is_empty()
}

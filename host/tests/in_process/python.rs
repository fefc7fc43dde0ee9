//! The Python `code`/`function` component (`scripts/build-python-plugin.sh`) and a plugin host that runs it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use abstractgateway::plugins::{Grants, PluginHost};
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
    (bytes, Grants::parse(&grants).expect("valid grants"))
}

/// Compiled components outlive one test run here, so only the first run pays the 10-25 s compilation.
pub fn cache_root() -> PathBuf {
    abstractgateway_testkit::repo_root().join("target/python-plugin/test-cache")
}

/// One plugin host per test binary with the Python component loaded (compiled once, then cached on disk).
pub fn host() -> Arc<PluginHost> {
    static HOST: OnceLock<Arc<PluginHost>> = OnceLock::new();
    HOST.get_or_init(|| {
        let host = PluginHost::new(&cache_root(), Default::default(), None).expect("plugin host");
        let (bytes, grants) = component();
        host.load(NAME, &bytes, grants)
            .unwrap_or_else(|e| panic!("the Python component does not load: {e}"));
        host
    })
    .clone()
}

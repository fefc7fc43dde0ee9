//! Finds (fetching it on first use) and loads the real model, once per test binary.
#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use abstractgateway_llm_local::{LocalModel, MODEL_ENV};

/// Path of the Q4_1 model: `$ABSTRACTGATEWAY_LOCAL_MODEL` if set, else whatever `scripts/fetch-model.sh` prints.
pub fn model_path() -> PathBuf {
    if let Some(path) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let script = abstractgateway_testkit::repo_root().join("scripts/fetch-model.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("running scripts/fetch-model.sh");
    assert!(
        out.status.success(),
        "scripts/fetch-model.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8 path");
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("fetch-model.sh prints the path")
            .trim(),
    )
}

/// The model shared by all tests of one binary (loading takes about a second).
pub fn model() -> Arc<LocalModel> {
    static MODEL: OnceLock<Arc<LocalModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            // SAFETY: the other test threads only touch the environment through std::env, which locks it.
            unsafe { abstractgateway_llm_local::prefer_single_thread() };
            Arc::new(LocalModel::load(model_path()).expect("loading the model"))
        })
        .clone()
}

/// A one-message user conversation.
pub fn user(text: &str) -> Vec<(String, String)> {
    vec![("user".to_string(), text.to_string())]
}

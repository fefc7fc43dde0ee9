//! Helpers of the in-process tests (engine + runner + store, no HTTP).
#![allow(dead_code)]

pub mod fake_llm;
pub mod flowgen;
pub mod loads;
pub mod plugins;
pub mod python;
pub mod scripted_llm;
pub mod standin;

use std::path::PathBuf;
use std::time::Duration;

use abstractgateway::run::RunState;
use abstractgateway::runner::{Gateway, StartRequest};
use serde_json::Value;

/// The shared fixtures (see the test kit).
pub fn shared() -> PathBuf {
    abstractgateway_testkit::shared_dir()
}

/// Waits until `pred` holds on the run's durable state, woken by the store's watch channel.
/// The deadline only guards against hangs; it is not a performance bound.
pub fn wait_for(gw: &Gateway, run_id: &str, pred: impl Fn(&RunState) -> bool) -> RunState {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut rx = gw.store().watch_run(run_id);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(r) = gw.store().get_run(run_id).expect("get")
                && pred(&r)
            {
                return r;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "run {run_id} never reached the expected state"
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), rx.changed()).await;
        }
    })
}

/// Starts flow `main` of the bundle `flowgen::write_bundle` writes, with `input`, and waits until it ends.
pub fn run_to_end(gw: &Gateway, input: Value) -> RunState {
    run_in_session(gw, input, None)
}

/// Like [`run_to_end`], in session `session` (its runs share one workspace).
pub fn run_in_session(gw: &Gateway, input: Value, session: Option<&str>) -> RunState {
    let req = StartRequest {
        workflow_id: "features@1.0.0:main".into(),
        input: input.as_object().cloned().unwrap_or_default(),
        session_id: session.map(str::to_string),
        ..Default::default()
    };
    let id = gw.start_run(req).expect("start").run_id;
    wait_for(gw, &id, |r| r.status.is_terminal())
}

/// `(node, status, error)` of every ledger record of a run.
pub fn ledger_summary(gw: &Gateway, id: &str) -> Vec<(String, String, Option<String>)> {
    gw.store()
        .ledger_after(id, 0, 100)
        .expect("ledger")
        .iter()
        .map(|e| {
            let r: Value = serde_json::from_str(e.json.get()).expect("record");
            (
                r["node_id"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["error"].as_str().map(String::from),
            )
        })
        .collect()
}

//! Builders for store tests: runs and records shaped like the seed's (see the observed echo ledger).

use serde_json::{Map, json};

use super::NewCommand;
use crate::run::{Control, RunState, RunStatus, StepRecord};

/// A fixed-width timestamp; `n` orders them.
pub(crate) fn ts(n: u32) -> String {
    format!(
        "2026-11-28T12:05:{:02}.{:06}+00:00",
        n / 1_000_000 % 60,
        n % 1_000_000
    )
}

/// A root run of workflow `echo-upper@1.0.0:echo` created at `ts(created)`.
pub(crate) fn run_state(run_id: &str, created: u32, status: RunStatus) -> RunState {
    let mut vars = Map::new();
    vars.insert("prompt".into(), json!("hello,  alice"));
    RunState {
        run_id: run_id.to_string(),
        workflow_id: "echo-upper@1.0.0:echo".to_string(),
        status,
        current_node: Some("end".to_string()),
        vars,
        waiting: None,
        output: None,
        error: None,
        created_at: ts(created),
        updated_at: ts(created),
        actor_id: Some("gateway".to_string()),
        session_id: Some(run_id.to_string()),
        parent_run_id: None,
        ledger_len: 0,
        control: Control::default(),
        bundle_sha256: None,
        inflight: None,
        components: Default::default(),
        workspace: None,
        usage: Default::default(),
    }
}

/// The `n`-th ledger record of `run`, modelled on the seed's completion record.
pub(crate) fn step(run: &RunState, n: u64) -> StepRecord {
    StepRecord {
        run_id: run.run_id.clone(),
        step_id: format!("step-{n}"),
        node_id: "end".to_string(),
        status: "completed".to_string(),
        effect: None,
        result: Some(json!({"completed": true, "output": {"response": "HELLO,  ALICE", "n": n}})),
        error: None,
        started_at: ts(1),
        ended_at: Some(ts(2)),
        actor_id: run.actor_id.clone(),
        session_id: run.session_id.clone(),
        attempt: 1,
        idempotency_key: Some(format!("system:completion:{n}")),
        prev_hash: None,
        record_hash: None,
        signature: None,
    }
}

/// A `pause` command for `run_id`.
pub(crate) fn command(command_id: &str, run_id: &str) -> NewCommand {
    NewCommand {
        command_id: command_id.to_string(),
        run_id: run_id.to_string(),
        kind: "pause".to_string(),
        payload: json!({"reason": "test"}),
        ts: None,
        client_id: Some("tests".to_string()),
    }
}

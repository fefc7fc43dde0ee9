//! kill -9 in the middle of an agent's ReAct loop: the model asked for a tool, the tool ran, and the second
//! model call is in flight. After a restart the agent replays the recorded model answer and tool result,
//! makes only the model call that never completed, and finishes; nothing completed is repeated.
//! Runs the seed's `basic-agent` bundle over HTTP with a scripted OpenAI-compatible stand-in.

mod binary;
mod in_process;

use std::time::{Duration, Instant};

use binary::Server;
use in_process::scripted_llm::ScriptedLlm;
use in_process::shared;
use serde_json::{Value, json};

/// `(interface, function)` of every host call record, in ledger order.
fn host_calls(recs: &[Value]) -> Vec<(String, String)> {
    recs.iter()
        .filter(|r| r["effect"]["type"] == "host_call")
        .map(|r| {
            let p = &r["effect"]["payload"];
            (
                p["interface"].as_str().unwrap_or("").to_string(),
                p["function"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `basic-agent` served with the scripted model (its answer to the tool result delayed 10 minutes) and local tool
/// mode, one run started and its second model call in flight.
async fn agent_with_second_call_in_flight() -> (ScriptedLlm, tempfile::TempDir, Server, String) {
    let llm = ScriptedLlm::start(Duration::from_secs(600));
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(tmp.path().join("flows")).expect("mkdir");
    std::fs::copy(
        shared().join("fixtures/bundles/seed/basic-agent@0.0.1.flow"),
        tmp.path().join("flows/basic-agent@0.0.1.flow"),
    )
    .expect("copy bundle");
    let env = [
        ("LMSTUDIO_BASE_URL", llm.base_url.as_str()),
        ("ABSTRACTGATEWAY_TOOL_MODE", "local"),
    ];
    let s = Server::start_in(tmp.path(), &env).await;
    let run = s
        .start_run(
            "basic-agent",
            json!({"prompt": "List the files of the workspace."}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while llm.final_turns() == 0 {
        assert!(
            Instant::now() < deadline,
            "the agent never made its second model call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (llm, tmp, s, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_agent_repeats_no_completed_model_or_tool_call() {
    // The second model call (the one carrying the tool's answer) is in flight: kill.
    let (llm, _tmp, mut s, run) = agent_with_second_call_in_flight().await;
    let before = host_calls(&s.ledger(&run).await);
    s.kill();
    let tool_call = ("tools".to_string(), "invoke".to_string());
    assert_eq!(
        before.iter().filter(|c| **c == tool_call).count(),
        1,
        "the tool ran once before the kill: {before:?}"
    );

    s.restart().await;
    let done = s.wait_done(&run, 120).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["output"]["response"], "done: listed the workspace",
        "{done}"
    );
    assert_eq!(
        llm.first_turns(),
        1,
        "the completed model call that asked for the tool was replayed, not repeated"
    );
    assert_eq!(
        llm.final_turns(),
        2,
        "only the call that was in flight at the kill is made again"
    );
    let after = host_calls(&s.ledger(&run).await);
    assert_eq!(
        after.iter().filter(|c| **c == tool_call).count(),
        1,
        "the tool did not run again: {after:?}"
    );
    let llm_calls = after.iter().filter(|c| c.0 == "llm").count();
    assert_eq!(
        llm_calls, 2,
        "two completed model calls in the ledger: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_command_stops_the_model_call_in_flight() {
    let (llm, _tmp, s, run) = agent_with_second_call_in_flight().await;
    // The model would answer in 10 minutes; the cancel must not wait for it.
    let (st, v) = s
        .command("cancel-1", &run, "cancel", json!({"reason": "enough"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let done = s.wait_done(&run, 60).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(llm.final_turns(), 1, "the cancelled call is not retried");
}

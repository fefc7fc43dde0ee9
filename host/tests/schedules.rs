//! Scheduled runs over HTTP: counted and recurrent schedules, `update_schedule`, validation, restart.

mod binary;

use binary::Server;
use serde_json::{Value, json};

async fn children(s: &Server, parent: &str) -> Vec<Value> {
    let (_, v) = s.get("/api/gateway/runs?limit=500").await;
    let mut out: Vec<Value> = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["parent_run_id"] == parent)
        .collect();
    out.sort_by_key(|r| r["created_at"].as_str().unwrap_or_default().to_string());
    out
}

#[tokio::test]
async fn counted_schedule_runs_the_target_n_times() {
    let s = Server::start(&[]).await;
    let (st, v) = s
        .post(
            "/api/gateway/runs/schedule",
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "input_data": {"name": "tick"},
                   "interval": "0.2s", "repeat_count": 3}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let parent = v["run_id"].as_str().expect("run id").to_string();
    let p = s.wait_status(&parent, "completed").await;
    let wf = p["workflow_id"].as_str().unwrap_or_default().to_string();
    assert!(wf.starts_with("scheduled:"), "{p}");
    assert_eq!(p["is_scheduled"], true);
    assert_eq!(p["output"], json!({"executions": 3.0, "success": true}));
    let kids = children(&s, &parent).await;
    assert_eq!(kids.len(), 3);
    for k in &kids {
        assert_eq!(k["workflow_id"], "echo-upper@1.0.0:echo");
        assert_eq!(k["output"]["response"], "HELLO,  TICK");
    }
    let (st, f) = s.get(&format!("/api/gateway/workflows/{wf}/flow")).await;
    assert_eq!(st, 200);
    assert_eq!(f["source"], "dynamic");
}

#[tokio::test]
async fn update_schedule_rearms_the_interval_and_survives_restart() {
    let mut s = Server::start(&[]).await;
    let (st, v) = s
        .post(
            "/api/gateway/runs/schedule",
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "interval": "1h", "share_context": false}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let parent = v["run_id"].as_str().expect("run id").to_string();
    s.wait_run(&parent, |r| {
        r["status"] == "waiting" && r["waiting"]["reason"] == "until"
    })
    .await;
    assert_eq!(children(&s, &parent).await.len(), 1);
    // The wrapper flow and the wait survive a restart.
    s.restart().await;
    let (st, c) = s
        .command(
            "faster",
            &parent,
            "update_schedule",
            json!({"interval": "0.2s"}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    let outcome = s.wait_outcome("faster").await;
    assert_eq!(outcome["status"], "applied", "{outcome}");
    // With the new interval the next executions come at once.
    for _ in 0..500 {
        if children(&s, &parent).await.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kids = children(&s, &parent).await;
    assert!(kids.len() >= 3, "{kids:?}");
    // share_context=false: every execution has a session of its own.
    let sessions: std::collections::HashSet<String> = kids
        .iter()
        .map(|k| k["session_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sessions.len(), kids.len());
    let (_, c) = s.command("stop", &parent, "cancel", json!({})).await;
    assert_eq!(c["accepted"], true);
    s.wait_status(&parent, "cancelled").await;
    // update_schedule on a run that is not scheduled is rejected with its reason.
    let plain = s.start_run("ask-user", json!({})).await;
    s.wait_status(&plain, "waiting").await;
    let (st, _) = s
        .command("nope", &plain, "update_schedule", json!({"interval": "1s"}))
        .await;
    assert_eq!(st, 200);
    let o = s.wait_outcome("nope").await;
    assert_eq!(o["status"], "rejected");
}

#[tokio::test]
async fn schedule_validation_matches_the_seed() {
    let s = Server::start(&[]).await;
    let cases = [
        (
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "repeat_count": 0}),
            400,
        ),
        (
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "repeat_count": 2}),
            400,
        ),
        (
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "interval": "soon"}),
            400,
        ),
        (
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "repeat_until": "2030-01-01T00:00:00Z"}),
            400,
        ),
        (
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "interval": "1s", "repeat_until": "2000-01-01T00:00:00Z"}),
            400,
        ),
        (json!({"bundle_id": "nope", "flow_id": "echo"}), 404),
    ];
    for (body, want) in cases {
        let (st, v) = s.post("/api/gateway/runs/schedule", body.clone()).await;
        assert_eq!(st, want, "{body} -> {v}");
        assert!(v["detail"].is_string(), "{v}");
    }
}

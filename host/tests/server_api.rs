//! Every core endpoint against the real binary: bundles, runs, ledger, commands, audit, docs.

mod binary;

use binary::{Server, TOKEN};
use serde_json::{Value, json};

#[tokio::test]
async fn health_bundles_and_flows() {
    let s = Server::start(&[]).await;
    let r = s.client.get(s.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_none());
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"status":"healthy","service":"abstractgateway"}"#
    );
    // Readiness, without a token (a load balancer has none): one machine is ready when it answers.
    let r = s.client.get(s.url("/api/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"ready": true, "service": "abstractgateway", "store": "embedded", "runner": true, "shards": [0]})
    );

    let (st, v) = s.get("/api/gateway/bundles").await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bundle_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["ask-user", "chain", "delay", "echo-upper", "wait-event"]
    );
    assert_eq!(v["default_bundle_id"], Value::Null);
    let ask = &v["items"][0];
    let keys: Vec<&String> = ask.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "bundle_id",
            "bundle_version",
            "bundle_ref",
            "created_at",
            "default_entrypoint",
            "entrypoints"
        ]
    );
    assert_eq!(ask["entrypoints"][0]["deprecated"], false);

    let (st, d) = s.get("/api/gateway/bundles/echo-upper").await;
    assert_eq!(st, 200);
    assert_eq!(d["entrypoints"][0]["workflow_id"], "echo-upper@1.0.0:echo");
    assert_eq!(
        d["entrypoints"][0]["inputs"],
        json!([{"id":"name","label":"name","type":"string","default":"world"}])
    );
    assert_eq!(
        d["entrypoints"][0]["node_index"]["start"]["type"],
        "on_flow_start"
    );
    assert_eq!(d["flows"], json!(["echo"]));
    assert_eq!(
        s.get("/api/gateway/bundles/nope").await,
        (404, json!({"detail": "Bundle 'nope' not found"}))
    );
    assert_eq!(
        s.get("/api/gateway/bundles/echo-upper?bundle_version=9")
            .await,
        (404, json!({"detail": "Bundle 'echo-upper@9' not found"}))
    );

    let (st, f) = s.get("/api/gateway/bundles/echo-upper/flows/echo").await;
    assert_eq!(st, 200);
    assert_eq!(f["workflow_id"], "echo-upper@1.0.0:echo");
    assert_eq!(f["flow"]["id"], "echo");
    let (st, f2) = s
        .get("/api/gateway/bundles/echo-upper/flows/echo-upper@1.0.0:echo")
        .await;
    assert_eq!((st, &f2["flow"]), (200, &f["flow"]));
    assert_eq!(
        s.get("/api/gateway/bundles/echo-upper/flows/delay:delay")
            .await
            .0,
        400
    );
    assert_eq!(
        s.get("/api/gateway/bundles/echo-upper/flows/nope").await,
        (404, json!({"detail": "Flow 'nope' not found"}))
    );
    let (st, w) = s
        .get("/api/gateway/workflows/echo-upper@1.0.0:echo/flow")
        .await;
    assert_eq!((st, &w["flow"]), (200, &f["flow"]));
    assert_eq!(s.get("/api/gateway/workflows/x:y/flow").await.0, 404);
}

#[tokio::test]
async fn run_lifecycle_ledger_and_lists() {
    let s = Server::start(&[]).await;
    let run_id = s.start_run("echo-upper", json!({"name": "Alice"})).await;
    assert_eq!(run_id.len(), 36);
    let v = s.wait_status(&run_id, "completed").await;
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "run_id",
            "workflow_id",
            "status",
            "current_node",
            "created_at",
            "updated_at",
            "actor_id",
            "session_id",
            "parent_run_id",
            "error",
            "paused",
            "pause_reason",
            "paused_at",
            "resumed_at",
            "waiting",
            "is_scheduled",
            "schedule",
            "limits",
            "output"
        ]
    );
    assert_eq!(v["workflow_id"], "echo-upper@1.0.0:echo");
    assert_eq!(v["session_id"], run_id.as_str());
    assert_eq!(v["output"]["response"], "HELLO,  ALICE");
    assert_eq!(v["limits"]["tokens"]["max_tokens"], 32768);

    let (st, l) = s.get(&format!("/api/gateway/runs/{run_id}/ledger")).await;
    assert_eq!(st, 200);
    assert_eq!(l["next_after"], 2);
    assert_eq!(l["items"][0]["idempotency_key"], "system:completion:end");
    assert_eq!(l["items"][0]["result"]["output"]["length"], 13);
    let (_, p) = s
        .get(&format!(
            "/api/gateway/runs/{run_id}/ledger?after=1&limit=1"
        ))
        .await;
    assert_eq!(
        (p["items"].as_array().unwrap().len(), &p["next_after"]),
        (1, &json!(2))
    );
    assert_eq!(
        s.get(&format!("/api/gateway/runs/{run_id}/ledger?after=99"))
            .await
            .1,
        json!({"items": [], "next_after": 99})
    );
    assert_eq!(
        s.get("/api/gateway/runs/nope/ledger").await,
        (404, json!({"detail": "Run 'nope' not found"}))
    );

    let (st, b) = s
        .post(
            "/api/gateway/runs/ledger/batch",
            json!({"runs": [{"run_id": run_id, "after": 1}, {"run_id": "nope", "after": 0}]}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(b["runs"][&run_id]["next_after"], 2);
    assert_eq!(b["runs"]["nope"], json!({"items": [], "next_after": 0}));

    let (st, list) = s.get("/api/gateway/runs?limit=10").await;
    assert_eq!(st, 200);
    let row = &list["items"][0];
    assert_eq!(row["run_id"], run_id.as_str());
    assert_eq!(row["ledger_len"], 2);
    assert_eq!(
        row["current_node"], v["current_node"],
        "list rows are as complete as the detail"
    );
    assert_eq!(
        s.get("/api/gateway/runs?status=completed&include_metrics=true")
            .await
            .1["items"][0]["steps"],
        2
    );
    assert_eq!(
        s.get("/api/gateway/runs?status=waiting").await.1["items"],
        json!([])
    );
    assert_eq!(
        s.get("/api/gateway/runs?status=paused").await,
        (
            400,
            json!({"detail": "Invalid status (expected: running|waiting|completed|failed|cancelled)"})
        )
    );
    assert_eq!(s.get("/api/gateway/runs?limit=0").await.0, 422);

    let (st, inp) = s
        .get(&format!("/api/gateway/runs/{run_id}/input_data"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        inp,
        json!({"run_id": run_id, "workflow_id": "echo-upper@1.0.0:echo", "bundle_id": "echo-upper", "bundle_version": "1.0.0", "flow_id": "echo", "pin_ids": ["name"], "input_data": {"name": "Alice"}})
    );

    let (st, h) = s
        .get(&format!("/api/gateway/runs/{run_id}/history_bundle"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(h["version"], 1);
    assert_eq!(h["ledgers"][&run_id]["total"], 2);
    assert_eq!(h["timeline"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.get(&format!(
            "/api/gateway/runs/{run_id}/history_bundle?ledger_mode=x"
        ))
        .await
        .0,
        400
    );

    assert_eq!(
        s.get(&format!("/api/gateway/runs/{run_id}/artifacts"))
            .await,
        (200, json!({"items": []}))
    );
    assert_eq!(
        s.get(&format!("/api/gateway/runs/{run_id}/artifacts/abc"))
            .await
            .0,
        404
    );
    assert_eq!(
        s.get(&format!("/api/gateway/runs/{run_id}/artifacts/a.b"))
            .await,
        (400, json!({"detail": "Invalid artifact id: a.b"}))
    );
    assert_eq!(s.get("/api/gateway/runs/nope/artifacts").await.0, 404);
    // Not multipart: both form fields are missing, as the seed answers.
    let (st, v) = s.post("/api/gateway/attachments/upload", json!({})).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["detail"][1]["loc"], json!(["body", "file"]));
    assert_eq!(
        s.post("/api/gateway/attachments/ingest", json!({})).await.0,
        422
    );
}

#[tokio::test]
async fn start_forms_and_idempotency_key() {
    let s = Server::start(&[]).await;
    for body in [
        json!({"bundle_id": "echo-upper@1.0.0"}),
        json!({"flow_id": "echo-upper:echo"}),
        json!({"bundle_id": "echo-upper", "bundle_version": "1.0.0"}),
    ] {
        assert_eq!(s.post("/api/gateway/runs/start", body).await.0, 200);
    }
    let start = |key: &'static str| {
        s.client
            .post(s.url("/api/gateway/runs/start"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"bundle_id": "echo-upper"}))
            .send()
    };
    let a: Value = start("k-1").await.unwrap().json().await.unwrap();
    let b: Value = start("k-1").await.unwrap().json().await.unwrap();
    let c: Value = start("k-2").await.unwrap().json().await.unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let (_, list) = s.get("/api/gateway/runs?limit=100").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn commands_outcomes_and_duplicates() {
    let s = Server::start(&[]).await;
    let run = s.start_run("ask-user", json!({"name": "Bob"})).await;
    let w = s.wait_status(&run, "waiting").await;
    assert_eq!(w["waiting"]["wait_key"], format!("user:{run}:ask"));
    let (st, a) = s
        .command(
            "c1",
            &run,
            "resume",
            json!({"wait_key": format!("user:{run}:ask"), "payload": {"response": "blue"}}),
        )
        .await;
    assert_eq!(
        (st, &a["accepted"], &a["duplicate"]),
        (200, &json!(true), &json!(false))
    );
    let seq = a["seq"].clone();
    let (st, d) = s
        .command(
            "c1",
            &run,
            "resume",
            json!({"payload": {"response": "DIFFERENT"}}),
        )
        .await;
    assert_eq!(
        (st, d),
        (
            200,
            json!({"accepted": false, "duplicate": true, "seq": seq})
        )
    );
    let done = s.wait_status(&run, "completed").await;
    assert_eq!(done["output"]["response"], "Bob  answered:  blue");
    let (st, c) = s.get("/api/gateway/commands/c1").await;
    assert_eq!(st, 200);
    assert_eq!(c["command"]["type"], "resume");
    assert_eq!(c["outcome"]["status"], "applied");
    // A stale resume is accepted (it may race) but its outcome says why it did nothing.
    s.command("c2", &run, "cancel", json!({})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, c) = s.get("/api/gateway/commands/c2").await;
        if !c["outcome"].is_null() {
            assert_eq!(c["outcome"]["status"], "rejected");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.get("/api/gateway/commands/none").await,
        (404, json!({"detail": "Command 'none' not found"}))
    );
}

#[tokio::test]
async fn upload_delete_reload_deprecate() {
    let s = Server::start(&[]).await;
    let bytes = std::fs::read(binary::bundles_dir().join("echo-upper@1.0.0.flow")).unwrap();
    let (st, v) = s.upload("echo-upper.flow", &bytes, Some(false)).await;
    assert_eq!(st, 400);
    assert_eq!(
        v,
        json!({"detail": "Bundle already installed: echo-upper@1.0.0.flow"})
    );
    let (st, v) = s.upload("echo-upper.flow", &bytes, Some(true)).await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["bundle_ref"].as_str(), v["gateway_reloaded"].as_bool()),
        (Some("echo-upper@1.0.0"), Some(true))
    );
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);

    let (st, d) = s
        .post(
            "/api/gateway/bundles/echo-upper/deprecate",
            json!({"reason": "old"}),
        )
        .await;
    assert_eq!((st, &d["flow_id"]), (200, &json!("*")));
    let (st, e) = s
        .post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "echo-upper"}),
        )
        .await;
    assert_eq!(
        (st, e),
        (
            409,
            json!({"detail": "Workflow 'echo-upper:echo' is deprecated: old"})
        )
    );
    let (_, l) = s.get("/api/gateway/bundles").await;
    assert_eq!(
        l["items"].as_array().unwrap().len(),
        4,
        "fully deprecated bundles are hidden"
    );
    let (_, l) = s.get("/api/gateway/bundles?include_deprecated=true").await;
    assert_eq!(l["items"][3]["entrypoints"][0]["deprecated_reason"], "old");
    assert_eq!(
        s.post("/api/gateway/bundles/echo-upper/undeprecate", json!({}))
            .await
            .1["removed"],
        true
    );
    assert_eq!(
        s.post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "echo-upper"})
        )
        .await
        .0,
        200
    );

    let r = s
        .client
        .delete(s.url("/api/gateway/bundles/chain"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": true, "bundle_ref": "chain", "removed": 1, "gateway_reloaded": true, "gateway_reload_error": null})
    );
    assert!(!s.dir.join("flows/chain@1.0.0.flow").exists());
    let r = s
        .client
        .delete(s.url("/api/gateway/bundles/chain"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    std::fs::write(s.dir.join("flows/broken.flow"), b"not a zip").unwrap();
    let (st, v) = s.post("/api/gateway/bundles/reload", json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 4);
    let health: Value = s
        .client
        .get(s.url("/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        health["warnings"][0]
            .as_str()
            .unwrap()
            .contains("broken.flow"),
        "{health}"
    );
}

#[tokio::test]
async fn audit_request_id_openapi_and_docs() {
    let s = Server::start(&[]).await;
    let r = s
        .client
        .post(s.url("/api/gateway/runs/start"))
        .bearer_auth(TOKEN)
        .header("X-Request-Id", "my-req-1")
        .header("x-client-id", "t")
        .json(&json!({"bundle_id": "echo-upper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "my-req-1");
    let r = s
        .client
        .get(s.url("/api/gateway/bundles"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 32);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (st, t) = s.get("/api/gateway/audit/tail").await;
    assert_eq!(st, 200);
    let line: Value =
        serde_json::from_str(t["content"].as_str().unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line["request_id"], "my-req-1");
    assert_eq!(line["path"], "/api/gateway/runs/start");
    assert_eq!(line["auth_token_fp"].as_str().unwrap().len(), 12);
    assert_eq!(line["headers"]["x-client-id"], "t");
    assert!(!t["content"].as_str().unwrap().contains(TOKEN));
    assert_eq!(s.get("/api/gateway/audit/tail?max_bytes=10").await.0, 422);
    let o: Value = s
        .client
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(o["paths"]["/api/gateway/runs/start"]["post"].is_object());
    assert!(o["components"]["securitySchemes"]["bearer"].is_object());
    let docs = s.client.get(s.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

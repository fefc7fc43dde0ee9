//! The bad inputs of the seed's recorded transcripts, answered with the seed's statuses and bodies (and the
//! deliberate fixes: CORS from the allowlist, lockout that spares valid tokens).

mod binary;

use binary::{Server, TOKEN};
use serde_json::{Value, json};

async fn raw(r: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    let h = r.headers().clone();
    (st, h, r.text().await.unwrap())
}

/// A POST with `Transfer-Encoding: chunked` (no Content-Length), written by hand on a raw socket.
async fn chunked_post(s: &Server, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(10_000) {
        // The server may answer and close before the whole body is sent.
        if sock
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || sock.write_all(chunk).await.is_err()
            || sock.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn auth_origin_and_body_caps() {
    let s = Server::start(&[]).await;
    let c = &s.client;
    let (st, h, body) = raw(c.get(s.url("/api/gateway/bundles"))).await;
    assert_eq!((st, body.as_str()), (401, r#"{"detail": "Unauthorized"}"#));
    assert_eq!(h["www-authenticate"], "Bearer");
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(raw(c.get(s.url("/api/gateway/nope"))).await.0, 401);
    assert_eq!(
        raw(c.get(s.url(&format!("/api/gateway/bundles?token={TOKEN}"))))
            .await
            .0,
        401
    );
    assert_eq!(
        raw(c
            .get(s.url("/api/gateway/bundles"))
            .header("Authorization", format!("bearer {TOKEN}")))
        .await
        .0,
        200
    );

    let evil = "http://evil.example.com";
    let (st, h, body) = raw(c
        .get(s.url("/api/gateway/bundles"))
        .bearer_auth(TOKEN)
        .header("Origin", evil))
    .await;
    assert_eq!(
        (st, body.as_str()),
        (403, r#"{"detail": "Forbidden (origin not allowed)"}"#)
    );
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "a disallowed origin is never echoed"
    );
    let pre = c
        .request(reqwest::Method::OPTIONS, s.url("/api/gateway/bundles"))
        .header("Origin", evil)
        .header("Access-Control-Request-Method", "GET");
    assert_eq!(raw(pre).await.0, 403, "preflights are checked too");
    let good = "http://localhost:5173";
    let pre = c
        .request(reqwest::Method::OPTIONS, s.url("/api/gateway/bundles"))
        .header("Origin", good)
        .header("Access-Control-Request-Method", "GET");
    let (st, h, _) = raw(pre).await;
    assert_eq!(
        (st, &h["access-control-allow-origin"]),
        (200, &good.parse::<reqwest::header::HeaderValue>().unwrap())
    );
    let (st, h, _) = raw(c
        .get(s.url("/api/gateway/bundles"))
        .bearer_auth(TOKEN)
        .header("Origin", good))
    .await;
    assert_eq!(
        (st, &h["access-control-allow-credentials"]),
        (
            200,
            &"true".parse::<reqwest::header::HeaderValue>().unwrap()
        )
    );
    assert_eq!(
        raw(c.get(s.url("/api/health")).header("Origin", evil))
            .await
            .0,
        200
    );

    let big = format!("{{\"bundle_id\":\"{}\"}}", "x".repeat(300_040));
    let (st, _, body) = raw(c
        .post(s.url("/api/gateway/runs/start"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(big.clone()))
    .await;
    assert_eq!(
        (st, body),
        (
            413,
            format!(
                "{{\"detail\": \"Payload Too Large ({} bytes > 256000 bytes)\"}}",
                big.len()
            )
        )
    );
    // Chunked: no Content-Length, the bytes are counted as they arrive.
    let (st, text) = chunked_post(&s, "/api/gateway/runs/start", big.as_bytes()).await;
    assert_eq!(st, 413, "{text}");
    assert!(
        text.contains("{\"detail\": \"Payload Too Large ("),
        "{text}"
    );
    assert_eq!(
        raw(c.post(s.url("/api/gateway/runs/start")).body(big))
            .await
            .0,
        401,
        "auth before size"
    );
}

#[tokio::test]
async fn validation_and_resolution_errors() {
    let s = Server::start(&[]).await;
    let c = &s.client;
    let post_raw = |body: &'static str, ct: Option<&'static str>| {
        let mut r = c
            .post(s.url("/api/gateway/runs/start"))
            .bearer_auth(TOKEN)
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r
    };
    let (st, _, b) = raw(post_raw(r#"{"bundle_id":"#, Some("application/json"))).await;
    assert_eq!(
        (st, b.as_str()),
        (
            422,
            r#"{"detail":[{"type":"json_invalid","loc":["body",13],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting value"}}]}"#
        )
    );
    let (st, _, b) = raw(post_raw("", Some("application/json"))).await;
    assert_eq!(
        (st, b.as_str()),
        (
            422,
            r#"{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}"#
        )
    );
    let (st, _, b) = raw(post_raw(r#"{"bundle_id":"echo-upper"}"#, None)).await;
    assert_eq!(st, 422);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["detail"][0]["type"],
        "model_attributes_type"
    );
    let cases = [
        (
            json!({"bundle_id": "echo-upper", "input_data": "str"}),
            422,
            json!({"detail":[{"type":"dict_type","loc":["body","input_data"],"msg":"Input should be a valid dictionary","input":"str"}]}),
        ),
        (
            json!({"bundle_id": "nope"}),
            404,
            json!({"detail": "Bundle not found"}),
        ),
        (
            json!({"bundle_id": "echo-upper", "bundle_version": "9.9.9"}),
            404,
            json!({"detail": "Bundle not found"}),
        ),
        (
            json!({"bundle_id": "echo-upper", "flow_id": "nope"}),
            404,
            json!({"detail": "Flow 'nope' not found"}),
        ),
        (
            json!({}),
            400,
            json!({"detail": "flow_id is required (or provide bundle_id to start a bundle entrypoint)"}),
        ),
        (
            json!({"flow_id": "echo"}),
            400,
            json!({"detail": "Failed to start run: bundle_id is required when multiple bundles are loaded (or pass flow_id as 'bundle:flow')"}),
        ),
        (
            json!({"bundle_id": "delay", "flow_id": "echo-upper:echo"}),
            400,
            json!({"detail": "Failed to start run: flow_id bundle prefix does not match bundle_id"}),
        ),
    ];
    for (body, status, want) in cases {
        assert_eq!(
            s.post("/api/gateway/runs/start", body.clone()).await,
            (status, want),
            "{body}"
        );
    }
    assert_eq!(
        s.get("/api/gateway/runs/does-not-exist").await,
        (404, json!({"detail": "Run 'does-not-exist' not found"}))
    );
    let r = c
        .get(s.url("/api/gateway/runs/does-not-exist/ledger/stream"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let run = s.start_run("echo-upper", json!({})).await;
    let (st, v) = s
        .get(&format!("/api/gateway/runs/{run}/ledger?after=-1"))
        .await;
    assert_eq!(
        (st, &v["detail"][0]["type"]),
        (422, &json!("greater_than_equal"))
    );
    let (st, v) = s
        .get(&format!("/api/gateway/runs/{run}/ledger?limit=5000"))
        .await;
    assert_eq!(
        (st, &v["detail"][0]["type"]),
        (422, &json!("less_than_equal"))
    );
    let (st, _) = s
        .get(&format!(
            "/api/gateway/runs/{run}/ledger/stream?heartbeat_s=0.05"
        ))
        .await;
    assert_eq!(st, 422);

    let msg = json!({"detail": "type must be one of pause|resume|cancel|emit_event|update_schedule|compact_memory"});
    assert_eq!(
        s.command("x1", &run, "nope", json!({})).await,
        (400, msg.clone())
    );
    assert_eq!(s.command("x2", &run, "PAUSE", json!({})).await, (400, msg));
    let (st, v) = s
        .post(
            "/api/gateway/commands",
            json!({"run_id": "x", "type": "pause"}),
        )
        .await;
    assert_eq!(
        (st, v),
        (
            422,
            json!({"detail":[{"type":"missing","loc":["body","command_id"],"msg":"Field required","input":{"run_id":"x","type":"pause"}}]})
        )
    );
    assert_eq!(
        s.command("x3", "nope", "cancel", json!({})).await,
        (404, json!({"detail": "Run 'nope' not found"}))
    );
    assert_eq!(
        s.command("x4", "sess", "emit_event", json!({})).await,
        (400, json!({"detail": "emit_event requires payload.name"}))
    );
    assert_eq!(
        s.command("x5", &run, "resume", json!({"payload": "str"}))
            .await
            .0,
        400
    );
    assert_eq!(
        s.get("/api/gateway/nope").await,
        (404, json!({"detail": "Not Found"}))
    );
    let r = c
        .delete(s.url("/api/gateway/commands"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
}

#[tokio::test]
async fn lockout_decays_and_spares_valid_tokens() {
    let s = Server::start(&[
        ("ABSTRACTGATEWAY_LOCKOUT_AFTER", "3"),
        ("ABSTRACTGATEWAY_LOCKOUT_BASE_S", "1"),
        ("ABSTRACTGATEWAY_LOCKOUT_MAX_S", "4"),
    ])
    .await;
    let c = &s.client;
    let bad = || {
        c.get(s.url("/api/gateway/bundles"))
            .bearer_auth("wrong-token")
            .send()
    };
    assert_eq!(bad().await.unwrap().status(), 401);
    assert_eq!(bad().await.unwrap().status(), 401);
    let r = bad().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"detail": "Too Many Requests (auth lockout)"}"#
    );
    assert_eq!(bad().await.unwrap().status(), 429);
    assert_eq!(
        c.get(s.url("/api/gateway/bundles"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "a valid token is never locked out"
    );
    assert_eq!(
        c.get(s.url("/api/health")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn concurrency_cap_for_streams() {
    let s = Server::start(&[("ABSTRACTGATEWAY_MAX_SSE", "2")]).await;
    let run = s.start_run("ask-user", json!({})).await;
    s.wait_status(&run, "waiting").await;
    let _a = binary::open_stream(&s, &run, "", None).await;
    let _b = binary::open_stream(&s, &run, "", None).await;
    let r = s
        .client
        .get(s.url(&format!("/api/gateway/runs/{run}/ledger/stream")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"detail": "Too Many Requests (concurrency limit)"}"#
    );
    assert_eq!(
        s.get("/api/gateway/bundles").await.0,
        200,
        "ordinary requests use another pool"
    );
}

//! `POST /api/gateway/attachments/upload` of the real binary: the seed's response shape, the file stored as an
//! artifact of the session's memory run and served back, the caps and the hostile inputs.

mod binary;

use binary::{Server, TOKEN};
use serde_json::{Value, json};

#[tokio::test]
async fn an_upload_is_an_artifact_of_the_session_memory_run() {
    let s = Server::start(&[("ABSTRACTGATEWAY_MAX_ATTACHMENT_BYTES", "1000")]).await;
    // Before any upload, the session's memory run reads as empty.
    let (st, v) = s
        .get("/api/gateway/runs/session_memory_s-1/artifacts")
        .await;
    assert_eq!((st, &v["items"]), (200, &json!([])), "{v}");

    let (st, v) = s
        .upload_attachment(
            &[("session_id", "s-1")],
            Some(("notes.txt", "text/plain", b"hello attachment")),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["run_id"], "session_memory_s-1");
    let a = &v["attachment"];
    let id = a["$artifact"].as_str().expect("artifact id").to_string();
    assert_eq!(
        (
            &a["target"],
            &a["filename"],
            &a["content_type"],
            &a["source_path"]
        ),
        (
            &json!("client"),
            &json!("notes.txt"),
            &json!("text/plain"),
            &json!("client:notes.txt")
        )
    );
    assert_eq!(
        a["sha256"],
        json!(abstractgateway::bundle::sha256_hex(b"hello attachment"))
    );
    assert_eq!(v["metadata"]["tags"]["kind"], "attachment");
    assert_eq!(v["metadata"]["tags"]["session_id"], "s-1");

    // The owner run exists (completed), lists the artifact and serves its bytes.
    let (st, run) = s.get("/api/gateway/runs/session_memory_s-1").await;
    assert_eq!(st, 200, "{run}");
    assert_eq!(
        (&run["status"], &run["workflow_id"]),
        (&json!("completed"), &json!("__session_memory__"))
    );
    let (_, list) = s
        .get("/api/gateway/runs/session_memory_s-1/artifacts")
        .await;
    assert_eq!(list["items"][0]["artifact_id"], json!(id), "{list}");
    let r = s
        .client
        .get(s.url(&format!(
            "/api/gateway/runs/session_memory_s-1/artifacts/{id}/content"
        )))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("content");
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(
        r.bytes().await.expect("bytes").as_ref(),
        b"hello attachment"
    );

    // The same bytes again: the same artifact; no content type: guessed from the name; a name override wins.
    let (st, again) = s
        .upload_attachment(
            &[("session_id", "s-1"), ("filename", "renamed.json")],
            Some(("x.bin", "", b"{}")),
        )
        .await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["attachment"]["filename"], "renamed.json");
    assert_eq!(again["attachment"]["content_type"], "application/json");

    // A session id that is not [A-Za-z0-9_-]+ never becomes part of a run id.
    let (st, v) = s
        .upload_attachment(
            &[("session_id", "../../etc/passwd")],
            Some(("a.txt", "text/plain", b"x")),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let rid = v["run_id"].as_str().expect("run id");
    assert!(
        rid.starts_with("session_memory_sha_") && rid.len() == "session_memory_sha_".len() + 32,
        "{rid}"
    );
    // A path in the file name is only a name.
    let (st, v) = s
        .upload_attachment(
            &[("session_id", "s-2")],
            Some(("../../secret", "text/plain", b"y")),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["attachment"]["source_path"], "client:../../secret");

    // Refusals: over the cap, missing fields, an empty session, a content type that cannot be a header.
    let big = vec![b'z'; 1001];
    let (st, v) = s
        .upload_attachment(
            &[("session_id", "s-1")],
            Some(("big.bin", "application/octet-stream", &big)),
        )
        .await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(
        v["detail"],
        "Attachment too large (1001 bytes > 1000 bytes)"
    );
    let (st, v) = s.upload_attachment(&[], None).await;
    assert_eq!(st, 422, "{v}");
    let locs: Vec<&Value> = v["detail"]
        .as_array()
        .expect("detail")
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert_eq!(
        locs,
        [&json!(["body", "session_id"]), &json!(["body", "file"])]
    );
    let (st, v) = s
        .upload_attachment(&[("session_id", "  ")], Some(("a.txt", "text/plain", b"x")))
        .await;
    assert_eq!((st, &v["detail"]), (400, &json!("session_id is required")));
    let (st, v) = s
        .upload_attachment(
            &[("session_id", "s-1"), ("content_type", "text/plain\u{7f}x")],
            Some(("a.txt", "", b"x")),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    // The API's token rules hold.
    let (ct, body) = binary::multipart(
        &[("session_id", "s-1")],
        Some(("a.txt", "text/plain", b"x")),
    );
    let r = s
        .client
        .post(s.url("/api/gateway/attachments/upload"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn ingest_reads_a_workspace_file_inside_the_operators_roots_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("docs/sub")).expect("mkdir");
    std::fs::write(ws.join("docs/a.txt"), b"workspace file").expect("write");
    std::fs::write(ws.join("big.bin"), vec![b'x'; 2000]).expect("write");
    std::fs::write(tmp.path().join("outside.txt"), b"secret").expect("write");
    std::os::unix::fs::symlink(tmp.path().join("outside.txt"), ws.join("link.txt"))
        .expect("symlink");
    std::fs::create_dir_all(tmp.path().join("flows")).expect("mkdir");
    let ws_env = ws.to_string_lossy().into_owned();
    let s = Server::start_in(
        tmp.path(),
        &[
            ("ABSTRACTGATEWAY_WORKSPACE_DIR", ws_env.as_str()),
            ("ABSTRACTGATEWAY_MAX_ATTACHMENT_BYTES", "1000"),
        ],
    )
    .await;
    let ingest = |body: Value| {
        let s = &s;
        async move { s.post("/api/gateway/attachments/ingest", body).await }
    };
    let (st, v) = ingest(json!({"session_id": "s-9", "path": "docs/a.txt"})).await;
    assert_eq!(st, 200, "{v}");
    let a = &v["attachment"];
    assert_eq!(
        (
            &a["target"],
            &a["filename"],
            &a["content_type"],
            &a["source_path"]
        ),
        (
            &json!("server"),
            &json!("a.txt"),
            &json!("text/plain"),
            &json!("docs/a.txt")
        )
    );
    assert_eq!(v["metadata"]["tags"]["source"], "workspace");
    let id = a["$artifact"].as_str().expect("id");
    let r = s
        .client
        .get(s.url(&format!(
            "/api/gateway/runs/session_memory_s-9/artifacts/{id}/content"
        )))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("content");
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), b"workspace file");
    // `@path` is the seed's workspace-relative spelling.
    let (st, _) = ingest(json!({"session_id": "s-9", "path": "@docs/a.txt"})).await;
    assert_eq!(st, 200);

    let outside = tmp
        .path()
        .join("outside.txt")
        .to_string_lossy()
        .into_owned();
    for (path, status, detail) in [
        ("../outside.txt", 403, "path is outside the workspace"),
        (outside.as_str(), 403, "path is outside the workspace"),
        ("link.txt", 403, "path is outside the workspace"),
        ("../nope.txt", 403, "path is outside the workspace"),
        ("docs/missing.txt", 404, "File not found"),
        ("docs/sub", 400, "Path is not a file"),
        (
            "big.bin",
            413,
            "Attachment too large (2000 bytes > 1000 bytes)",
        ),
    ] {
        let (st, v) = ingest(json!({"session_id": "s-9", "path": path})).await;
        assert_eq!((st, &v["detail"]), (status, &json!(detail)), "{path}");
    }
    let (st, v) = ingest(json!({"path": "docs/a.txt"})).await;
    assert_eq!(st, 422, "{v}");
    let (st, v) = ingest(json!({"session_id": " ", "path": "docs/a.txt"})).await;
    assert_eq!((st, &v["detail"]), (400, &json!("session_id is required")));
    // Without client scope, a client's workspace_root is ignored: the path stays inside the operator's base.
    let (st, v) =
        ingest(json!({"session_id": "s-9", "path": "outside.txt", "workspace_root": tmp.path()}))
            .await;
    assert_eq!(st, 404, "{v}");
}

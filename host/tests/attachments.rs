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

//! The run artifact endpoints (#20–#22) of the real binary, over artifacts written into its data dir.

mod binary;

use abstractgateway::artifacts::{ArtifactStore, NewArtifact};
use binary::{Server, TOKEN};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_meta_and_streamed_content() {
    let s = Server::start(&[]).await;
    let run_id = s.start_run("echo-upper", json!({"name": "Alice"})).await;
    let other_run = s.start_run("echo-upper", json!({"name": "Bob"})).await;

    // The artifact store is plain files: a second handle on the same data dir is what a plugin would write.
    let store = ArtifactStore::open(&s.dir.join("data")).unwrap();
    let mut extra = NewArtifact::default();
    extra.tags.insert("kind".into(), "audio".into());
    let small = store
        .put(&run_id, b"RIFF....WAVE", "audio/wav", extra)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    // Bigger than one 1 MiB chunk, with a recognisable pattern so a reordered or cut stream is caught.
    let big_content: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
    let big = store
        .put(
            &run_id,
            &big_content,
            "application/octet-stream",
            NewArtifact::default(),
        )
        .unwrap();
    let foreign = store
        .put(
            &other_run,
            b"not yours",
            "text/plain",
            NewArtifact::default(),
        )
        .unwrap();

    let base = format!("/api/gateway/runs/{run_id}/artifacts");
    let (st, v) = s.get(&base).await;
    assert_eq!(st, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["artifact_id"], big.artifact_id.as_str());
    assert_eq!(items[1]["artifact_id"], small.artifact_id.as_str());
    assert_eq!(
        items[1],
        json!({"artifact_id": small.artifact_id, "content_type": "audio/wav", "size_bytes": 12,
               "created_at": small.created_at, "tags": {"kind": "audio"}})
    );
    let (st, v) = s.get(&format!("{base}?limit=1")).await;
    assert_eq!((st, v["items"].as_array().unwrap().len()), (200, 1));
    assert_eq!(s.get(&format!("{base}?limit=0")).await.0, 422);
    assert_eq!(s.get(&format!("{base}?limit=2001")).await.0, 422);

    let (st, v) = s.get(&format!("{base}/{}", small.artifact_id)).await;
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"artifact_id": small.artifact_id, "blob_id": small.blob_id, "content_type": "audio/wav",
               "size_bytes": 12, "created_at": small.created_at, "run_id": run_id,
               "tags": {"kind": "audio"}, "metadata": {}})
    );

    let r = s
        .client
        .get(s.url(&format!("{base}/{}/content", small.artifact_id)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"RIFF....WAVE");

    let r = s
        .client
        .get(s.url(&format!("{base}/{}/content", big.artifact_id)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["content-length"], "3500000");
    assert!(r.bytes().await.unwrap().as_ref() == big_content.as_slice());

    // Errors: another run's artifact, a missing one, a malformed id, an unknown run.
    let (st, v) = s.get(&format!("{base}/{}", foreign.artifact_id)).await;
    assert_eq!(
        (st, v),
        (
            404,
            json!({"detail": format!("Artifact '{}' not found", foreign.artifact_id)})
        )
    );
    assert_eq!(
        s.get(&format!("{base}/{}/content", foreign.artifact_id))
            .await
            .0,
        404
    );
    assert_eq!(s.get(&format!("{base}/{}", "0".repeat(32))).await.0, 404);
    assert_eq!(
        s.get(&format!("{base}/not_hex_but_seed_valid")).await.0,
        404
    );
    assert_eq!(
        s.get(&format!("{base}/a.b/content")).await,
        (400, json!({"detail": "Invalid artifact id: a.b"}))
    );
    assert_eq!(
        s.get(&format!(
            "/api/gateway/runs/nope/artifacts/{}",
            small.artifact_id
        ))
        .await,
        (404, json!({"detail": "Run 'nope' not found"}))
    );

    // Reads need the token like every other read.
    let r = s
        .client
        .get(s.url(&format!("{base}/{}/content", small.artifact_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

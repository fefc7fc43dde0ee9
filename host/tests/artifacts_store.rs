//! The run artifact store on real files: ids, idempotency, listing, caps, validation and crash leftovers.

use std::collections::BTreeMap;
use std::io::Read;

use abstractgateway::artifacts::{ArtifactError, ArtifactStore, NewArtifact, artifact_id, blob_id};

fn tags(pairs: &[(&str, &str)]) -> NewArtifact {
    NewArtifact {
        tags: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

#[test]
fn put_get_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let m = store
        .put(
            "run-a",
            b"RIFF audio",
            "audio/wav",
            tags(&[("kind", "audio")]),
        )
        .unwrap();
    assert_eq!(m.artifact_id, artifact_id("run-a", b"RIFF audio"));
    assert_eq!(m.artifact_id.len(), 32);
    assert_eq!(m.blob_id, blob_id(b"RIFF audio"));
    assert_eq!(m.size_bytes, 10);
    assert_eq!(m.content_type, "audio/wav");
    assert_eq!(m.run_id, "run-a");
    assert_eq!(m.tags["kind"], "audio");
    assert_eq!(m.created_at.len(), "2026-11-28T12:07:35.617408+00:00".len());

    assert_eq!(store.get_meta("run-a", &m.artifact_id).unwrap(), m);
    let (m2, bytes) = store.read("run-a", &m.artifact_id).unwrap();
    assert_eq!((m2, bytes.as_slice()), (m.clone(), &b"RIFF audio"[..]));
    let (_, mut f) = store.open_content("run-a", &m.artifact_id).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "RIFF audio");

    // The files are where the layout says, and a fresh store (a restart) sees the same artifact.
    assert!(
        dir.path()
            .join("artifacts/blobs")
            .join(format!("{}.bin", m.blob_id))
            .is_file()
    );
    let reopened = ArtifactStore::open(dir.path()).unwrap();
    assert_eq!(reopened.get_meta("run-a", &m.artifact_id).unwrap(), m);
}

#[test]
fn idempotent_put_and_cross_run_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let a = store
        .put("r1", b"same", "text/plain", NewArtifact::default())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let again = store
        .put("r1", b"same", "text/plain", NewArtifact::default())
        .unwrap();
    assert_eq!(
        a, again,
        "a second put of the same content is the same artifact"
    );
    assert_eq!(store.list("r1", 10).unwrap().len(), 1);

    let other = store
        .put("r2", b"same", "text/plain", NewArtifact::default())
        .unwrap();
    assert_ne!(other.artifact_id, a.artifact_id, "ids are run-scoped");
    assert_eq!(other.blob_id, a.blob_id, "bytes are stored once");
    let blobs = std::fs::read_dir(dir.path().join("artifacts/blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 1);

    // An artifact of another run is not found through this run.
    assert!(matches!(
        store.get_meta("r2", &a.artifact_id),
        Err(ArtifactError::NotFound(_))
    ));
}

#[test]
fn list_is_newest_first_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = store
            .put(
                "run",
                format!("content {i}").as_bytes(),
                "text/plain",
                NewArtifact::default(),
            )
            .unwrap();
        ids.push(m.artifact_id);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    store
        .put("other", b"x", "text/plain", NewArtifact::default())
        .unwrap();
    let all: Vec<String> = store
        .list("run", 100)
        .unwrap()
        .into_iter()
        .map(|m| m.artifact_id)
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first);
    let two: Vec<String> = store
        .list("run", 2)
        .unwrap()
        .into_iter()
        .map(|m| m.artifact_id)
        .collect();
    assert_eq!(two, newest_first[..2].to_vec());
    assert!(store.list("never-seen", 10).unwrap().is_empty());
}

#[test]
fn size_cap_rejects_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_with(dir.path(), 1000).unwrap();
    assert!(
        store
            .put(
                "r",
                &[7u8; 1000],
                "application/octet-stream",
                NewArtifact::default()
            )
            .is_ok()
    );
    match store.put(
        "r",
        &[7u8; 1001],
        "application/octet-stream",
        NewArtifact::default(),
    ) {
        Err(ArtifactError::TooLarge {
            size: 1001,
            max: 1000,
        }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.list("r", 10).unwrap().len(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("artifacts/blobs"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn bad_ids_and_inputs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    for bad in [
        "../../etc/passwd",
        "",
        "ABCDEF0123456789ABCDEF0123456789",
        "abc",
        "a/b",
        &"0".repeat(33),
    ] {
        assert!(
            matches!(store.get_meta("r", bad), Err(ArtifactError::InvalidId(_))),
            "{bad:?} must be rejected"
        );
        assert!(matches!(
            store.open_content("r", bad),
            Err(ArtifactError::InvalidId(_))
        ));
    }
    let missing = "0".repeat(32);
    assert!(matches!(
        store.get_meta("r", &missing),
        Err(ArtifactError::NotFound(_))
    ));
    assert!(matches!(
        store.put("", b"x", "text/plain", NewArtifact::default()),
        Err(ArtifactError::InvalidInput(_))
    ));
    assert!(matches!(
        store.put("r", b"x", "text/plain\r\nX-Evil: 1", NewArtifact::default()),
        Err(ArtifactError::InvalidInput(_))
    ));
    let m = store.put("r", b"x", "", NewArtifact::default()).unwrap();
    assert_eq!(m.content_type, "application/octet-stream");
}

#[test]
fn crash_leftovers_are_ignored_and_a_lost_blob_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let m = store
        .put("r", b"complete", "text/plain", NewArtifact::default())
        .unwrap();
    let run_dir = std::fs::read_dir(dir.path().join("artifacts/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // What a writer killed mid-way leaves: half a blob and half a metadata file, both under temp names.
    let half_blob = dir
        .path()
        .join("artifacts/blobs")
        .join(format!("{}.bin.0123.tmp", blob_id(b"never finished")));
    std::fs::write(&half_blob, b"never fin").unwrap();
    let half_meta = run_dir.join(format!(
        "{}.meta.0123.tmp",
        artifact_id("r", b"never finished")
    ));
    std::fs::write(&half_meta, b"{\"artifact_id\": \"").unwrap();
    std::fs::write(run_dir.join("README"), b"not an artifact").unwrap();

    let listed: Vec<String> = store
        .list("r", 10)
        .unwrap()
        .into_iter()
        .map(|m| m.artifact_id)
        .collect();
    assert_eq!(listed, vec![m.artifact_id.clone()]);
    assert!(matches!(
        store.get_meta("r", &artifact_id("r", b"never finished")),
        Err(ArtifactError::NotFound(_))
    ));
    // The interrupted put can be redone and completes.
    let redone = store
        .put("r", b"never finished", "text/plain", NewArtifact::default())
        .unwrap();
    assert_eq!(
        store.read("r", &redone.artifact_id).unwrap().1,
        b"never finished"
    );

    // Metadata whose blob vanished is an error, never a short or empty body.
    std::fs::remove_file(
        dir.path()
            .join("artifacts/blobs")
            .join(format!("{}.bin", m.blob_id)),
    )
    .unwrap();
    assert!(matches!(
        store.open_content("r", &m.artifact_id),
        Err(ArtifactError::Corrupt(_))
    ));
    // And putting the same content again repairs it.
    store
        .put("r", b"complete", "text/plain", NewArtifact::default())
        .unwrap();
    assert_eq!(store.read("r", &m.artifact_id).unwrap().1, b"complete");
}

#[test]
fn concurrent_puts_of_the_same_content_agree() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(ArtifactStore::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || {
                s.put(
                    "r",
                    &[1u8; 100_000],
                    "application/octet-stream",
                    NewArtifact::default(),
                )
                .unwrap()
            })
        })
        .collect();
    let metas: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(metas.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        store.read("r", &metas[0].artifact_id).unwrap().1.len(),
        100_000
    );
}

#[test]
fn named_puts_keep_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let m = store
        .put_named("r", b"hello", "text/plain", Some("note.txt"))
        .unwrap();
    assert_eq!(m.filename(), Some("note.txt"));
    assert_eq!(m.tags["filename"], "note.txt");
    let anon = store.put_named("r", b"other", "text/plain", None).unwrap();
    assert_eq!(anon.filename(), None);
    assert_eq!(
        store.get_meta("r", &m.artifact_id).unwrap().filename(),
        Some("note.txt")
    );
}

//! Artifacts of a cluster: two nodes (replicas of one in-process log) and one shared bucket. What a runner stores
//! every node serves; bytes from the bucket are checked against their id; any node may store one, first write wins.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{ArtifactError, ArtifactStore, BlobBucket, blob_id};
use crate::store::Store;
use crate::store::replica::memlog::{MemLog, MemLogWriter, MemTailer};

/// The bucket: a map; `tamper` flips the first byte of what it returns, `down` refuses everything.
#[derive(Default)]
struct MapBucket {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    tamper: Mutex<bool>,
    down: Mutex<bool>,
}

impl BlobBucket for MapBucket {
    fn put(&self, blob_id: &str, content: &[u8]) -> Result<(), ArtifactError> {
        if *self.down.lock() {
            return Err(ArtifactError::Unavailable("bucket down".into()));
        }
        self.objects
            .lock()
            .insert(blob_id.to_string(), content.to_vec());
        Ok(())
    }

    fn get(&self, blob_id: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, ArtifactError> {
        if *self.down.lock() {
            return Err(ArtifactError::Unavailable("bucket down".into()));
        }
        let mut bytes = self.objects.lock().get(blob_id).cloned();
        if let Some(b) = bytes.as_mut().filter(|_| *self.tamper.lock()) {
            b[0] ^= 1;
        }
        assert!(bytes.as_ref().is_none_or(|b| b.len() as u64 <= max_bytes));
        Ok(bytes)
    }
}

struct Node {
    artifacts: ArtifactStore,
    store: Store,
    writer: Arc<MemLogWriter>,
    _tailer: MemTailer,
    _dir: tempfile::TempDir,
}

fn node(log: &Arc<MemLog>, bucket: &Arc<MapBucket>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let writer = log.writer();
    let store = Store::open_replica(&dir.path().join("store"), writer.clone()).unwrap();
    let tailer = log.tail(store.applier().unwrap());
    let artifacts = ArtifactStore::open(dir.path()).unwrap();
    artifacts.share(store.clone(), bucket.clone()).unwrap();
    Node {
        artifacts,
        store,
        writer,
        _tailer: tailer,
        _dir: dir,
    }
}

fn cluster() -> (Arc<MemLog>, Arc<MapBucket>, Node, Node) {
    let log = MemLog::new();
    let bucket = Arc::new(MapBucket::default());
    let a = node(&log, &bucket);
    let b = node(&log, &bucket);
    a.writer.take_over();
    (log, bucket, a, b)
}

#[test]
fn what_the_runner_stores_every_node_lists_and_serves() {
    let (log, _bucket, a, b) = cluster();
    let stored = a
        .artifacts
        .put_named("run-1", b"transcript", "text/plain", Some("t.txt"))
        .unwrap();
    b.store.wait_applied(log.len()).unwrap();
    assert_eq!(
        b.artifacts.get_meta("run-1", &stored.artifact_id).unwrap(),
        stored
    );
    let listed = b.artifacts.list("run-1", 10).unwrap();
    assert_eq!(listed, vec![stored.clone()]);
    let (meta, bytes) = b.artifacts.read("run-1", &stored.artifact_id).unwrap();
    assert_eq!(
        (meta, bytes.as_slice()),
        (stored.clone(), &b"transcript"[..])
    );
    // Another run's artifacts stay apart.
    assert!(b.artifacts.list("run-2", 10).unwrap().is_empty());
    assert!(matches!(
        b.artifacts.get_meta("run-2", &stored.artifact_id),
        Err(ArtifactError::NotFound(_))
    ));
    // Storing the same bytes again (a replay after a takeover, on the new owner) answers the first metadata.
    b.writer.take_over();
    let again = b
        .artifacts
        .put_named("run-1", b"transcript", "text/plain", Some("t.txt"))
        .unwrap();
    assert_eq!(again, stored);
}

#[test]
fn bytes_from_the_bucket_that_do_not_match_their_id_are_refused_and_not_cached() {
    let (log, bucket, a, b) = cluster();
    let stored = a
        .artifacts
        .put("run-1", b"audio bytes", "audio/wav", Default::default())
        .unwrap();
    b.store.wait_applied(log.len()).unwrap();
    *bucket.tamper.lock() = true;
    let err = b.artifacts.read("run-1", &stored.artifact_id).unwrap_err();
    assert!(matches!(err, ArtifactError::Corrupt(_)), "{err}");
    // Nothing was cached: once the bucket is sound again, the true bytes are served.
    *bucket.tamper.lock() = false;
    let (_, bytes) = b.artifacts.read("run-1", &stored.artifact_id).unwrap();
    assert_eq!(bytes, b"audio bytes");
    assert_eq!(blob_id(&bytes), stored.blob_id);
}

#[test]
fn any_node_stores_an_artifact_and_the_first_metadata_wins_but_not_without_the_bucket() {
    let (log, bucket, a, b) = cluster();
    // An API node (not the owner) stores an attachment; the owner, replaying the same bytes, gets its metadata.
    let first = b
        .artifacts
        .put_named("session_memory_s1", b"upload", "text/plain", Some("a.txt"))
        .unwrap();
    a.store.wait_applied(log.len()).unwrap();
    let again = a
        .artifacts
        .put_named(
            "session_memory_s1",
            b"upload",
            "text/plain",
            Some("other.txt"),
        )
        .unwrap();
    assert_eq!(again, first, "the first metadata wins");
    assert_eq!(
        a.artifacts.list("session_memory_s1", 10).unwrap(),
        vec![first]
    );
    *bucket.down.lock() = true;
    let err = b
        .artifacts
        .put("run-1", b"no bucket", "text/plain", Default::default())
        .unwrap_err();
    assert!(matches!(err, ArtifactError::Unavailable(_)), "{err}");
    a.store.wait_applied(log.len()).unwrap();
    for n in [&a, &b] {
        assert!(n.artifacts.list("run-1", 10).unwrap().is_empty());
    }
    // The store is shared once: a second call cannot swap where artifacts go.
    assert!(a.artifacts.share(a.store.clone(), bucket.clone()).is_err());
}

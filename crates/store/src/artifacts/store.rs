//! The file-backed, run-scoped artifact store.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fsio::{TMP_SUFFIX, sweep_tmp, write_atomic};
use super::ids::{artifact_id, blob_id, is_artifact_id, is_blob_id, run_key};

/// Default cap on one artifact's size (64 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Longest accepted run id (run ids are uuids or `session_memory_<sid>`; this only bounds hashing work).
const MAX_RUN_ID_LEN: usize = 512;
/// Longest accepted content type.
const MAX_CONTENT_TYPE_LEN: usize = 255;
/// Temp files younger than this may belong to a writer still running.
const STALE_TMP_AGE: Duration = Duration::from_secs(3600);

/// Why an artifact operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The id is not an artifact id (32 lowercase hex digits).
    #[error("Invalid artifact id: {0}")]
    InvalidId(String),
    /// No such artifact in this run.
    #[error("Artifact '{0}' not found")]
    NotFound(String),
    /// The content exceeds the store's cap.
    #[error("Artifact too large ({size} bytes > {max} bytes)")]
    TooLarge {
        /// Size of the rejected content.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// A bad run id or content type.
    #[error("{0}")]
    InvalidInput(String),
    /// Stored data does not match its metadata.
    #[error("Artifact store is corrupt: {0}")]
    Corrupt(String),
    /// The filesystem failed.
    #[error("Artifact store I/O error: {0}")]
    Io(#[from] io::Error),
    /// The cluster could not store or serve the artifact now (no quorum, not the runs' owner, a bucket error).
    #[error("Artifact store unavailable: {0}")]
    Unavailable(String),
}

/// The shared bucket of a cluster's artifact bytes, content-addressed by blob id (sha256 of the content).
///
/// Implemented over the cluster's object store; the artifact store checks what it returns (size, digest).
pub trait BlobBucket: Send + Sync {
    /// Stores `content` under `blob_id`; returns once the bucket's replicas hold it. Storing an id it has is a no-op.
    fn put(&self, blob_id: &str, content: &[u8]) -> Result<(), ArtifactError>;
    /// The bytes of `blob_id`, `None` when absent; refused when over `max_bytes`.
    fn get(&self, blob_id: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, ArtifactError>;
}

/// Where a cluster node keeps artifacts so that every node serves them: metadata in the replicated store (every
/// replica has it, in log order), bytes in the shared bucket. The node's data dir caches the bytes.
struct Shared {
    store: crate::Store,
    blobs: std::sync::Arc<dyn BlobBucket>,
}

/// Store meta-key prefix of artifact metadata in a cluster: `artifact/<run key>/<artifact id>`.
const META_PREFIX: &str = "artifact/";

/// Metadata of one artifact, as the seed's `ArtifactMetadata.to_dict()` lays it out (minus the runtime-0.13
/// `descriptor`/`access` additions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Artifact))]
pub struct ArtifactMeta {
    /// `sha256(run_id + "\0" + content)[:32]`.
    pub artifact_id: String,
    /// `sha256(content)`: the shared blob.
    pub blob_id: String,
    /// MIME type served with the content.
    pub content_type: String,
    /// Content length.
    pub size_bytes: u64,
    /// When the artifact was first stored (seed timestamp format).
    pub created_at: String,
    /// The owning run.
    pub run_id: String,
    /// Free string labels (`kind`, `source`, ...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Free JSON metadata.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
}

/// Tag holding an artifact's file name (the seed's attachment convention).
pub const FILENAME_TAG: &str = "filename";

impl ArtifactMeta {
    /// The file name given when the artifact was stored (WIT `artifact-info.name`).
    pub fn filename(&self) -> Option<&str> {
        self.tags.get(FILENAME_TAG).map(String::as_str)
    }

    /// The list-item shape of `GET /runs/{id}/artifacts`.
    pub fn list_item(&self) -> Value {
        serde_json::json!({
            "artifact_id": self.artifact_id,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "tags": self.tags,
        })
    }
}

/// Optional parts of a new artifact.
#[derive(Debug, Clone, Default)]
pub struct NewArtifact {
    /// Labels stored with the artifact.
    pub tags: BTreeMap<String, String>,
    /// Free JSON metadata.
    pub metadata: Map<String, Value>,
}

/// The artifact store of one data dir (and, in a cluster, of every node). Safe to share between threads.
pub struct ArtifactStore {
    root: PathBuf,
    max_bytes: u64,
    /// Serialises puts so two writers of the same artifact agree on its `created_at`.
    put_lock: Mutex<()>,
    /// Set once when the node joins a cluster, before it serves or runs anything.
    shared: std::sync::OnceLock<Shared>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("root", &self.root)
            .field("max_bytes", &self.max_bytes)
            .field("shared", &self.shared.get().is_some())
            .finish()
    }
}

fn unavailable(e: crate::StoreError) -> ArtifactError {
    ArtifactError::Unavailable(e.to_string())
}

impl ArtifactStore {
    /// Opens (creating) `<data_dir>/artifacts` with the default size cap.
    pub fn open(data_dir: &Path) -> Result<Self, ArtifactError> {
        Self::open_with(data_dir, DEFAULT_MAX_BYTES)
    }

    /// Opens (creating) `<data_dir>/artifacts` with a size cap of `max_bytes` per artifact.
    pub fn open_with(data_dir: &Path, max_bytes: u64) -> Result<Self, ArtifactError> {
        let root = data_dir.join("artifacts");
        fs::create_dir_all(root.join("blobs"))?;
        fs::create_dir_all(root.join("runs"))?;
        // Blob temp files are the large ones a crash can leave; small meta temps are only ignored.
        sweep_tmp(&root.join("blobs"), STALE_TMP_AGE);
        Ok(ArtifactStore {
            root,
            max_bytes,
            put_lock: Mutex::new(()),
            shared: std::sync::OnceLock::new(),
        })
    }

    /// Makes this store a cluster node's: metadata goes to (and is read from) `store`, the replicated store, and
    /// bytes to `blobs`. Call once, before the node serves or runs anything; a second call is refused.
    pub fn share(
        &self,
        store: crate::Store,
        blobs: std::sync::Arc<dyn BlobBucket>,
    ) -> Result<(), ArtifactError> {
        self.shared
            .set(Shared { store, blobs })
            .map_err(|_| ArtifactError::InvalidInput("the artifact store is already shared".into()))
    }

    /// The per-artifact size cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn blob_path(&self, blob_id: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{blob_id}.bin"))
    }

    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_key(run_id))
    }

    fn meta_path(&self, run_id: &str, id: &str) -> PathBuf {
        self.run_dir(run_id).join(format!("{id}.meta"))
    }

    fn meta_key(run_id: &str, id: &str) -> String {
        format!("{META_PREFIX}{}/{id}", run_key(run_id))
    }

    /// Stores `content` for `run_id`; storing the same content again returns the first metadata unchanged.
    pub fn put(
        &self,
        run_id: &str,
        content: &[u8],
        content_type: &str,
        extra: NewArtifact,
    ) -> Result<ArtifactMeta, ArtifactError> {
        check_run_id(run_id)?;
        let content_type = check_content_type(content_type)?;
        let size = content.len() as u64;
        if size > self.max_bytes {
            return Err(ArtifactError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        let id = artifact_id(run_id, content);
        let blob = blob_id(content);
        let _guard = self.put_lock.lock();
        if let Some(existing) = self.read_meta(run_id, &id)?
            && self.blob_ok(&existing)
        {
            return Ok(existing);
        }
        // The blob goes first and durably: metadata must never point at bytes that are not stored.
        if let Some(shared) = self.shared.get() {
            shared.blobs.put(&blob, content)?;
        }
        let blob_path = self.blob_path(&blob);
        let blob_present = fs::metadata(&blob_path).is_ok_and(|m| m.len() == size);
        if !blob_present {
            write_atomic(&blob_path, content)?;
        }
        let meta = ArtifactMeta {
            artifact_id: id.clone(),
            blob_id: blob,
            content_type,
            size_bytes: size,
            created_at: crate::time::now_iso(),
            run_id: run_id.to_string(),
            tags: extra.tags,
            metadata: extra.metadata,
        };
        let body = serde_json::to_vec_pretty(&meta)
            .map_err(|e| ArtifactError::Corrupt(format!("cannot encode metadata: {e}")))?;
        if let Some(shared) = self.shared.get() {
            // Content-addressed and never changed: any node may store it (an API node's attachment as well as
            // the runner's), and the first metadata written wins (a replay reads it back, above).
            let key = Self::meta_key(run_id, &id);
            let mut batch = crate::Batch::new();
            batch.put_meta(&key, &body);
            batch.only_if_absent(&key);
            shared.store.commit(batch).map_err(unavailable)?;
            return Ok(self.read_meta(run_id, &id)?.unwrap_or(meta));
        }
        let dir = self.run_dir(run_id);
        fs::create_dir_all(&dir)?;
        write_atomic(&self.meta_path(run_id, &id), &body)?;
        Ok(meta)
    }

    /// WIT `artifacts.put`: stores `content` with an optional file name (kept in the `filename` tag).
    pub fn put_named(
        &self,
        run_id: &str,
        content: &[u8],
        content_type: &str,
        name: Option<&str>,
    ) -> Result<ArtifactMeta, ArtifactError> {
        let mut extra = NewArtifact::default();
        if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
            extra.tags.insert(FILENAME_TAG.to_string(), n.to_string());
        }
        self.put(run_id, content, content_type, extra)
    }

    fn blob_ok(&self, meta: &ArtifactMeta) -> bool {
        // In a cluster the metadata is written only after the bucket holds the bytes.
        self.shared.get().is_some()
            || fs::metadata(self.blob_path(&meta.blob_id)).is_ok_and(|m| m.len() == meta.size_bytes)
    }

    /// Reads the metadata of `id` in `run_id`, if any (`id` must already be validated).
    fn read_meta(&self, run_id: &str, id: &str) -> Result<Option<ArtifactMeta>, ArtifactError> {
        let found = match self.shared.get() {
            Some(shared) => shared
                .store
                .get_meta(&Self::meta_key(run_id, id))
                .map_err(unavailable)?,
            None => match fs::read(self.meta_path(run_id, id)) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            },
        };
        let Some(bytes) = found else {
            return Ok(None);
        };
        let meta: ArtifactMeta = serde_json::from_slice(&bytes)
            .map_err(|e| ArtifactError::Corrupt(format!("metadata of {id}: {e}")))?;
        if meta.artifact_id != id || meta.run_id != run_id || !is_blob_id(&meta.blob_id) {
            return Err(ArtifactError::Corrupt(format!(
                "metadata of {id} does not describe it"
            )));
        }
        Ok(Some(meta))
    }

    /// The metadata of artifact `id` of `run_id` (an artifact of another run is not found).
    pub fn get_meta(&self, run_id: &str, id: &str) -> Result<ArtifactMeta, ArtifactError> {
        check_id(id)?;
        self.read_meta(run_id, id)?
            .ok_or_else(|| ArtifactError::NotFound(id.to_string()))
    }

    /// The metadata and an open handle on the content of artifact `id` of `run_id`.
    pub fn open_content(
        &self,
        run_id: &str,
        id: &str,
    ) -> Result<(ArtifactMeta, File), ArtifactError> {
        let meta = self.get_meta(run_id, id)?;
        self.fetch_blob(&meta)?;
        let f = match File::open(self.blob_path(&meta.blob_id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ArtifactError::Corrupt(format!(
                    "blob of artifact {id} is missing"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let len = f.metadata()?.len();
        if len != meta.size_bytes {
            return Err(ArtifactError::Corrupt(format!(
                "blob of artifact {id} has {len} bytes, metadata says {}",
                meta.size_bytes
            )));
        }
        Ok((meta, f))
    }

    /// The metadata and the whole content of artifact `id` of `run_id`.
    pub fn read(&self, run_id: &str, id: &str) -> Result<(ArtifactMeta, Vec<u8>), ArtifactError> {
        let (meta, mut f) = self.open_content(run_id, id)?;
        let mut buf = Vec::with_capacity(usize::try_from(meta.size_bytes).unwrap_or(0));
        f.read_to_end(&mut buf)?;
        Ok((meta, buf))
    }

    /// In a cluster, copies a blob this node lacks from the bucket into its cache, checked against its id.
    fn fetch_blob(&self, meta: &ArtifactMeta) -> Result<(), ArtifactError> {
        let Some(shared) = self.shared.get() else {
            return Ok(());
        };
        let path = self.blob_path(&meta.blob_id);
        if fs::metadata(&path).is_ok_and(|m| m.len() == meta.size_bytes) {
            return Ok(());
        }
        let Some(bytes) = shared.blobs.get(&meta.blob_id, meta.size_bytes)? else {
            return Err(ArtifactError::Corrupt(format!(
                "blob of artifact {} is missing from the cluster",
                meta.artifact_id
            )));
        };
        // Content-addressed: bytes that do not hash to their name never reach the cache.
        if bytes.len() as u64 != meta.size_bytes || blob_id(&bytes) != meta.blob_id {
            return Err(ArtifactError::Corrupt(format!(
                "the cluster's blob of artifact {} does not match its id",
                meta.artifact_id
            )));
        }
        write_atomic(&path, &bytes)?;
        Ok(())
    }

    /// Up to `limit` artifacts of `run_id`, newest first (ties by id, descending).
    pub fn list(&self, run_id: &str, limit: usize) -> Result<Vec<ArtifactMeta>, ArtifactError> {
        if let Some(shared) = self.shared.get() {
            let prefix = format!("{META_PREFIX}{}/", run_key(run_id));
            let keys = shared
                .store
                .meta_keys(&prefix, MAX_LISTED)
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for id in keys.iter().filter_map(|k| k.strip_prefix(&prefix)) {
                if is_artifact_id(id)
                    && let Some(m) = self.read_meta(run_id, id)?
                {
                    out.push(m);
                }
            }
            return Ok(newest_first(out, limit));
        }
        let rd = match fs::read_dir(self.run_dir(run_id)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            // Temp files of interrupted writes and anything else foreign are skipped by name.
            let Some(id) = name
                .to_str()
                .filter(|n| !n.ends_with(TMP_SUFFIX))
                .and_then(|n| n.strip_suffix(".meta"))
                .filter(|id| is_artifact_id(id))
            else {
                continue;
            };
            if let Some(m) = self.read_meta(run_id, id)? {
                out.push(m);
            }
        }
        Ok(newest_first(out, limit))
    }
}

/// Most artifacts of one run a listing reads (a listing answers at most a few thousand).
const MAX_LISTED: usize = 100_000;

fn newest_first(mut out: Vec<ArtifactMeta>, limit: usize) -> Vec<ArtifactMeta> {
    out.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.artifact_id.cmp(&a.artifact_id))
    });
    out.truncate(limit);
    out
}

fn check_id(id: &str) -> Result<(), ArtifactError> {
    if is_artifact_id(id) {
        Ok(())
    } else {
        Err(ArtifactError::InvalidId(id.to_string()))
    }
}

fn check_run_id(run_id: &str) -> Result<(), ArtifactError> {
    if run_id.trim().is_empty() || run_id.len() > MAX_RUN_ID_LEN {
        return Err(ArtifactError::InvalidInput(format!(
            "run id must be 1..{MAX_RUN_ID_LEN} characters"
        )));
    }
    Ok(())
}

fn check_content_type(ct: &str) -> Result<String, ArtifactError> {
    let ct = ct.trim();
    if ct.is_empty() {
        return Ok("application/octet-stream".to_string());
    }
    // It becomes a response header: printable ASCII only.
    let printable = ct.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ct.len() > MAX_CONTENT_TYPE_LEN || !printable || !ct.contains('/') {
        return Err(ArtifactError::InvalidInput(format!(
            "invalid content type: {ct:?}"
        )));
    }
    Ok(ct.to_string())
}

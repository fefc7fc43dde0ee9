//! [`Bucket`]: an object-store bucket of the cluster. Two exist:
//!
//! - `<PREFIX>_BUNDLES`, the bundles every node serves. An upload through any API node is put here; every node
//!   watches the bucket and installs what changes into its own flows dir. Objects are named by the file they
//!   become (`<bundle>@<version>.flow`).
//! - `<PREFIX>_ARTIFACTS`, the bytes of run artifacts, named by their sha256 (content-addressed, shared by runs).
//!
//! The bytes are opaque here: the host checks names, sizes and digests.

use async_nats::jetstream::object_store::{self, ObjectStore};
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::{Cluster, NatsError};

/// An object-store bucket of a cluster.
#[derive(Clone)]
pub struct Bucket {
    store: ObjectStore,
}

/// One change seen by [`Bucket::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketChange {
    /// The object was put (new or replaced); its SHA-256 digest as the server reports it.
    Put {
        name: String,
        digest: Option<String>,
    },
    /// The object was deleted.
    Deleted { name: String },
}

fn request(context: &str, e: impl std::fmt::Display) -> NatsError {
    NatsError::Request {
        context: context.to_string(),
        message: e.to_string(),
    }
}

impl Cluster {
    /// The bundle bucket.
    pub fn bundles(&self) -> Bucket {
        self.bundles.clone()
    }

    /// The artifact bytes bucket.
    pub fn artifact_blobs(&self) -> Bucket {
        self.artifact_blobs.clone()
    }
}

/// A put is retried for as long as a log append is (a leader change after a server loss, or a stream not yet
/// reachable right after the cluster formed, passes within it).
const PUT_DEADLINE: std::time::Duration = crate::publish::APPEND_DEADLINE;

impl Bucket {
    /// Opens `<PREFIX>_<suffix>`, creating it with the cluster's replicas when absent.
    pub(crate) async fn open(
        js: &async_nats::jetstream::Context,
        cfg: &crate::ClusterConfig,
        suffix: &str,
        description: &str,
    ) -> Result<Bucket, NatsError> {
        let bucket = format!("{}_{suffix}", cfg.prefix);
        let store = match js.get_object_store(&bucket).await {
            Ok(s) => s,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some(description.into()),
                    num_replicas: cfg.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| request(&format!("creating object store {bucket}"), e))?,
        };
        Ok(Bucket { store })
    }

    /// Puts (or replaces) an object; returns once the replicas hold it.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> Result<(), NatsError> {
        let deadline = tokio::time::Instant::now() + PUT_DEADLINE;
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            let mut reader = bytes;
            match self.store.put(name, &mut reader).await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                    tracing::warn!(error = %e, object = name, "putting an object failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                }
                Err(e) => return Err(request(&format!("putting object {name}"), e)),
            }
        }
    }

    /// Puts an object unless one of that name and size is there (content-addressed names: same name, same bytes).
    pub async fn put_absent(&self, name: &str, bytes: &[u8]) -> Result<(), NatsError> {
        match self.store.info(name).await {
            Ok(info) if !info.deleted && info.size == bytes.len() => Ok(()),
            _ => self.put(name, bytes).await,
        }
    }

    /// Deletes an object (nothing when it is absent).
    pub async fn delete(&self, name: &str) -> Result<(), NatsError> {
        match self.store.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(request(&format!("deleting object {name}"), e)),
        }
    }

    /// Every object in the bucket: name and digest.
    pub async fn list(&self) -> Result<Vec<(String, Option<String>)>, NatsError> {
        let mut list = self
            .store
            .list()
            .await
            .map_err(|e| request("listing objects", e))?;
        let mut out = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| request("listing objects", e))?;
            if !info.deleted {
                out.push((info.name, info.digest));
            }
        }
        Ok(out)
    }

    /// An object's bytes; `None` when it is absent. Refused when larger than `max_bytes` (read no further).
    pub async fn get(&self, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, NatsError> {
        let mut object = match self.store.get(name).await {
            Ok(o) => o,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(request(&format!("getting object {name}"), e)),
        };
        if object.info().size as u64 > max_bytes {
            return Err(request(
                &format!("getting object {name}"),
                format!(
                    "{} bytes, over the limit of {max_bytes}",
                    object.info().size
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(object.info().size);
        (&mut object)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| request(&format!("reading object {name}"), e))?;
        if bytes.len() as u64 > max_bytes {
            return Err(request(
                &format!("reading object {name}"),
                "over the size limit",
            ));
        }
        Ok(Some(bytes))
    }

    /// Changes from now on, in order; the stream ends if the watch breaks (the caller lists and watches again).
    pub async fn watch(
        &self,
    ) -> Result<impl futures::Stream<Item = BucketChange> + Send + use<>, NatsError> {
        let watch = self
            .store
            .watch()
            .await
            .map_err(|e| request("watching objects", e))?;
        Ok(watch
            .take_while(|info| std::future::ready(info.is_ok()))
            .filter_map(|info| {
                std::future::ready(info.ok().map(|info| {
                    if info.deleted {
                        BucketChange::Deleted { name: info.name }
                    } else {
                        BucketChange::Put {
                            name: info.name,
                            digest: info.digest,
                        }
                    }
                }))
            }))
    }
}

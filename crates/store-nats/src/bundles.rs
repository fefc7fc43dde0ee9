//! [`BundleBucket`]: the bundles every node serves, in the object-store bucket `<PREFIX>_BUNDLES`.
//!
//! An upload through any API node is put here; every node watches the bucket and installs what changes into its
//! own flows dir. Objects are named by the file they become (`<bundle>@<version>.flow`); the bytes are opaque
//! here (the host checks names and sizes, and loads bundles as from any flows dir).

use async_nats::jetstream::object_store::{self, ObjectStore};
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::{Cluster, NatsError};

/// The bundle bucket of a cluster.
#[derive(Clone)]
pub struct BundleBucket {
    store: ObjectStore,
}

/// One change seen by [`BundleBucket::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleChange {
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
    /// The bundle bucket, created on first use with the cluster's replicas.
    pub async fn bundles(&self) -> Result<BundleBucket, NatsError> {
        let bucket = format!("{}_BUNDLES", self.cfg.prefix);
        let store = match self.js.get_object_store(&bucket).await {
            Ok(s) => s,
            Err(_) => self
                .js
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("abstractgateway bundles".into()),
                    num_replicas: self.cfg.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| request(&format!("creating object store {bucket}"), e))?,
        };
        Ok(BundleBucket { store })
    }
}

impl BundleBucket {
    /// Puts (or replaces) a bundle; returns once the replicas hold it.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> Result<(), NatsError> {
        let mut reader = bytes;
        self.store
            .put(name, &mut reader)
            .await
            .map(drop)
            .map_err(|e| request(&format!("putting bundle {name}"), e))
    }

    /// Deletes a bundle (nothing when it is absent).
    pub async fn delete(&self, name: &str) -> Result<(), NatsError> {
        match self.store.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(request(&format!("deleting bundle {name}"), e)),
        }
    }

    /// Every bundle in the bucket: name and digest.
    pub async fn list(&self) -> Result<Vec<(String, Option<String>)>, NatsError> {
        let mut list = self
            .store
            .list()
            .await
            .map_err(|e| request("listing bundles", e))?;
        let mut out = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| request("listing bundles", e))?;
            if !info.deleted {
                out.push((info.name, info.digest));
            }
        }
        Ok(out)
    }

    /// A bundle's bytes; `None` when it is absent. Refused when larger than `max_bytes` (read no further).
    pub async fn get(&self, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, NatsError> {
        let mut object = match self.store.get(name).await {
            Ok(o) => o,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(request(&format!("getting bundle {name}"), e)),
        };
        if object.info().size as u64 > max_bytes {
            return Err(request(
                &format!("getting bundle {name}"),
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
            .map_err(|e| request(&format!("reading bundle {name}"), e))?;
        if bytes.len() as u64 > max_bytes {
            return Err(request(
                &format!("reading bundle {name}"),
                "over the size limit",
            ));
        }
        Ok(Some(bytes))
    }

    /// Changes from now on, in order; the stream ends if the watch breaks (the caller lists and watches again).
    pub async fn watch(
        &self,
    ) -> Result<impl futures::Stream<Item = BundleChange> + Send + use<>, NatsError> {
        let watch = self
            .store
            .watch()
            .await
            .map_err(|e| request("watching bundles", e))?;
        Ok(watch
            .take_while(|info| std::future::ready(info.is_ok()))
            .filter_map(|info| {
                std::future::ready(info.ok().map(|info| {
                    if info.deleted {
                        BundleChange::Deleted { name: info.name }
                    } else {
                        BundleChange::Put {
                            name: info.name,
                            digest: info.digest,
                        }
                    }
                }))
            }))
    }
}

//! `artifacts`: files a run produces or reads, stored by the host and downloadable over HTTP.

use serde_json::json;

use super::super::bindings::artifacts::{ArtifactInfo, Host};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::llm::Answer;
use super::{ErrorCode, error};

/// The run-scoped artifact store.
pub trait ArtifactBackend: Send + Sync {
    /// Stores `data` for `run_id`.
    fn put(
        &self,
        run_id: &str,
        content_type: &str,
        data: Vec<u8>,
        name: Option<String>,
    ) -> Answer<ArtifactInfo>;
    /// Reads an artifact of `run_id`.
    fn get(&self, run_id: &str, id: &str) -> Answer<Vec<u8>>;
    /// Describes an artifact of `run_id`.
    fn info(&self, run_id: &str, id: &str) -> Answer<ArtifactInfo>;
}

fn missing() -> Error {
    error(ErrorCode::Unavailable, "this gateway has no artifact store")
}

impl Host for NodeCtx {
    async fn put(
        &mut self,
        content_type: String,
        data: Vec<u8>,
        name: Option<String>,
    ) -> wasmtime::Result<Result<ArtifactInfo, Error>> {
        let refusal = if !self.grants.artifacts {
            Some(super::denied("artifacts (artifacts.put)"))
        } else if data.len() as u64 > self.grants.max_artifact_bytes {
            Some(error(
                ErrorCode::TooLarge,
                format!(
                    "artifacts are at most {} bytes for this plugin (got {})",
                    self.grants.max_artifact_bytes,
                    data.len()
                ),
            ))
        } else {
            None
        };
        // Hashing a refused payload would be work an attacker chooses; its size is enough.
        let digest = refusal
            .is_none()
            .then(|| crate::plugins::cache::sha256_hex(&data));
        let req = json!({"content_type": content_type, "name": name, "size": data.len(),
            "sha256": digest});
        let (backend, run) = (self.caps.artifacts.clone(), self.rec.run_id().to_string());
        self.rec
            .call(HostFn::remote("artifacts", "put"), req, async move {
                if let Some(e) = refusal {
                    return Err(e);
                }
                match backend {
                    Some(b) => b.put(&run, &content_type, data, name).await,
                    None => Err(missing()),
                }
            })
            .await
    }

    async fn get(&mut self, id: String) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        // The bytes are not copied into the ledger: artifacts are immutable, so a replay reads them again.
        let (backend, run) = (self.caps.artifacts.clone(), self.rec.run_id().to_string());
        let meta: Result<ArtifactInfo, Error> = self
            .rec
            .call(HostFn::local("artifacts", "get"), json!({"id": id}), {
                let (backend, run, id) = (backend.clone(), run.clone(), id.clone());
                async move {
                    match backend {
                        Some(b) => b.info(&run, &id).await,
                        None => Err(missing()),
                    }
                }
            })
            .await?;
        if let Err(e) = meta {
            return Ok(Err(e));
        }
        Ok(match backend {
            Some(b) => b.get(&run, &id).await,
            None => Err(missing()),
        })
    }

    async fn info(&mut self, id: String) -> wasmtime::Result<Result<ArtifactInfo, Error>> {
        let (backend, run) = (self.caps.artifacts.clone(), self.rec.run_id().to_string());
        self.rec
            .call(
                HostFn::local("artifacts", "info"),
                json!({"id": id}),
                async move {
                    match backend {
                        Some(b) => b.info(&run, &id).await,
                        None => Err(missing()),
                    }
                },
            )
            .await
    }
}

/// The host's artifact store answers plugin `artifacts` calls (blocking file IO off the async workers).
pub struct StoreBackend(pub std::sync::Arc<crate::artifacts::ArtifactStore>);

fn info_of(m: &crate::artifacts::ArtifactMeta) -> ArtifactInfo {
    ArtifactInfo {
        id: m.artifact_id.clone(),
        content_type: m.content_type.clone(),
        size: m.size_bytes,
        name: m.filename().map(String::from),
    }
}

fn artifact_error(e: crate::artifacts::ArtifactError) -> Error {
    use crate::artifacts::ArtifactError as A;
    let code = match &e {
        A::InvalidId(_) | A::InvalidInput(_) => ErrorCode::InvalidInput,
        A::NotFound(_) => ErrorCode::NotFound,
        A::TooLarge { .. } => ErrorCode::TooLarge,
        A::Unavailable(_) => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    error(code, e.to_string())
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::artifacts::ArtifactError> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| error(ErrorCode::Internal, format!("artifact task failed: {e}")))?
        .map_err(artifact_error)
}

impl ArtifactBackend for StoreBackend {
    fn put(
        &self,
        run_id: &str,
        content_type: &str,
        data: Vec<u8>,
        name: Option<String>,
    ) -> Answer<ArtifactInfo> {
        let (s, run, ct) = (self.0.clone(), run_id.to_string(), content_type.to_string());
        Box::pin(async move {
            blocking(move || s.put_named(&run, &data, &ct, name.as_deref()))
                .await
                .map(|m| info_of(&m))
        })
    }
    fn get(&self, run_id: &str, id: &str) -> Answer<Vec<u8>> {
        let (s, run, id) = (self.0.clone(), run_id.to_string(), id.to_string());
        Box::pin(async move { blocking(move || s.read(&run, &id)).await.map(|(_, b)| b) })
    }
    fn info(&self, run_id: &str, id: &str) -> Answer<ArtifactInfo> {
        let (s, run, id) = (self.0.clone(), run_id.to_string(), id.to_string());
        Box::pin(async move {
            blocking(move || s.get_meta(&run, &id))
                .await
                .map(|m| info_of(&m))
        })
    }
}

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
        let req = json!({"content_type": content_type, "name": name, "size": data.len(),
            "sha256": crate::plugins::cache::sha256_hex(&data)});
        let (backend, run) = (self.caps.artifacts.clone(), self.rec.run_id().to_string());
        self.rec
            .call(HostFn::remote("artifacts", "put"), req, async move {
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

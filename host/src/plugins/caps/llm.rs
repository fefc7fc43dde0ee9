//! `llm`: chat completions through the host's providers, to granted models only; keys stay in the host.

use std::future::Future;
use std::pin::Pin;

use super::super::bindings::llm::{Host, Request, Response};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::{ErrorCode, denied, error};

/// A boxed future answering one call.
pub type Answer<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// Where chat requests go: the provider layer of the host.
pub trait LlmBackend: Send + Sync {
    /// The provider and model a request routes to (its own, else the host default).
    fn route(&self, req: &Request) -> Result<(String, String), Error>;
    /// One completion.
    fn complete(&self, req: Request) -> Answer<Response>;
}

impl Host for NodeCtx {
    async fn complete(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let request = serde_json::to_value(&req)?;
        let backend = self.caps.llm.clone();
        let grants = self.grants.clone();
        self.rec
            .call(HostFn::remote("llm", "complete"), request, async move {
                let Some(backend) = backend else {
                    return Err(error(
                        ErrorCode::Unavailable,
                        "no LLM provider is configured on this gateway",
                    ));
                };
                let (provider, model) = backend.route(&req)?;
                if !grants.allows_model(&provider, &model) {
                    return Err(denied(format!("model {provider}/{model}")));
                }
                backend.complete(req).await
            })
            .await
    }
}

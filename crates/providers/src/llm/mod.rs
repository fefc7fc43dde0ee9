//! The host side of the WIT `llm` interface: one [`ChatRequest`] becomes one real call to a model
//! server (OpenAI-compatible or Anthropic), or to a backend registered in process.
//!
//! Routing: the request's `provider`/`model` win, each on its own; the missing half comes from the
//! configured default pair (§6.4). With no provider anywhere and a backend registered as `embedded`,
//! that backend answers. Credentials stay in [`LlmConfig`] and the request headers; nothing that
//! this module returns or serializes carries them.

mod anthropic;
mod cancel;
mod config;
#[cfg(feature = "local-model")]
pub mod embedded;
mod openai;
mod options;
mod structured;
mod transport;
mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::RwLock;

pub use anthropic::AnthropicClient;
pub use cancel::{CancelHandle, CancelToken};
pub use config::{
    DEFAULT_TIMEOUT, Endpoint, LlmConfig, RetryPolicy, Secret, Wire, normalize_provider,
};
pub use openai::OpenAiClient;
pub use types::{ChatMessage, ChatRequest, ChatResponse, ErrorCode, LlmError, ToolCall, Usage};

use transport::Transport;

/// The provider id an in-process model registers under.
pub const EMBEDDED: &str = "embedded";

/// Something that answers chat requests: the HTTP clients, or an in-process model.
pub trait ChatBackend: Send + Sync {
    /// Answers one request. `req.provider` and `req.model` hold the resolved route (the model may be
    /// absent for an in-process backend, meaning its own default). Must stop promptly with
    /// [`ErrorCode::Cancelled`] once `cancel` fires.
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
        cancel: CancelToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;

    /// The models this backend can serve; empty if it cannot tell.
    fn list_models(&self, cancel: CancelToken) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        let _ = cancel;
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Every provider the host can call, built from one [`LlmConfig`].
pub struct Providers {
    config: LlmConfig,
    transport: Transport,
    registered: RwLock<BTreeMap<String, Arc<dyn ChatBackend>>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("config", &self.config)
            .field(
                "registered",
                &self.registered.read().keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Providers {
    /// The providers `config` describes. Never fails: problems surface per call.
    pub fn new(config: LlmConfig) -> Self {
        let transport = Transport::new(&config);
        Providers {
            config,
            transport,
            registered: RwLock::new(BTreeMap::new()),
        }
    }

    /// The providers the process environment describes.
    pub fn from_env() -> Self {
        Providers::new(LlmConfig::from_env())
    }

    /// The configuration in use.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Serves provider `name` (lower-cased) with `backend`, in place of any built-in of that name.
    pub fn register(&self, name: &str, backend: Arc<dyn ChatBackend>) {
        self.registered
            .write()
            .insert(normalize_provider(name), backend);
    }

    /// The route a request with neither provider nor model takes, if any.
    pub fn default_route(&self) -> Option<(String, String)> {
        self.config.default_route()
    }

    /// The `(provider, model)` `req` goes to; the model is `None` only for a registered backend left
    /// to pick its own.
    pub fn route(&self, req: &ChatRequest) -> Result<(String, Option<String>), LlmError> {
        let provider = self.route_provider(req.provider.as_deref())?;
        let model = req
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .or_else(|| self.config.default_model().map(str::to_string));
        if model.is_none() && !self.registered.read().contains_key(&provider) {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                format!(
                    "no model for LLM provider {provider:?}: the request names none and no default \
                     is configured (set ABSTRACTGATEWAY_MODEL)"
                ),
            ));
        }
        Ok((provider, model))
    }

    /// The provider a request naming `provider` (or none) goes to.
    pub fn route_provider(&self, provider: Option<&str>) -> Result<String, LlmError> {
        provider
            .map(normalize_provider)
            .filter(|p| !p.is_empty())
            .or_else(|| self.config.default_provider().map(str::to_string))
            .or_else(|| {
                self.registered
                    .read()
                    .contains_key(EMBEDDED)
                    .then(|| EMBEDDED.to_string())
            })
            .ok_or_else(|| {
                LlmError::fatal(
                    ErrorCode::InvalidInput,
                    "no LLM provider: the request names none and no default is configured \
                     (set ABSTRACTGATEWAY_PROVIDER and ABSTRACTGATEWAY_MODEL)",
                )
            })
    }

    /// The backend serving `provider`: a registered one, else a built-in HTTP client.
    fn backend(&self, provider: &str) -> Result<Arc<dyn ChatBackend>, LlmError> {
        if let Some(b) = self.registered.read().get(provider) {
            return Ok(b.clone());
        }
        let endpoint = self.config.endpoint(provider)?;
        Ok(match endpoint.wire {
            Wire::OpenAi => Arc::new(OpenAiClient::new(endpoint, self.transport.clone())),
            Wire::Anthropic => Arc::new(AnthropicClient::new(endpoint, self.transport.clone())),
        })
    }

    /// One chat completion, routed, retried and bounded by the configured deadline; `cancel`
    /// aborts it (in flight or between retries) with [`ErrorCode::Cancelled`].
    pub async fn complete(
        &self,
        req: &ChatRequest,
        cancel: CancelToken,
    ) -> Result<ChatResponse, LlmError> {
        if req.messages.is_empty() {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                "an LLM request needs at least one message",
            ));
        }
        let (provider, model) = self.route(req)?;
        let backend = self.backend(&provider)?;
        let mut routed = req.clone();
        routed.provider = Some(provider);
        routed.model = model;
        let started = std::time::Instant::now();
        let result = backend.complete(&routed, cancel).await;
        tracing::debug!(
            provider = routed.provider.as_deref(),
            model = routed.model.as_deref(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome = result.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"),
            "LLM call"
        );
        result
    }

    /// The models `provider` (else the default provider) lists, for discovery.
    pub async fn list_models(&self, provider: Option<&str>) -> Result<Vec<String>, LlmError> {
        let provider = self.route_provider(provider)?;
        self.backend(&provider)?
            .list_models(CancelToken::never())
            .await
    }
}

/// The model of a routed request, which HTTP providers cannot do without.
pub(crate) fn resolved_model<'a>(
    req: &'a ChatRequest,
    provider: &str,
) -> Result<&'a str, LlmError> {
    req.model
        .as_deref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            LlmError::fatal(
                ErrorCode::InvalidInput,
                format!("no model given for LLM provider {provider:?}"),
            )
        })
}

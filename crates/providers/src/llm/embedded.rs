//! The in-process model (feature `local-model`): SmolLM2-135M-Instruct run on the CPU by the
//! `abstractgateway-llm-local` crate, serving provider [`super::EMBEDDED`] so that LLM nodes answer with
//! no provider configured.
//!
//! The model is loaded on the first call, not at start, so a server whose flows never call a model
//! pays nothing for it; a missing model file fails the call (and only it) with the command that
//! fetches it. The model cannot call tools: tool specs are not shown to it, so agents answer directly.

use std::path::PathBuf;
use std::sync::Arc;

use abstractgateway_llm_local::{GenOptions, LocalModel, MODEL_ID};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::structured::{response_schema, structured_content};
use super::types::{ChatMessage, ChatRequest, ChatResponse, ErrorCode, LlmError, Usage};
use super::{CancelToken, ChatBackend, EMBEDDED, Providers, normalize_provider};

/// Env var listing further provider ids (comma-separated) the in-process model answers for, in place
/// of their HTTP endpoints, e.g. `lmstudio` for bundles that pin it with no LM Studio around.
pub const ALIASES_ENV: &str = "ABSTRACTGATEWAY_EMBEDDED_PROVIDERS";

/// Env var capping the tokens one answer may generate (default [`DEFAULT_MAX_TOKENS`]).
pub const MAX_TOKENS_ENV: &str = "ABSTRACTGATEWAY_EMBEDDED_MAX_TOKENS";

/// Default cap on generated tokens: the model decodes ~20 tokens/s on a small CPU, and flows often ask
/// for budgets (4096, 16384) meant for big remote models.
pub const DEFAULT_MAX_TOKENS: usize = 512;

/// A lazily loaded [`LocalModel`] behind the [`ChatBackend`] trait.
pub struct EmbeddedModel {
    path: PathBuf,
    max_tokens: usize,
    model: OnceCell<Arc<LocalModel>>,
}

impl EmbeddedModel {
    /// A backend that will load the GGUF file at `path` on its first call and generate at most
    /// `max_tokens` per answer.
    pub fn new(path: PathBuf, max_tokens: usize) -> Self {
        EmbeddedModel {
            path,
            max_tokens: max_tokens.max(1),
            model: OnceCell::new(),
        }
    }

    /// The loaded model; loads it (off the async threads) on first use.
    async fn model(&self) -> Result<Arc<LocalModel>, LlmError> {
        self.model
            .get_or_try_init(|| async {
                if !self.path.is_file() {
                    return Err(LlmError::fatal(
                        ErrorCode::Unavailable,
                        format!(
                            "the embedded model is not at {}: fetch it with scripts/fetch-model.sh \
                             (or set ABSTRACTGATEWAY_LOCAL_MODEL), or configure a provider with \
                             ABSTRACTGATEWAY_PROVIDER and ABSTRACTGATEWAY_MODEL",
                            self.path.display()
                        ),
                    ));
                }
                let path = self.path.clone();
                let loaded = tokio::task::spawn_blocking(move || LocalModel::load(&path))
                    .await
                    .map_err(|e| {
                        LlmError::fatal(ErrorCode::Internal, format!("loading the model: {e}"))
                    })?
                    .map_err(|e| {
                        LlmError::fatal(
                            ErrorCode::Unavailable,
                            format!("the embedded model does not load: {e}"),
                        )
                    })?;
                tracing::info!(path = %self.path.display(), "embedded model loaded");
                Ok(Arc::new(loaded))
            })
            .await
            .cloned()
    }

    async fn chat(&self, req: &ChatRequest, cancel: CancelToken) -> Result<ChatResponse, LlmError> {
        let schema = response_schema(req.response_schema.as_ref(), None)?;
        let mut messages = prompt_messages(&req.messages);
        if let Some(schema) = &schema {
            // Prompted structured output (as AbstractCore does for providers without a native mode),
            // at the end of the last user turn, where a small model heeds it best.
            let ask = format!(
                "\n\nAnswer with one JSON value that matches this JSON schema, and nothing else:\n{}",
                schema.schema
            );
            match messages.iter_mut().rev().find(|(role, _)| role == "user") {
                Some((_, text)) => text.push_str(&ask),
                None => messages.push(("user".to_string(), ask.trim_start().to_string())),
            }
        }
        let opts = GenOptions {
            max_tokens: req.max_tokens.map_or(self.max_tokens, |n| {
                (n.max(1) as usize).min(self.max_tokens)
            }),
            temperature: req.temperature.unwrap_or(0.0),
            // Negative seeds (the seed's "-1 = random") map to 0: answers stay reproducible.
            seed: req.seed.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            top_p: None,
            stop: Vec::new(),
        };
        let model = self.model().await?;
        let stop = cancel.clone();
        let generation = tokio::task::spawn_blocking(move || {
            model.chat_streaming(&messages, &opts, |_| !stop.is_cancelled())
        })
        .await
        .map_err(|e| LlmError::fatal(ErrorCode::Internal, format!("generation task: {e}")))?
        .map_err(|e| match e {
            abstractgateway_llm_local::Error::InvalidRequest(m) => {
                LlmError::fatal(ErrorCode::InvalidInput, m)
            }
            other => LlmError::fatal(ErrorCode::Internal, other.to_string()),
        })?;
        if cancel.is_cancelled() {
            return Err(LlmError::fatal(
                ErrorCode::Cancelled,
                "the call was cancelled",
            ));
        }
        let content = match schema {
            Some(_) => structured_content(EMBEDDED, &generation.text)?,
            None => generation.text,
        };
        let (input, output) = (
            generation.prompt_tokens as u32,
            generation.completion_tokens as u32,
        );
        Ok(ChatResponse {
            content,
            reasoning: None,
            tool_calls: Vec::new(),
            finish_reason: generation.finish_reason.as_str().to_string(),
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: input + output,
            },
            provider: req.provider.clone().unwrap_or_else(|| EMBEDDED.to_string()),
            model: MODEL_ID.to_string(),
        })
    }
}

impl ChatBackend for EmbeddedModel {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
        cancel: CancelToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.chat(req, cancel))
    }

    fn list_models(&self, _cancel: CancelToken) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async { Ok(vec![MODEL_ID.to_string()]) })
    }
}

/// The conversation as (role, text) turns of the model's chat template. An assistant turn that only
/// called tools shows its calls as JSON, so the model sees what the tool answers respond to.
fn prompt_messages(messages: &[ChatMessage]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            let role = match m.role.as_str() {
                "developer" => "system",
                other => other,
            };
            let text = match (&m.tool_calls, m.content.is_empty()) {
                (Some(calls @ Value::Array(_)), true) => calls.to_string(),
                _ => m.content.clone(),
            };
            (role.to_string(), text)
        })
        .collect()
}

/// Registers the in-process model as provider `embedded` (the route of requests that name no
/// provider when none is configured) and under every id in [`ALIASES_ENV`]; returns warnings about
/// the settings.
pub fn register_from_env(providers: &Providers) -> Vec<String> {
    let mut warnings = Vec::new();
    let max_tokens = match std::env::var(MAX_TOKENS_ENV) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                warnings.push(format!(
                    "{MAX_TOKENS_ENV}={v:?} is not a positive integer; using {DEFAULT_MAX_TOKENS}"
                ));
                DEFAULT_MAX_TOKENS
            }
        },
        _ => DEFAULT_MAX_TOKENS,
    };
    let aliases: Vec<String> = std::env::var(ALIASES_ENV)
        .unwrap_or_default()
        .split(',')
        .map(normalize_provider)
        .filter(|a| !a.is_empty())
        .collect();
    let path = abstractgateway_llm_local::model_path_from_env();
    // Said in the log, not among the configuration warnings: a gateway whose flows call no model is
    // healthy without it, and a call that needs it fails with the same advice.
    if !path.is_file() && (providers.default_route().is_none() || !aliases.is_empty()) {
        tracing::warn!(
            path = %path.display(),
            "the embedded model is not there: LLM calls routed to it fail until scripts/fetch-model.sh fetches it"
        );
    }
    let backend: Arc<dyn ChatBackend> = Arc::new(EmbeddedModel::new(path, max_tokens));
    providers.register(EMBEDDED, backend.clone());
    for alias in &aliases {
        providers.register(alias, backend.clone());
    }
    warnings
}

//! `llm`: chat completions through the host's providers, to granted models only; keys stay in the host.

use std::future::Future;
use std::pin::Pin;

use super::super::bindings::llm::{Host, Request, Response, Role};
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
    /// The `(provider, model)` a request naming neither goes to, if the host has one.
    fn default_route(&self) -> Option<(String, String)> {
        None
    }
    /// The provider's model catalogue (`None` = the default provider): the provider's id and its models.
    fn list_models(&self, provider: Option<String>) -> Answer<(String, Vec<String>)> {
        let _ = provider;
        Box::pin(async {
            Err(error(
                ErrorCode::Unsupported,
                "this gateway's LLM backend cannot list models",
            ))
        })
    }
}

impl Host for NodeCtx {
    async fn complete(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let request = request_json(&req)?;
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

    async fn list_models(
        &mut self,
        provider: Option<String>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let backend = self.caps.llm.clone();
        let grants = self.grants.clone();
        let request = serde_json::json!({"provider": provider});
        self.rec
            .call(HostFn::remote("llm", "list-models"), request, async move {
                let Some(backend) = backend else {
                    return Err(error(
                        ErrorCode::Unavailable,
                        "no LLM provider is configured on this gateway",
                    ));
                };
                let (provider, models) = backend.list_models(provider).await?;
                // A plugin learns of no model it could not call.
                Ok(models
                    .into_iter()
                    .filter(|m| grants.allows_model(&provider, m))
                    .collect())
            })
            .await
    }
}

/// The host's provider layer answers plugin `llm` calls.
pub struct ProvidersBackend(pub std::sync::Arc<crate::llm::Providers>);

impl LlmBackend for ProvidersBackend {
    fn route(&self, req: &Request) -> Result<(String, String), Error> {
        let (provider, model) = self
            .0
            .route(&chat_request(req.clone())?)
            .map_err(wit_error)?;
        Ok((provider, model.unwrap_or_default()))
    }

    fn default_route(&self) -> Option<(String, String)> {
        self.0.default_route()
    }

    fn list_models(&self, provider: Option<String>) -> Answer<(String, Vec<String>)> {
        let providers = self.0.clone();
        Box::pin(async move {
            let name = providers
                .route_provider(provider.as_deref())
                .map_err(wit_error)?;
            let models = providers
                .list_models(Some(&name))
                .await
                .map_err(wit_error)?;
            Ok((name, models))
        })
    }

    fn complete(&self, req: Request) -> Answer<Response> {
        let providers = self.0.clone();
        Box::pin(async move {
            let chat = chat_request(req)?;
            // Cancellation is the recorder's: it drops this future, which aborts the HTTP call.
            let resp = providers
                .complete(&chat, crate::llm::CancelToken::never())
                .await
                .map_err(wit_error)?;
            Ok(response(resp))
        })
    }
}

/// The WIT name of a role, as providers and the ledger spell it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// The role a name spells (`None` for any other string).
pub fn role_of(name: &str) -> Option<Role> {
    [Role::System, Role::User, Role::Assistant, Role::Tool]
        .into_iter()
        .find(|r| role_name(*r) == name)
}

/// A request as the ledger records it: roles by their WIT names.
fn request_json(req: &Request) -> wasmtime::Result<serde_json::Value> {
    let mut v = serde_json::to_value(req)?;
    if let Some(serde_json::Value::Array(msgs)) = v.get_mut("messages") {
        for (m, orig) in msgs.iter_mut().zip(&req.messages) {
            m["role"] = role_name(orig.role).into();
        }
    }
    Ok(v)
}

fn json_field(name: &str, s: Option<String>) -> Result<Option<serde_json::Value>, Error> {
    s.filter(|s| !s.trim().is_empty())
        .map(|s| {
            serde_json::from_str(&s).map_err(|e| {
                error(
                    ErrorCode::InvalidInput,
                    format!("llm request {name} is not JSON: {e}"),
                )
            })
        })
        .transpose()
}

fn chat_request(req: Request) -> Result<crate::llm::ChatRequest, Error> {
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in req.messages {
        messages.push(crate::llm::ChatMessage {
            role: role_name(m.role).to_string(),
            content: m.content,
            name: m.name,
            tool_call_id: m.tool_call_id,
            tool_calls: json_field("tool_calls", m.tool_calls)?,
        });
    }
    Ok(crate::llm::ChatRequest {
        provider: req.provider,
        model: req.model,
        messages,
        tools: json_field("tools", req.tools)?,
        response_schema: json_field("response_schema", req.response_schema)?,
        temperature: req.temperature,
        max_tokens: req.max_tokens,
        seed: req.seed,
        options: json_field("options", req.options)?,
    })
}

fn response(r: crate::llm::ChatResponse) -> Response {
    use super::super::bindings::llm::{ToolCall, Usage};
    Response {
        content: r.content,
        reasoning: r.reasoning,
        tool_calls: r
            .tool_calls
            .into_iter()
            .map(|t| ToolCall {
                call_id: t.call_id,
                name: t.name,
                arguments: t.arguments.to_string(),
            })
            .collect(),
        finish_reason: r.finish_reason,
        usage: Usage {
            input_tokens: r.usage.input_tokens,
            output_tokens: r.usage.output_tokens,
            total_tokens: r.usage.total_tokens,
        },
        provider: r.provider,
        model: r.model,
    }
}

pub(super) fn wit_error(e: crate::llm::LlmError) -> Error {
    use crate::llm::ErrorCode as E;
    let code = match e.code {
        E::InvalidInput => ErrorCode::InvalidInput,
        E::AccessDenied => ErrorCode::AccessDenied,
        E::NotFound => ErrorCode::NotFound,
        E::RateLimited => ErrorCode::RateLimited,
        E::Timeout => ErrorCode::Timeout,
        E::Cancelled => ErrorCode::Cancelled,
        E::Unavailable => ErrorCode::Unavailable,
        E::TooLarge => ErrorCode::TooLarge,
        E::Internal => ErrorCode::Internal,
        E::Unsupported => ErrorCode::Unsupported,
    };
    Error {
        code,
        message: e.message,
        retryable: e.retryable,
    }
}

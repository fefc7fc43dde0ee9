//! OpenAI-compatible chat completions: openai, lmstudio, ollama (`/v1`), vllm, openai-compatible and
//! openrouter all speak it.

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use super::cancel::CancelToken;
use super::config::Endpoint;
use super::options::{kind, split_options};
use super::structured::{Schema, response_schema, tool_arguments};
use super::transport::{Transport, auth_header, error_detail};
use super::types::{ChatMessage, ChatRequest, ChatResponse, ErrorCode, LlmError, ToolCall, Usage};
use super::{ChatBackend, resolved_model};

/// A client for one OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    endpoint: Endpoint,
    transport: Transport,
}

impl OpenAiClient {
    /// A client for `endpoint`, sharing `transport`'s connection pool and policy.
    pub(crate) fn new(endpoint: Endpoint, transport: Transport) -> Self {
        OpenAiClient {
            endpoint,
            transport,
        }
    }

    fn headers(&self) -> Result<HeaderMap, LlmError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.endpoint.api_key {
            auth_header(
                &mut headers,
                "authorization",
                "Bearer ",
                key,
                &self.endpoint.provider,
            )?;
        }
        Ok(headers)
    }

    /// One chat completion; `req.model` must hold the resolved model.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        cancel: &CancelToken,
    ) -> Result<ChatResponse, LlmError> {
        let provider = self.endpoint.provider.as_str();
        let model = resolved_model(req, provider)?;
        let (host, extra) = split_options(req)?;
        let schema = response_schema(req.response_schema.as_ref(), host.schema_name.as_deref())?;
        let body = request_body(
            provider,
            req,
            model,
            schema.as_ref(),
            host.strict_schema,
            extra,
        )?;
        let url = format!("{}/chat/completions", self.endpoint.base_url);
        let answer = (self.transport)
            .post(provider, url, self.headers()?, &body, host.timeout, cancel)
            .await?;
        let mut resp = parse_response(provider, model, &answer)?;
        if schema.is_some() && resp.tool_calls.is_empty() {
            resp.content = self.transport.structured(provider, &resp.content)?;
        }
        Ok(resp)
    }

    /// The model ids the endpoint lists (`GET {base}/models`).
    pub async fn models(&self, cancel: &CancelToken) -> Result<Vec<String>, LlmError> {
        let url = format!("{}/models", self.endpoint.base_url);
        (self.transport)
            .model_ids(&self.endpoint.provider, url, self.headers()?, cancel)
            .await
    }
}

impl ChatBackend for OpenAiClient {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
        cancel: CancelToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move { self.chat(req, &cancel).await })
    }

    fn list_models(&self, cancel: CancelToken) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async move { self.models(&cancel).await })
    }
}

/// Reads `{data: [{id}]}` (OpenAI, Anthropic) or `{models: [{id|name}]}`.
pub(crate) fn model_ids(provider: &str, answer: &Value) -> Result<Vec<String>, LlmError> {
    let list = answer
        .get("data")
        .or_else(|| answer.get("models"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            LlmError::fatal(
                ErrorCode::Internal,
                format!("{provider}: the model list has no `data` array"),
            )
        })?;
    Ok(list
        .iter()
        .filter_map(|m| {
            m.get("id")
                .or_else(|| m.get("name"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .collect())
}

/// The JSON body of `POST /chat/completions`. Provider options come first so the request's own
/// fields win over them.
fn request_body(
    provider: &str,
    req: &ChatRequest,
    model: &str,
    schema: Option<&Schema>,
    strict: bool,
    extra: Map<String, Value>,
) -> Result<Value, LlmError> {
    let mut body = extra;
    body.insert("model".into(), json!(model));
    let messages = req
        .messages
        .iter()
        .map(wire_message)
        .collect::<Result<Vec<_>, _>>()?;
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(false));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(n) = req.max_tokens {
        // OpenAI's reasoning models refuse `max_tokens`; every other server expects it.
        let newer = ["o1", "o3", "o4", "gpt-5"]
            .iter()
            .any(|p| model.starts_with(p));
        let key = if provider == "openai" && newer {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(key.into(), json!(n));
    }
    if let Some(seed) = req.seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(tools) = wire_tools(req.tools.as_ref())? {
        body.insert("tools".into(), tools);
    }
    if let Some(s) = schema {
        body.insert(
            "response_format".into(),
            json!({
                "type": "json_schema",
                "json_schema": {"name": s.name, "schema": s.schema, "strict": strict},
            }),
        );
    }
    Ok(Value::Object(body))
}

fn wire_message(m: &ChatMessage) -> Result<Value, LlmError> {
    let mut out = Map::new();
    out.insert("role".into(), json!(m.role));
    out.insert("content".into(), json!(m.content));
    if let Some(name) = &m.name {
        out.insert("name".into(), json!(name));
    }
    if let Some(id) = &m.tool_call_id {
        out.insert("tool_call_id".into(), json!(id));
    }
    match &m.tool_calls {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) if calls.is_empty() => {}
        Some(Value::Array(calls)) => {
            let calls = calls
                .iter()
                .enumerate()
                .map(|(i, c)| wire_tool_call(i, c))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert("tool_calls".into(), Value::Array(calls));
        }
        Some(other) => {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                format!(
                    "message tool_calls must be a JSON array, got {}",
                    kind(other)
                ),
            ));
        }
    }
    Ok(Value::Object(out))
}

/// One assistant tool call in OpenAI's shape, from ours (`{call_id, name, arguments}`) or theirs.
fn wire_tool_call(index: usize, call: &Value) -> Result<Value, LlmError> {
    let function = call.get("function").filter(|f| f.is_object());
    let name = function
        .unwrap_or(call)
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            LlmError::fatal(
                ErrorCode::InvalidInput,
                format!("tool_calls[{index}] has no string `name`"),
            )
        })?;
    let arguments = match function.unwrap_or(call).get("arguments") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(v) => v.to_string(),
    };
    let id = call
        .get("call_id")
        .or_else(|| call.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("call_{index}"));
    Ok(json!({
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }))
}

/// Tool specs in OpenAI's shape, from `[{name, description, parameters}]` (or already wrapped).
fn wire_tools(tools: Option<&Value>) -> Result<Option<Value>, LlmError> {
    let list = match tools {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) if list.is_empty() => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                format!("tools must be a JSON array, got {}", kind(other)),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        if t.get("type").and_then(Value::as_str) == Some("function")
            && t.get("function").is_some_and(Value::is_object)
        {
            out.push(t.clone());
            continue;
        }
        let spec = ToolSpec::read(i, t)?;
        out.push(json!({
            "type": "function",
            "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
        }));
    }
    Ok(Some(Value::Array(out)))
}

/// A tool spec `{name, description, parameters}` as the WIT documents it.
pub(crate) struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What it does ("" if absent).
    pub description: String,
    /// JSON schema of the arguments (an empty object schema if absent).
    pub parameters: Value,
}

impl ToolSpec {
    /// Reads entry `index` of `request.tools`.
    pub(crate) fn read(index: usize, t: &Value) -> Result<Self, LlmError> {
        let name = t.get("name").and_then(Value::as_str).ok_or_else(|| {
            LlmError::fatal(
                ErrorCode::InvalidInput,
                format!("tools[{index}] has no string `name`"),
            )
        })?;
        let parameters = match t.get("parameters").or_else(|| t.get("input_schema")) {
            Some(p @ Value::Object(_)) => p.clone(),
            _ => json!({"type": "object", "properties": {}}),
        };
        Ok(ToolSpec {
            name: name.to_string(),
            description: t
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            parameters,
        })
    }
}

/// Our response from an OpenAI `chat.completion` object.
fn parse_response(provider: &str, model: &str, v: &Value) -> Result<ChatResponse, LlmError> {
    let choice = v.pointer("/choices/0").ok_or_else(|| {
        // Some gateways (openrouter) answer 200 with an error object.
        let detail = if v.get("error").is_some() {
            error_detail(v.to_string().as_bytes())
        } else {
            "no choices".to_string()
        };
        LlmError::transient(
            ErrorCode::Unavailable,
            format!("{provider}: unusable answer: {detail}"),
        )
    })?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let content = match msg.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    let reasoning = ["reasoning_content", "reasoning"]
        .iter()
        .filter_map(|k| msg.get(*k).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .map(str::to_string);
    let mut tool_calls = Vec::new();
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for c in calls {
            let f = c.get("function").unwrap_or(c);
            let Some(name) = f.get("name").and_then(Value::as_str) else {
                continue;
            };
            tool_calls.push(ToolCall {
                call_id: c.get("id").and_then(Value::as_str).map(str::to_string),
                name: name.to_string(),
                arguments: tool_arguments(f.get("arguments")),
            });
        }
    } else if let Some(f) = msg.get("function_call")
        && let Some(name) = f.get("name").and_then(Value::as_str)
    {
        tool_calls.push(ToolCall {
            call_id: None,
            name: name.to_string(),
            arguments: tool_arguments(f.get("arguments")),
        });
    }
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            }
            .to_string()
        });
    Ok(ChatResponse {
        content,
        reasoning,
        tool_calls,
        finish_reason,
        usage: usage(v.get("usage")),
        provider: provider.to_string(),
        model: model.to_string(),
    })
}

/// Token counts from either naming (`prompt_tokens`/`completion_tokens` or `input_tokens`/`output_tokens`).
pub(crate) fn usage(u: Option<&Value>) -> Usage {
    let Some(u) = u else {
        return Usage::default();
    };
    let n = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| u.get(*k).and_then(Value::as_u64))
            .map(|x| u32::try_from(x).unwrap_or(u32::MAX))
    };
    let input = n(&["prompt_tokens", "input_tokens"]).unwrap_or(0);
    let output = n(&["completion_tokens", "output_tokens"]).unwrap_or(0);
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: n(&["total_tokens"]).unwrap_or(input.saturating_add(output)),
    }
}

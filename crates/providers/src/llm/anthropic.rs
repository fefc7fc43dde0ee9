//! Anthropic's messages API (`POST {base}/v1/messages`).
//!
//! Structured output has no native form there: without tools, the schema becomes one forced tool
//! whose input is the answer; with tools, the schema is described in the system prompt and the
//! text answer parsed.

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::cancel::CancelToken;
use super::config::Endpoint;
use super::openai::{ToolSpec, usage};
use super::options::{kind, split_options};
use super::structured::{Schema, response_schema, tool_arguments};
use super::transport::{Transport, auth_header};
use super::types::{ChatRequest, ChatResponse, ErrorCode, LlmError, ToolCall};
use super::{ChatBackend, resolved_model};

/// The API version this client speaks.
const API_VERSION: &str = "2023-06-01";

/// Anthropic requires `max_tokens`; this is used when the request names none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A client for Anthropic's messages API.
#[derive(Debug, Clone)]
pub struct AnthropicClient {
    endpoint: Endpoint,
    transport: Transport,
}

/// How a response schema travels in one request.
enum SchemaMode {
    None,
    /// As a forced tool of this name.
    Tool(String),
    /// Described in the system prompt; the text answer is parsed.
    Prompted,
}

impl AnthropicClient {
    /// A client for `endpoint`, sharing `transport`'s connection pool and policy.
    pub(crate) fn new(endpoint: Endpoint, transport: Transport) -> Self {
        AnthropicClient {
            endpoint,
            transport,
        }
    }

    fn headers(&self) -> Result<HeaderMap, LlmError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.endpoint.api_key {
            auth_header(&mut headers, "x-api-key", "", key, &self.endpoint.provider)?;
        }
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        );
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
        let (body, mode) = request_body(req, model, schema.as_ref(), extra)?;
        let url = format!("{}/v1/messages", self.endpoint.base_url);
        let answer = (self.transport)
            .post(provider, url, self.headers()?, &body, host.timeout, cancel)
            .await?;
        let mut resp = parse_response(provider, model, &answer)?;
        match mode {
            SchemaMode::None => {}
            SchemaMode::Tool(name) => {
                let pos = resp.tool_calls.iter().position(|c| c.name == name);
                let call = pos.map(|i| resp.tool_calls.remove(i)).ok_or_else(|| {
                    LlmError::transient(
                        ErrorCode::Internal,
                        format!("{provider}: the structured answer tool {name:?} was not called"),
                    )
                })?;
                resp.content = call.arguments.to_string();
                resp.finish_reason = "stop".to_string();
            }
            SchemaMode::Prompted => {
                if resp.tool_calls.is_empty() {
                    resp.content = self.transport.structured(provider, &resp.content)?;
                }
            }
        }
        Ok(resp)
    }

    /// The model ids Anthropic lists (`GET {base}/v1/models`).
    pub async fn models(&self, cancel: &CancelToken) -> Result<Vec<String>, LlmError> {
        let url = format!("{}/v1/models", self.endpoint.base_url);
        (self.transport)
            .model_ids(&self.endpoint.provider, url, self.headers()?, cancel)
            .await
    }
}

impl ChatBackend for AnthropicClient {
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

fn request_body(
    req: &ChatRequest,
    model: &str,
    schema: Option<&Schema>,
    extra: Map<String, Value>,
) -> Result<(Value, SchemaMode), LlmError> {
    let mut body = extra;
    body.insert("model".into(), json!(model));
    let (mut system, messages) = wire_messages(req)?;
    body.insert("messages".into(), Value::Array(messages));
    match req.max_tokens {
        Some(n) => {
            body.insert("max_tokens".into(), json!(n));
        }
        None => {
            body.entry("max_tokens")
                .or_insert_with(|| json!(DEFAULT_MAX_TOKENS));
        }
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    let mut tools = wire_tools(req.tools.as_ref())?;
    let mut mode = SchemaMode::None;
    if let Some(s) = schema {
        let is_object = s.schema.get("type").and_then(Value::as_str) == Some("object");
        if tools.is_empty() && is_object {
            tools.push(json!({
                "name": s.name,
                "description": "Give the answer as this tool's input.",
                "input_schema": s.schema,
            }));
            body.insert(
                "tool_choice".into(),
                json!({"type": "tool", "name": s.name}),
            );
            mode = SchemaMode::Tool(s.name.clone());
        } else {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str(&format!(
                "Respond only with a JSON document matching this JSON schema:\n{}",
                s.schema
            ));
            mode = SchemaMode::Prompted;
        }
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if !system.is_empty() {
        body.insert("system".into(), json!(system));
    }
    Ok((Value::Object(body), mode))
}

/// System text split out; the rest as alternating turns of content blocks (consecutive messages of
/// one role merged, tool answers sent as user `tool_result` blocks).
fn wire_messages(req: &ChatRequest) -> Result<(String, Vec<Value>), LlmError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                if !m.content.is_empty() {
                    system.push(m.content.as_str());
                }
                continue;
            }
            "user" => ("user", text_block(&m.content)),
            "assistant" => {
                let mut blocks = text_block(&m.content);
                blocks.extend(tool_use_blocks(i, m.tool_calls.as_ref())?);
                ("assistant", blocks)
            }
            "tool" => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    LlmError::fatal(
                        ErrorCode::InvalidInput,
                        format!("messages[{i}] has role tool but no tool_call_id"),
                    )
                })?;
                (
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": m.content})],
                )
            }
            other => {
                return Err(LlmError::fatal(
                    ErrorCode::InvalidInput,
                    format!("messages[{i}] has unknown role {other:?}"),
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, existing)) if *r == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect();
    Ok((system.join("\n\n"), messages))
}

fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// `tool_use` blocks from an assistant message's tool calls (our shape or OpenAI's).
fn tool_use_blocks(index: usize, calls: Option<&Value>) -> Result<Vec<Value>, LlmError> {
    let list = match calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                format!(
                    "messages[{index}].tool_calls must be a JSON array, got {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, call) in list.iter().enumerate() {
        let f = call
            .get("function")
            .filter(|f| f.is_object())
            .unwrap_or(call);
        let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
            LlmError::fatal(
                ErrorCode::InvalidInput,
                format!("messages[{index}].tool_calls[{j}] has no string `name`"),
            )
        })?;
        let id = call
            .get("call_id")
            .or_else(|| call.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("toolu_{index}_{j}"));
        out.push(json!({
            "type": "tool_use",
            "id": id,
            "name": name,
            "input": tool_arguments(f.get("arguments")),
        }));
    }
    Ok(out)
}

fn wire_tools(tools: Option<&Value>) -> Result<Vec<Value>, LlmError> {
    let list = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
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
        let t = t.get("function").filter(|f| f.is_object()).unwrap_or(t);
        let spec = ToolSpec::read(i, t)?;
        out.push(json!({
            "name": spec.name,
            "description": spec.description,
            "input_schema": spec.parameters,
        }));
    }
    Ok(out)
}

fn parse_response(provider: &str, model: &str, v: &Value) -> Result<ChatResponse, LlmError> {
    let blocks = v.get("content").and_then(Value::as_array).ok_or_else(|| {
        LlmError::transient(
            ErrorCode::Unavailable,
            format!("{provider}: unusable answer: no `content` list"),
        )
    })?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => {
                if let Some(name) = b.get("name").and_then(Value::as_str) {
                    tool_calls.push(ToolCall {
                        call_id: b.get("id").and_then(Value::as_str).map(str::to_string),
                        name: name.to_string(),
                        arguments: tool_arguments(b.get("input")),
                    });
                }
            }
            _ => {}
        }
    }
    let finish_reason = match v.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn" | "stop_sequence" | "pause_turn") | None => "stop",
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        Some(other) => other,
    }
    .to_string();
    Ok(ChatResponse {
        content: text,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        tool_calls,
        finish_reason,
        usage: usage(v.get("usage")),
        provider: provider.to_string(),
        model: model.to_string(),
    })
}

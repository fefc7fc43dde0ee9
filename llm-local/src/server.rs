//! OpenAI-compatible HTTP front (`/v1/chat/completions`, `/v1/models`) for a [`LocalModel`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Error, GenOptions, Generation, LocalModel, MODEL_ID};

/// Upper bound on `max_tokens` when the request gives none (the context window still applies).
const DEFAULT_MAX_TOKENS: usize = 256;

/// Shared state of the handlers.
struct AppState {
    model: Arc<LocalModel>,
    next_id: AtomicU64,
}

/// The routes of the OpenAI-compatible server, serving `model`.
pub fn router(model: Arc<LocalModel>) -> Router {
    let state = Arc::new(AppState {
        model,
        next_id: AtomicU64::new(1),
    });
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "unknown route",
                None,
            )
        })
        .with_state(state)
}

/// Serves `model` on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    model: Arc<LocalModel>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(model))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<&'static str>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        message: impl Into<String>,
        param: Option<&'static str>,
    ) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            param,
        }
    }

    /// A 400 about one request field.
    fn bad(param: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            message,
            Some(param),
        )
    }

    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": null}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest(message) => ApiError::bad("messages", message),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                other.to_string(),
                None,
            ),
        }
    }
}

/// `GET /v1/models`: the one model served.
async fn list_models() -> axum::Json<Value> {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "abstractgateway"}]
    }))
}

/// A validated chat completion request.
#[derive(Debug)]
struct ChatRequest {
    messages: Vec<(String, String)>,
    options: GenOptions,
    stream: bool,
}

/// Checks the request body the way OpenAI does for the fields this server understands; others are ignored.
fn parse_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the body is not valid JSON: {e}"),
            None,
        )
    })?;
    let Value::Object(req) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the body must be a JSON object",
            None,
        ));
    };
    if let Some(model) = req.get("model")
        && !model.is_string()
    {
        return Err(ApiError::bad("model", "'model' must be a string"));
    }
    let messages = match req.get("messages") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, m)| parse_message(i, m))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => {
            return Err(ApiError::bad("messages", "'messages' must not be empty"));
        }
        Some(_) => return Err(ApiError::bad("messages", "'messages' must be an array")),
        None => {
            return Err(ApiError::bad(
                "messages",
                "missing required parameter 'messages'",
            ));
        }
    };

    let mut options = GenOptions {
        max_tokens: DEFAULT_MAX_TOKENS,
        ..GenOptions::default()
    };
    for key in ["max_tokens", "max_completion_tokens"] {
        match req.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().ok_or_else(|| {
                    ApiError::bad(
                        static_key(key),
                        format!("'{key}' must be a non-negative integer"),
                    )
                })?;
                options.max_tokens = usize::try_from(n).unwrap_or(usize::MAX);
            }
        }
    }
    if let Some(t) = optional_number(&req, "temperature")? {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::bad(
                "temperature",
                "'temperature' must be between 0 and 2",
            ));
        }
        options.temperature = t;
    }
    if let Some(p) = optional_number(&req, "top_p")? {
        if !(0.0..=1.0).contains(&p) {
            return Err(ApiError::bad("top_p", "'top_p' must be between 0 and 1"));
        }
        options.top_p = Some(p);
    }
    match req.get("seed") {
        None | Some(Value::Null) => {}
        Some(v) => {
            // OpenAI seeds are signed 64-bit; keep the bits.
            let seed = v
                .as_i64()
                .map(|s| s as u64)
                .or_else(|| v.as_u64())
                .ok_or_else(|| ApiError::bad("seed", "'seed' must be an integer"))?;
            options.seed = seed;
        }
    }
    options.stop = match req.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad("stop", "'stop' entries must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad(
                "stop",
                "'stop' must be a string or an array of up to 4 strings",
            ));
        }
    };
    match req.get("n") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64() == Some(1) => {}
        Some(_) => return Err(ApiError::bad("n", "only n=1 is supported")),
    }
    let stream = match req.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad("stream", "'stream' must be a boolean")),
    };
    Ok(ChatRequest {
        messages,
        options,
        stream,
    })
}

/// The field names as `'static` for error bodies.
fn static_key(key: &str) -> &'static str {
    if key == "max_tokens" {
        "max_tokens"
    } else {
        "max_completion_tokens"
    }
}

/// A number field that may be absent or null.
fn optional_number(
    req: &serde_json::Map<String, Value>,
    key: &'static str,
) -> Result<Option<f64>, ApiError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(key, format!("'{key}' must be a number"))),
    }
}

/// One message: a role and either a string or an array of text parts.
fn parse_message(index: usize, message: &Value) -> Result<(String, String), ApiError> {
    let Value::Object(m) = message else {
        return Err(ApiError::bad(
            "messages",
            format!("messages[{index}] must be an object"),
        ));
    };
    let role = match m.get("role") {
        Some(Value::String(r))
            if matches!(
                r.as_str(),
                "system" | "developer" | "user" | "assistant" | "tool"
            ) =>
        {
            // SmolLM2 knows no "developer" role; it plays the same part as "system".
            if r == "developer" {
                "system".to_string()
            } else {
                r.clone()
            }
        }
        Some(Value::String(r)) => {
            return Err(ApiError::bad(
                "messages",
                format!(
                    "messages[{index}].role {r:?} is not one of system, developer, user, assistant, tool"
                ),
            ));
        }
        _ => {
            return Err(ApiError::bad(
                "messages",
                format!("messages[{index}].role must be a string"),
            ));
        }
    };
    let content = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        // An assistant turn that only called tools has no content.
        None | Some(Value::Null) if role == "assistant" => String::new(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (p, part) in parts.iter().enumerate() {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    _ => {
                        return Err(ApiError::bad(
                            "messages",
                            format!(
                                "messages[{index}].content[{p}] must be a text part {{\"type\":\"text\",\"text\":...}}"
                            ),
                        ));
                    }
                }
            }
            text
        }
        _ => {
            return Err(ApiError::bad(
                "messages",
                format!("messages[{index}].content must be a string or an array of text parts"),
            ));
        }
    };
    Ok((role, content))
}

/// Seconds since the epoch, for `created`.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// OpenAI's usage object.
fn usage(g: &Generation) -> Value {
    json!({
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "total_tokens": g.prompt_tokens + g.completion_tokens,
    })
}

/// `POST /v1/chat/completions`, plain or streamed.
async fn chat_completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let id = format!(
        "chatcmpl-{}-{}",
        now_secs(),
        state.next_id.fetch_add(1, Ordering::Relaxed)
    );
    if request.stream {
        // Refuse what would fail before the 200 and the event stream start.
        let model = state.model.clone();
        let messages = request.messages.clone();
        match tokio::task::spawn_blocking(move || model.check_prompt(&messages)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return ApiError::from(e).into_response(),
            Err(e) => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    format!("tokenizing failed: {e}"),
                    None,
                )
                .into_response();
            }
        }
        stream_completion(state, id, request).into_response()
    } else {
        match complete(state, id, request).await {
            Ok(body) => axum::Json(body).into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// Runs the whole generation and answers one `chat.completion` object.
async fn complete(
    state: Arc<AppState>,
    id: String,
    request: ChatRequest,
) -> Result<Value, ApiError> {
    let model = state.model.clone();
    let generation =
        tokio::task::spawn_blocking(move || model.chat(&request.messages, &request.options))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    format!("generation task failed: {e}"),
                    None,
                )
            })??;
    Ok(json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": MODEL_ID,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": generation.text},
            "logprobs": null,
            "finish_reason": generation.finish_reason.as_str(),
        }],
        "usage": usage(&generation),
    }))
}

/// What the generation thread tells the SSE stream.
enum Chunk {
    Text(String),
    Done(Result<Generation, Error>),
}

/// Streams `chat.completion.chunk` events: a role chunk, text deltas, a finish chunk, a usage chunk
/// (always sent, as with `stream_options.include_usage`), then `[DONE]`.
fn stream_completion(state: Arc<AppState>, id: String, request: ChatRequest) -> impl IntoResponse {
    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let model = state.model.clone();
    tokio::task::spawn_blocking(move || {
        // A failed send means the client left: stop generating.
        let result = model.chat_streaming(&request.messages, &request.options, |text| {
            tx.blocking_send(Chunk::Text(text.to_string())).is_ok()
        });
        let _ = tx.blocking_send(Chunk::Done(result));
    });

    let created = now_secs();
    let chunk = move |choices: Value, usage: Option<Value>| {
        let mut body = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": choices,
        });
        if let Some(u) = usage {
            body["usage"] = u;
        }
        Event::default().data(body.to_string())
    };
    let first = chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
        None,
    );

    let events = futures::stream::unfold(
        (rx, Some(first), false, chunk),
        |(mut rx, pending, finished, chunk)| async move {
            if let Some(event) = pending {
                return Some((vec![event], (rx, None, finished, chunk)));
            }
            if finished {
                return None;
            }
            let events = match rx.recv().await {
                Some(Chunk::Text(text)) => {
                    let event = chunk(
                        json!([{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}]),
                        None,
                    );
                    return Some((vec![event], (rx, None, false, chunk)));
                }
                Some(Chunk::Done(Ok(g))) => vec![
                    chunk(
                        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": g.finish_reason.as_str()}]),
                        None,
                    ),
                    chunk(json!([]), Some(usage(&g))),
                    Event::default().data("[DONE]"),
                ],
                Some(Chunk::Done(Err(e))) => {
                    vec![Event::default().data(ApiError::from(e).body().to_string())]
                }
                None => vec![
                    Event::default().data(
                        ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "server_error",
                            "generation ended unexpectedly",
                            None,
                        )
                        .body()
                        .to_string(),
                    ),
                ],
            };
            Some((events, (rx, None, true, chunk)))
        },
    );
    let events = futures::StreamExt::flat_map(events, |batch| {
        futures::stream::iter(batch.into_iter().map(Ok::<_, Infallible>))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

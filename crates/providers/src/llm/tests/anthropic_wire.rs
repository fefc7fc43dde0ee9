//! The Anthropic client against an in-test server speaking the messages API.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::support::{config, serve};
use crate::llm::{CancelToken, ChatMessage, ChatRequest, ErrorCode, Providers};

const KEY: &str = "sk-ant-test-0123456789abcdef";

type Seen = Arc<Mutex<Vec<Value>>>;

/// Answers like Anthropic: checks the key and version headers; a request forcing a tool gets that
/// tool called, any other gets text plus one `tool_use` block.
async fn messages(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    seen.lock().push(body.clone());
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if key != Some(KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
            ),
        );
    }
    if headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        != Some("2023-06-01")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version missing"}}),
            ),
        );
    }
    let model = body["model"].clone();
    if let Some(forced) = body.pointer("/tool_choice/name").and_then(Value::as_str) {
        return (
            StatusCode::OK,
            Json(json!({
                "id": "msg_2", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "tool_use", "id": "toolu_s", "name": forced, "input": {"answer": "ok", "n": 3}}],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 20, "output_tokens": 5}
            })),
        );
    }
    (
        StatusCode::OK,
        Json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [
                {"type": "thinking", "thinking": "Need the file list.", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_01", "name": "list_files", "input": {"directory_path": "."}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 12, "output_tokens": 8}
        })),
    )
}

async fn models() -> Json<Value> {
    Json(
        json!({"data": [{"id": "claude-sonnet-4-5", "type": "model"}, {"id": "claude-haiku-4-5", "type": "model"}], "has_more": false}),
    )
}

async fn start() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .with_state(seen.clone());
    let addr = serve(app).await;
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn text_thinking_and_tool_use_map_to_our_shapes() {
    let (base, seen) = start().await;
    let providers = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "anthropic"),
        ("ABSTRACTGATEWAY_MODEL", "claude-sonnet-4-5"),
        ("ANTHROPIC_API_KEY", KEY),
        // A trailing `/v1` is tolerated.
        ("ANTHROPIC_BASE_URL", &format!("{base}/v1/")),
    ]));
    let req = ChatRequest {
        messages: vec![
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "What is here?"),
            ChatMessage {
                tool_calls: Some(
                    json!([{"call_id": "toolu_00", "name": "list_files", "arguments": {"directory_path": "/"}}]),
                ),
                ..ChatMessage::new("assistant", "Checking.")
            },
            ChatMessage {
                tool_call_id: Some("toolu_00".into()),
                ..ChatMessage::new("tool", "a.txt")
            },
            ChatMessage::new("user", "And now?"),
        ],
        tools: Some(
            json!([{"name": "list_files", "description": "List files", "parameters": {"type": "object", "properties": {"directory_path": {"type": "string"}}}}]),
        ),
        temperature: Some(0.2),
        ..ChatRequest::default()
    };
    let resp = providers
        .complete(&req, CancelToken::never())
        .await
        .expect("anthropic completion");
    assert_eq!(resp.content, "Let me look.");
    assert_eq!(resp.reasoning.as_deref(), Some("Need the file list."));
    assert_eq!(resp.finish_reason, "tool_calls");
    assert_eq!(
        (
            resp.usage.input_tokens,
            resp.usage.output_tokens,
            resp.usage.total_tokens
        ),
        (12, 8, 20)
    );
    assert_eq!(
        (resp.provider.as_str(), resp.model.as_str()),
        ("anthropic", "claude-sonnet-4-5")
    );
    assert_eq!(resp.tool_calls.len(), 1);
    assert_eq!(resp.tool_calls[0].call_id.as_deref(), Some("toolu_01"));
    assert_eq!(resp.tool_calls[0].name, "list_files");
    assert_eq!(resp.tool_calls[0].arguments, json!({"directory_path": "."}));

    let body = seen.lock()[0].clone();
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(
        body["tools"],
        json!([{"name": "list_files", "description": "List files", "input_schema": {"type": "object", "properties": {"directory_path": {"type": "string"}}}}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "What is here?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_00", "name": "list_files", "input": {"directory_path": "/"}}
            ]},
            // The tool answer and the next user turn merge into one user turn.
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_00", "content": "a.txt"},
                {"type": "text", "text": "And now?"}
            ]}
        ])
    );
}

#[tokio::test]
async fn structured_output_goes_through_a_forced_tool() {
    let (base, seen) = start().await;
    let providers = Providers::new(config(&[
        ("ANTHROPIC_API_KEY", KEY),
        ("ANTHROPIC_BASE_URL", &base),
    ]));
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}}, "required": ["answer"]});
    let mut req = ChatRequest {
        provider: Some("anthropic".into()),
        model: Some("claude-haiku-4-5".into()),
        messages: vec![ChatMessage::new("user", "Answer.")],
        response_schema: Some(schema.clone()),
        max_tokens: Some(256),
        ..ChatRequest::default()
    };
    let resp = providers
        .complete(&req, CancelToken::never())
        .await
        .expect("structured completion");
    assert_eq!(resp.content, r#"{"answer":"ok","n":3}"#);
    assert_eq!(resp.finish_reason, "stop");
    assert!(resp.tool_calls.is_empty());
    let body = seen.lock()[0].clone();
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "response"})
    );
    assert_eq!(body["tools"][0]["input_schema"], schema);
    assert_eq!(body["max_tokens"], 256);
    assert!(body.get("system").is_none());

    // A wrong key is refused by the server: access-denied, not retried.
    let wrong = Providers::new(config(&[
        ("ANTHROPIC_API_KEY", "sk-ant-wrong-key-000"),
        ("ANTHROPIC_BASE_URL", &base),
    ]));
    req.response_schema = None;
    let err = wrong
        .complete(&req, CancelToken::never())
        .await
        .expect_err("wrong key");
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(!err.retryable);
    assert!(
        err.message.contains("HTTP 401") && err.message.contains("invalid x-api-key"),
        "{}",
        err.message
    );
    assert_eq!(seen.lock().len(), 2);
}

#[tokio::test]
async fn anthropic_models_are_listed() {
    let (base, _) = start().await;
    let providers = Providers::new(config(&[
        ("ANTHROPIC_API_KEY", KEY),
        ("ANTHROPIC_BASE_URL", &base),
    ]));
    let models = providers
        .list_models(Some("anthropic"))
        .await
        .expect("models");
    assert_eq!(models, ["claude-sonnet-4-5", "claude-haiku-4-5"]);
}

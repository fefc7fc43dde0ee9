//! An OpenAI-compatible stand-in that drives a ReAct agent through one tool call: a conversation with no
//! tool answer yet gets a `list_files` tool call, one with a tool answer gets a final text (the first such
//! answer after `final_delay`, so a test can kill the gateway while that call is in flight). It records every
//! request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

struct Inner {
    final_delay: Duration,
    delayed: AtomicBool,
    requests: Mutex<Vec<Value>>,
}

/// A running stand-in (on its own thread until the process ends).
pub struct ScriptedLlm {
    /// Its OpenAI-compatible base URL (`.../v1`).
    pub base_url: String,
    inner: Arc<Inner>,
}

impl ScriptedLlm {
    /// Starts on a free loopback port.
    pub fn start(final_delay: Duration) -> ScriptedLlm {
        let inner = Arc::new(Inner {
            final_delay,
            delayed: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(inner.clone());
        let base_url = format!("http://{}/v1", super::standin::serve_on_thread(app));
        ScriptedLlm { base_url, inner }
    }

    /// Every request body received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.requests.lock().clone()
    }

    /// Requests that had no tool answer yet (the ones that asked for the tool call).
    pub fn first_turns(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| !has_tool_answer(r))
            .count()
    }

    /// Requests that carried the tool answer (the ones answered with the final text).
    pub fn final_turns(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| has_tool_answer(r))
            .count()
    }
}

fn has_tool_answer(req: &Value) -> bool {
    req["messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "scripted", "object": "model"}]}))
}

async fn chat(State(inner): State<Arc<Inner>>, Json(req): Json<Value>) -> Json<Value> {
    inner.requests.lock().push(req.clone());
    let message = if has_tool_answer(&req) {
        if !inner.delayed.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(inner.final_delay).await;
        }
        json!({"role": "assistant", "content": "done: listed the workspace"})
    } else {
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "list_files", "arguments": "{\"directory_path\": \".\"}"}}]})
    };
    let finish = if message["tool_calls"].is_array() {
        "tool_calls"
    } else {
        "stop"
    };
    Json(
        json!({"id": "chatcmpl-scripted", "object": "chat.completion", "created": 0,
        "model": req["model"].as_str().unwrap_or("scripted"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
    )
}

//! Test helpers: configurations from literal variables, the shared fake LLM process, axum servers.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::Value;

use crate::llm::{ChatMessage, ChatRequest, LlmConfig};

/// A configuration that sees only `vars` as its environment.
pub fn config(vars: &[(&str, &str)]) -> LlmConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LlmConfig::from_vars(move |name| map.get(name).cloned())
}

/// A request with one user message.
pub fn ask(provider: Option<&str>, model: Option<&str>, text: &str) -> ChatRequest {
    ChatRequest {
        provider: provider.map(str::to_string),
        model: model.map(str::to_string),
        messages: vec![ChatMessage::new("user", text)],
        ..ChatRequest::default()
    }
}

/// The fixtures' LLM stand-in (`base` is its OpenAI-compatible URL).
pub struct FakeLlm {
    pub base: String,
    llm: abstractgateway_testkit::FixtureLlm,
}

impl FakeLlm {
    /// Starts the stand-in.
    pub fn start() -> FakeLlm {
        let llm = abstractgateway_testkit::FixtureLlm::start();
        FakeLlm {
            base: llm.base_url(),
            llm,
        }
    }

    /// The POST bodies the stand-in received, in order.
    pub fn posted_bodies(&self) -> Vec<Value> {
        self.llm.posted_bodies()
    }
}

/// Serves `app` on a free loopback port until the test's runtime ends; returns its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A minimal OpenAI chat completion answer.
pub fn openai_answer(content: &str) -> Value {
    serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    })
}

//! Test helpers: configurations from literal variables, the shared fake LLM process, axum servers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::llm::{ChatMessage, ChatRequest, LlmConfig};

/// The shared fixtures (`AG_SHARED_DIR`, else the checkout's sibling `shared/`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("AG_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

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

/// The fixture's fake LLM server, running as a child process for the life of this value.
pub struct FakeLlm {
    child: Child,
    /// `http://127.0.0.1:<port>/v1`.
    pub base: String,
    /// The request log the server appends to (one JSON object per line).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeLlm {
    /// Starts the server on a free port and waits for its `LISTENING <port>` line.
    pub fn start() -> FakeLlm {
        let script = shared_dir().join("fixtures/fake_llm_server.py");
        assert!(script.is_file(), "missing fixture {}", script.display());
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0", "--log"])
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 fake_llm_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read LISTENING line");
        let port: u16 = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the fake LLM: {line:?}"));
        FakeLlm {
            child,
            base: format!("http://127.0.0.1:{port}/v1"),
            log,
            _dir: dir,
        }
    }

    /// The POST bodies the server received, in order.
    pub fn posted_bodies(&self) -> Vec<Value> {
        read_log(&self.log)
            .into_iter()
            .filter(|e| e.get("method").and_then(Value::as_str) == Some("POST"))
            .filter_map(|e| e.get("body").cloned())
            .collect()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
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

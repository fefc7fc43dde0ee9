//! The goldens' deterministic LLM stand-in (`shared/fixtures/fake_llm_server.py`) on a free loopback port,
//! and a provider configuration pointing at it as the goldens' host setup says.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use abstractgateway::llm::LlmConfig;

use super::shared;

/// A running fake server; killed when dropped.
pub struct FakeLlm {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl FakeLlm {
    /// Starts the server and waits for its `LISTENING <port>` line.
    pub fn start() -> FakeLlm {
        Self::spawn(None)
    }

    /// Starts the server logging every request it receives (one JSON line each, body included) to `log`.
    pub fn start_logged(log: &std::path::Path) -> FakeLlm {
        Self::spawn(Some(log))
    }

    fn spawn(log: Option<&std::path::Path>) -> FakeLlm {
        let mut cmd = Command::new("python3");
        cmd.arg(shared().join("fixtures/fake_llm_server.py"))
            .args(["--port", "0"]);
        if let Some(log) = log {
            cmd.arg("--log").arg(log);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs fake_llm_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("fake server prints its port");
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the fake server: {line:?}"));
        FakeLlm { child, port }
    }

    /// The OpenAI-compatible base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Providers as the goldens were recorded: every OpenAI-compatible one at the fake, default lmstudio/fake-model.
    pub fn config(&self) -> LlmConfig {
        let url = self.base_url();
        LlmConfig::from_vars(|k| match k {
            "LMSTUDIO_BASE_URL" | "OPENAI_BASE_URL" | "VLLM_BASE_URL" => Some(url.clone()),
            "OPENAI_API_KEY" => Some("sk-fake".into()),
            "ABSTRACTGATEWAY_PROVIDER" => Some("lmstudio".into()),
            "ABSTRACTGATEWAY_MODEL" => Some("fake-model".into()),
            _ => None,
        })
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

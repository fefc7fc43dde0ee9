//! What the tests of every crate share (a dev-dependency only): where the shared fixtures are, and the
//! one LLM stand-in, the fixtures' deterministic OpenAI-compatible `fake_llm_server.py`, run as a child
//! process that logs every request it receives; and real nats-server clusters for the cluster-mode tests
//! ([`nats::NatsCluster`]).

pub mod nats;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The shared fixtures: `AG_SHARED_DIR`, else `shared/` beside the checkout.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AG_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    repo_root().join("../shared")
}

/// The root of the repository under test. Found from the package under test at run time (cargo sets its
/// `CARGO_MANIFEST_DIR` when it runs a test), never from where this crate was compiled: a build dir shared by
/// two clones may hold this crate built in the other one.
pub fn repo_root() -> PathBuf {
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    here.ancestors()
        .find(|d| d.join("Cargo.lock").is_file() && d.join("crates").is_dir())
        .map(PathBuf::from)
        .unwrap_or(here)
}

/// The fixtures' LLM stand-in, running for the life of this value.
pub struct FixtureLlm {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The request log it appends to (one JSON object per request, body included).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FixtureLlm {
    /// Starts the stand-in on a free loopback port and waits until it listens.
    pub fn start() -> FixtureLlm {
        let script = shared_dir().join("fixtures/fake_llm_server.py");
        assert!(script.is_file(), "missing fixture {}", script.display());
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0", "--log"])
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs fake_llm_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the stand-in prints its port");
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the LLM stand-in: {line:?}"));
        FixtureLlm {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Its OpenAI-compatible base URL (`http://127.0.0.1:<port>/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Every request it logged so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        read_log(&self.log)
    }

    /// The bodies of the POST requests it received, in order.
    pub fn posted_bodies(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|e| e.get("method").and_then(Value::as_str) == Some("POST"))
            .filter_map(|e| e.get("body").cloned())
            .collect()
    }

    /// Chat completions whose body mentions `needle` (a tag a test put in its prompt).
    pub fn completions_mentioning(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("chat/completions") && l.contains(needle))
            .count()
    }
}

impl Drop for FixtureLlm {
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

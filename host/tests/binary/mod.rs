//! Shared harness of the server tests: starts the real `abstractgateway serve` binary on a loopback port with a
//! temp data dir and the repository's no-LLM bundles, and talks to it with a real HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The token every test server is started with.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// The repository's `bundles/` directory (the five no-LLM fixture bundles).
pub fn bundles_dir() -> PathBuf {
    abstractgateway_testkit::repo_root().join("bundles")
}

/// A running server process and its directories.
pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    pub dir: PathBuf,
    pub client: reqwest::Client,
    env: Vec<(String, String)>,
    /// The command line after the binary (`serve --host 127.0.0.1 --port 0` unless started with another).
    args: Vec<String>,
    /// Every line the process wrote on stderr so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _tmp: Option<tempfile::TempDir>,
}

/// The default command line of a test server.
fn serve_args() -> Vec<String> {
    ["serve", "--host", "127.0.0.1", "--port", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The tests' HTTP client: a server that stops answering fails the test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// A zip of `entries` (name, bytes), deflated.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).expect("entry");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// Copies the fixture bundles into `flows`.
pub fn copy_bundles(flows: &Path) {
    std::fs::create_dir_all(flows).unwrap();
    for e in std::fs::read_dir(bundles_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "flow") {
            std::fs::copy(&p, flows.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn spawn(
    dir: &Path,
    env: &[(String, String)],
    args: &[String],
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_abstractgateway"));
    cmd.args(args);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ABSTRACTGATEWAY_FLOWS_DIR", dir.join("flows"))
        .env("ABSTRACTGATEWAY_DATA_DIR", dir.join("data"))
        .env("ABSTRACTGATEWAY_AUTH_TOKEN", TOKEN)
        .env("ABSTRACTGATEWAY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn server");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = log.lock() {
                l.push(line.clone());
            }
            if !sent && let Some(addr) = line.strip_prefix("abstractgateway listening on ") {
                let _ = tx.send(Ok(addr.to_string()));
                sent = true;
            } else if !sent && line.starts_with("error:") {
                let _ = tx.send(Err(line.clone()));
                sent = true;
            }
            if std::env::var_os("AG_TEST_SERVER_LOG").is_some() {
                eprintln!("[server] {line}");
            }
        }
        if !sent {
            let _ = tx.send(Err("server exited before listening".into()));
        }
    });
    // A fresh data dir compiles every built-in component before the server listens: a few seconds on an idle
    // machine, several times that on one busy with other test servers and builds. The bound only catches a
    // server that never comes up.
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(addr)) => (child, addr),
        Ok(Err(e)) => {
            let _ = child.kill();
            panic!("server did not start: {e}");
        }
        Err(_) => {
            let _ = child.kill();
            panic!("server did not start within 120 s");
        }
    }
}

impl Server {
    /// Starts a server with the fixture bundles and extra environment.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        copy_bundles(&tmp.path().join("flows"));
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, env).await;
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing directory (`flows/`, `data/`).
    pub async fn start_in(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_cmd(dir, env, &[]).await
    }

    /// Starts the binary with command line `args` (empty: `serve` on a free loopback port) on an existing
    /// directory; the process must print `abstractgateway listening on <url>`.
    pub async fn start_cmd(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args = if args.is_empty() {
            serve_args()
        } else {
            args.iter().map(|s| s.to_string()).collect()
        };
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (child, base) = spawn(dir, &env, &args, stderr.clone());
        let s = Server {
            child: Some(child),
            base,
            dir: dir.to_path_buf(),
            client: client(),
            env,
            args,
            stderr,
            _tmp: None,
        };
        s.wait_healthy().await;
        s
    }

    /// A handle on a server another handle started (it does not stop the process when dropped).
    pub fn attach(base: &str, dir: &Path) -> Server {
        Server {
            child: None,
            base: base.to_string(),
            dir: dir.to_path_buf(),
            client: client(),
            env: Vec::new(),
            args: serve_args(),
            stderr: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
            _tmp: None,
        }
    }

    /// True once the process wrote a stderr line containing `text`.
    pub fn said(&self, text: &str) -> bool {
        self.stderr
            .lock()
            .map(|l| l.iter().any(|line| line.contains(text)))
            .unwrap_or(false)
    }

    /// The last `n` stderr lines, for a failure message.
    pub fn stderr_tail(&self, n: usize) -> String {
        self.stderr
            .lock()
            .map(|l| l[l.len().saturating_sub(n)..].join("\n"))
            .unwrap_or_default()
    }

    /// Polls `/api/health` until it answers 200.
    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.client.get(self.url("/api/health")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server never became healthy");
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the token; returns status and JSON (Null when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON with the token.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Uploads `.flow` bytes as the multipart field `file` (named `name`), with the `overwrite` field when
    /// given, through `client` (the harness's own unless a test needs other timeouts).
    pub async fn upload_with(
        &self,
        client: &reqwest::Client,
        name: &str,
        bytes: &[u8],
        overwrite: Option<bool>,
    ) -> (u16, Value) {
        // A multipart/form-data body built by hand, as the seed's clients send it.
        let boundary = "----agtestboundary7d1";
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        if let Some(overwrite) = overwrite {
            body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\n{overwrite}").as_bytes());
        }
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = client
            .post(self.url("/api/gateway/bundles/upload"))
            .bearer_auth(TOKEN)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// [`Server::upload_with`] through the harness's client.
    pub async fn upload(&self, name: &str, bytes: &[u8], overwrite: Option<bool>) -> (u16, Value) {
        self.upload_with(&self.client, name, bytes, overwrite).await
    }

    /// Starts a run and returns its id.
    pub async fn start_run(&self, bundle: &str, input: Value) -> String {
        let (st, v) = self
            .post(
                "/api/gateway/runs/start",
                json!({"bundle_id": bundle, "input_data": input}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v["run_id"].as_str().unwrap().to_string()
    }

    /// Sends a command; returns the answer.
    pub async fn command(&self, id: &str, run_id: &str, ty: &str, payload: Value) -> (u16, Value) {
        self.post(
            "/api/gateway/commands",
            json!({"command_id": id, "run_id": run_id, "type": ty, "payload": payload}),
        )
        .await
    }

    /// Polls command `command_id` until it has an outcome (10 s at most); returns the outcome.
    pub async fn wait_outcome(&self, command_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, c) = self
                .get(&format!("/api/gateway/commands/{command_id}"))
                .await;
            if !c["outcome"].is_null() {
                return c["outcome"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "command {command_id} never got an outcome: {c}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls the run until `pred` holds on its summary (10 s at most).
    pub async fn wait_run(&self, run_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (st, v) = self.get(&format!("/api/gateway/runs/{run_id}")).await;
            assert_eq!(st, 200, "{v}");
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} never reached the expected state: {v}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for a status.
    pub async fn wait_status(&self, run_id: &str, status: &str) -> Value {
        self.wait_run(run_id, |v| v["status"] == status).await
    }

    /// The run's ledger (up to 1,000 records) as the API serves it.
    pub async fn ledger(&self, run_id: &str) -> Vec<Value> {
        let (st, v) = self
            .get(&format!("/api/gateway/runs/{run_id}/ledger?limit=1000"))
            .await;
        assert_eq!(st, 200, "{v}");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the run until it is completed, failed or cancelled (`secs` at most); returns its summary.
    pub async fn wait_done(&self, run_id: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (_, v) = self.get(&format!("/api/gateway/runs/{run_id}")).await;
            if ["completed", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} did not finish: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs not yet finished (running or waiting), as the API lists them.
    pub async fn runs_in_flight(&self) -> usize {
        let mut n = 0;
        for status in ["running", "waiting"] {
            let (st, v) = self
                .get(&format!("/api/gateway/runs?status={status}&limit=500"))
                .await;
            assert_eq!(st, 200, "{v}");
            n += v["items"].as_array().map_or(0, Vec::len);
        }
        n
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process and starts it again on the same directories.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, base) = spawn(&self.dir, &self.env, &self.args, self.stderr.clone());
        self.child = Some(child);
        self.base = base;
        self.wait_healthy().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One parsed SSE event.
#[derive(Debug, Clone, Default)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub comment: Option<String>,
    pub retry: Option<String>,
}

/// Incremental SSE reader over a streaming response.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// Wraps a streaming response.
    pub fn new(resp: reqwest::Response) -> Self {
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (None when the stream ends); panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut ev = Sse::default();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(": ") {
                        ev.comment = Some(c.to_string());
                    } else if let Some((k, v)) = line.split_once(": ") {
                        match k {
                            "id" => ev.id = Some(v.into()),
                            "event" => ev.event = Some(v.into()),
                            "data" => ev.data = Some(v.into()),
                            "retry" => ev.retry = Some(v.into()),
                            _ => {}
                        }
                    }
                }
                return Some(ev);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("SSE event timed out")
                .unwrap();
            match chunk {
                Some(c) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                None => return None,
            }
        }
    }

    /// The next `step`/`done` event, skipping keep-alives and `retry:`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Sse> {
        loop {
            let ev = self.next(timeout).await?;
            if ev.event.is_some() {
                return Some(ev);
            }
        }
    }
}

/// Opens the ledger stream of `run_id` with extra query and headers.
pub async fn open_stream(
    s: &Server,
    run_id: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> SseReader {
    let mut req = s
        .client
        .get(s.url(&format!("/api/gateway/runs/{run_id}/ledger/stream{query}")))
        .bearer_auth(TOKEN);
    if let Some(l) = last_event_id {
        req = req.header("Last-Event-ID", l);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    SseReader::new(resp)
}

/// The record inside a `step` event's data.
pub fn record(ev: &Sse) -> Value {
    let v: Value = serde_json::from_str(ev.data.as_deref().unwrap()).unwrap();
    v["record"].clone()
}

/// A multipart body with text `fields` and, when given, a `file` part `(filename, content type, bytes)`.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----agattachboundary42";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, ct, bytes)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Server {
    /// `POST /api/gateway/attachments/upload` with text `fields` and an optional `file` part.
    pub async fn upload_attachment(
        &self,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> (u16, Value) {
        let (ct, body) = multipart(fields, file);
        let r = self
            .client
            .post(self.url("/api/gateway/attachments/upload"))
            .bearer_auth(TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("upload");
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }
}

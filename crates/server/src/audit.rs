//! JSONL audit log of write requests (the seed's line shape), written by a background thread, rotated by size;
//! tokens appear only as sha256 fingerprints. Also the layer that produces the lines.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::time::Instant;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::request_id::{ClientIp, RequestId};
use super::stack::Rest;
use super::state::AppState;

/// File name of the live audit log inside the data dir.
pub const AUDIT_FILE: &str = "audit_log.jsonl";

/// What the auth layer learned, for the audit line.
#[derive(Clone, Debug, Default)]
pub struct AuthInfo {
    /// Whether this request needed a token.
    pub required: bool,
    /// First 12 hex of sha256 of the presented token.
    pub token_fp: Option<String>,
}

/// First 12 hex digits of sha256(token): identifies a token in logs without revealing it.
pub fn token_fingerprint(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    hex::encode(d)[..12].to_string()
}

/// Handle of the writer thread. Dropping it writes every line queued so far before it returns, so a gateway
/// that shuts down cleanly loses no audit line.
pub struct AuditLog {
    /// `None` once dropping.
    tx: Option<Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl AuditLog {
    /// Starts the writer for `<dir>/audit_log.jsonl`.
    pub fn start(dir: &Path, max_bytes: u64, rotations: usize) -> std::io::Result<AuditLog> {
        fs::create_dir_all(dir)?;
        let path = dir.join(AUDIT_FILE);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let (tx, rx) = channel::<String>();
        let p = path.clone();
        let d = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
                // The lines queued meanwhile go out in one write: under load a request costs no syscall of its
                // own here. After each write the thread lingers a moment before it waits on the queue again:
                // a request queuing a line wakes the thread only if it is waiting, so under load (a line every
                // few microseconds) requests stop paying a futex wake-up each, and lines reach the file at most
                // `LINGER` later. When idle, the thread waits on the queue as before (no polling).
                let mut buf = Vec::new();
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    while let Some(line) = next.take() {
                        if max_bytes > 0 && size >= max_bytes {
                            write_out(&mut file, &mut buf);
                            match rotate(&d, &p, rotations) {
                                Ok(f) => {
                                    file = f;
                                    size = 0;
                                }
                                Err(e) => tracing::error!("audit log rotation failed: {e}"),
                            }
                        }
                        buf.extend_from_slice(line.as_bytes());
                        buf.push(b'\n');
                        size += line.len() as u64 + 1;
                        if buf.len() < MAX_BATCH_BYTES {
                            next = rx.try_recv().ok();
                        }
                    }
                    write_out(&mut file, &mut buf);
                    std::thread::sleep(LINGER);
                }
            })?;
        Ok(AuditLog {
            tx: Some(tx),
            thread: Some(thread),
            path,
        })
    }

    /// Path of the live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one line.
    pub fn write(&self, line: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(line);
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The writer drains the queue, then sees it closed and ends: at most one linger and one write away.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The most bytes of lines gathered before they are written.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// How long the writer lets lines gather after a write before it waits for the next one.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Writes the gathered lines and empties the buffer (a failed write is logged; the lines are dropped, as a
/// failed single-line write dropped its line).
fn write_out(file: &mut File, buf: &mut Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    if let Err(e) = file.write_all(buf) {
        tracing::error!("audit log write failed: {e}");
    }
    buf.clear();
}

fn rotate(dir: &Path, path: &Path, keep: usize) -> std::io::Result<File> {
    let ts = crate::time::now_iso().replace([':', '-'], "");
    fs::rename(path, dir.join(format!("audit_log.{ts}.jsonl")))?;
    let mut rotated: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("audit_log.") && n.ends_with(".jsonl") && n != AUDIT_FILE
            })
        })
        .collect();
    rotated.sort();
    while rotated.len() > keep {
        let old = rotated.remove(0);
        let _ = fs::remove_file(old);
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn redact_query(q: &str) -> String {
    q.split('&')
        .filter(|p| !p.is_empty())
        .take(50)
        .map(|p| format!("{}=<redacted>", p.split('=').next().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("&")
}

/// One line of the log, in the seed's key order; the optional keys are absent, not null, when unknown.
#[derive(Serialize)]
struct AuditLine<'a> {
    ts: String,
    request_id: &'a str,
    ip: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    status: u16,
    duration_ms: u64,
    auth_required: bool,
    auth_token_fp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "no_headers")]
    headers: &'a Map<String, Value>,
}

fn no_headers(h: &&Map<String, Value>) -> bool {
    h.is_empty()
}

/// Layer: after the response, writes one line per POST/PUT/PATCH/DELETE under `/api/gateway`.
pub async fn layer(st: &AppState, req: Request, next: impl Rest) -> Response {
    let Some(audit) = st.audit.as_ref() else {
        return next(req).await;
    };
    let is_write = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !is_write || !req.uri().path().starts_with("/api/gateway") {
        return next(req).await;
    }
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(redact_query).unwrap_or_default();
    let h = req.headers();
    let header_str = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let origin = header_str("origin");
    let ua = header_str("user-agent");
    let bytes_in = header_str("content-length").and_then(|v| v.parse::<u64>().ok());
    let mut extra = Map::new();
    for name in &st.cfg.audit_headers {
        if let Some(v) = header_str(name) {
            extra.insert(name.clone(), Value::String(v.chars().take(200).collect()));
        }
    }
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    let auth_cell = std::sync::Arc::new(parking_lot::Mutex::new(AuthInfo::default()));
    let mut req = req;
    req.extensions_mut().insert(auth_cell.clone());
    let resp = next(req).await;
    let auth = auth_cell.lock().clone();
    let line = AuditLine {
        ts: crate::time::now_iso(),
        request_id: &request_id,
        ip: &ip,
        method: &method,
        path: &path,
        query: &query,
        status: resp.status().as_u16(),
        duration_ms: started.elapsed().as_millis() as u64,
        auth_required: auth.required,
        auth_token_fp: auth.token_fp.as_deref(),
        origin: origin.as_deref(),
        user_agent: ua.as_deref(),
        bytes_in,
        headers: &extra,
    };
    match serde_json::to_string(&line) {
        Ok(text) => audit.write(text),
        Err(e) => tracing::error!("audit line not encoded: {e}"),
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_newest() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::start(dir.path(), 200, 2).unwrap();
        for i in 0..40 {
            log.write(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(40)));
            if i % 5 == 4 {
                std::thread::sleep(std::time::Duration::from_millis(15));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.contains(&AUDIT_FILE.to_string()));
        assert!(names.len() <= 3, "{names:?}");
        assert_eq!(token_fingerprint("abc"), "ba7816bf8f01");
        assert_eq!(redact_query("token=x&a=1"), "token=<redacted>&a=<redacted>");
    }

    /// Polls the live file until it holds `n` lines (bounded), and returns them.
    fn lines_when(path: &Path, n: usize) -> Vec<String> {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn a_burst_lands_whole_and_in_order_and_a_line_after_a_quiet_spell_still_lands() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::start(dir.path(), 0, 2).unwrap();
        // Lines queued from several threads while the writer lingers or writes: none lost, none doubled, and
        // each thread's lines in its order.
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..2_500 {
                        log.write(format!("{{\"t\":{t},\"i\":{i}}}"));
                    }
                });
            }
        });
        let lines = lines_when(log.path(), 10_000);
        assert_eq!(lines.len(), 10_000);
        for t in 0..4 {
            let mine: Vec<u64> = lines
                .iter()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["t"] == t)
                .map(|v| v["i"].as_u64().unwrap())
                .collect();
            assert_eq!(mine, (0..2_500).collect::<Vec<_>>());
        }
        // The writer went back to waiting on the queue: a later line wakes it.
        std::thread::sleep(std::time::Duration::from_millis(50));
        log.write("{\"late\":true}".into());
        let lines = lines_when(log.path(), 10_001);
        assert_eq!(lines.last().map(String::as_str), Some("{\"late\":true}"));
    }

    #[test]
    fn dropping_the_log_writes_every_queued_line_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::start(dir.path(), 0, 2).unwrap();
        let path = log.path().to_path_buf();
        for i in 0..5_000 {
            log.write(format!("{{\"i\":{i}}}"));
        }
        drop(log);
        // Read at once, without waiting: the drop returned only after the writer had written everything.
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5_000);
        assert_eq!(text.lines().last(), Some("{\"i\":4999}"));
    }
}

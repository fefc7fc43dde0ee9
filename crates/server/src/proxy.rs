//! The API front of a split deployment (`serve --no-runner` beside `abstractgateway runner`): the
//! runner process is the one writer of the data dir and serves the API on a private loopback port
//! (written to `<data_dir>/runner.addr`); the front forwards every request to it, streams included,
//! so uploads, commands and runs all reach the process that executes them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use serde_json::json;

/// The file where a runner publishes the address of its private API listener.
pub fn addr_file(data_dir: &Path) -> PathBuf {
    data_dir.join("runner.addr")
}

struct Front {
    data_dir: PathBuf,
    client: reqwest::Client,
}

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
    )
}

fn unavailable(front: &Front, why: &str) -> Response {
    let detail = format!(
        "No runner reachable for data dir {} ({why}): start `abstractgateway runner` with the same ABSTRACTGATEWAY_DATA_DIR",
        front.data_dir.display()
    );
    let body = serde_json::to_vec(&json!({"detail": detail})).unwrap_or_default();
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::RETRY_AFTER, "1")
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn forward(
    State(front): State<Arc<Front>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let addr = match tokio::fs::read_to_string(addr_file(&front.data_dir)).await {
        Ok(a) if !a.trim().is_empty() => a.trim().to_string(),
        _ => return unavailable(&front, "no runner has published its address"),
    };
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut rb = front.client.request(parts.method, format!("{addr}{path}"));
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) && k.as_str() != "x-forwarded-for" {
            rb = rb.header(k, v);
        }
    }
    // The runner trusts this header from its front only: lockout and audit see the real client.
    rb = rb.header("x-forwarded-for", peer.ip().to_string());
    let rb = rb.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return unavailable(&front, &format!("runner at {addr}: {e}")),
    };
    let mut out = Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if !hop_by_hop(k) {
            out = out.header(k, v);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|_| unavailable(&front, "bad response"))
}

/// The front's router: every path is forwarded to the runner of `data_dir`.
pub fn front(data_dir: &Path) -> Router {
    let front = Arc::new(Front {
        data_dir: data_dir.to_path_buf(),
        client: reqwest::Client::new(),
    });
    Router::new().fallback(forward).with_state(front)
}

//! Body caps that count the bytes actually received (with or without `Content-Length`) and separate
//! concurrency caps for SSE streams and everything else (429 + `Retry-After: 1`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use super::error::middleware_reject;
use super::stack::Rest;
use super::state::AppState;

/// Slack the seed allows on top of upload caps for multipart framing.
const MULTIPART_SLACK: u64 = 2 * 1024 * 1024;
/// Most bytes of a request's URI (path and query); longer ones get 414 before any other work.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// How long a request may wait for a concurrency slot.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(10);

/// The two concurrency pools.
pub struct Caps {
    general: Arc<Semaphore>,
    sse: Arc<Semaphore>,
}

impl Caps {
    /// `general` in-flight requests and `sse` open streams.
    pub fn new(general: usize, sse: usize) -> Self {
        Caps {
            general: Arc::new(Semaphore::new(general)),
            sse: Arc::new(Semaphore::new(sse)),
        }
    }
}

fn too_large(n: u64, cap: u64) -> Response {
    middleware_reject(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Payload Too Large ({n} bytes > {cap} bytes)"),
    )
}

/// Body cap for a write to `path`.
fn body_cap(st: &AppState, path: &str) -> u64 {
    let c = &st.cfg;
    let upload = |base: u64| {
        let cap = base.saturating_add(MULTIPART_SLACK);
        if c.max_upload_body_bytes > 0 {
            cap.min(c.max_upload_body_bytes)
        } else {
            cap
        }
    };
    if path.ends_with("/attachments/upload") {
        upload(c.max_attachment_bytes)
    } else if path.ends_with("/bundles/upload") {
        upload(c.max_bundle_bytes)
    } else {
        c.max_body_bytes
    }
}

/// Refuses a URI longer than [`MAX_URI_BYTES`] (no route takes one; a long one only costs parsing).
pub async fn uri_layer(req: Request, next: impl Rest) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        return middleware_reject(
            StatusCode::URI_TOO_LONG,
            &format!("URI Too Long ({len} bytes > {MAX_URI_BYTES} bytes)"),
        );
    }
    next(req).await
}

/// The body-cap layer (writes under `/api/gateway` only).
pub async fn body_layer(st: &AppState, req: Request, next: impl Rest) -> Response {
    let write = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !st.cfg.security || !write || !req.uri().path().starts_with("/api/gateway") {
        return next(req).await;
    }
    let cap = body_cap(st, req.uri().path());
    if cap == 0 {
        return next(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared
        && n > cap
    {
        return too_large(n, cap);
    }
    // Count what actually arrives: a lying or absent Content-Length cannot smuggle a larger body in.
    let (parts, body) = req.into_parts();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(cap) as usize);
    let mut stream = body.into_data_stream();
    // A body that trickles in holds a connection and a buffer: it must arrive whole within the body timeout.
    let deadline = tokio::time::Instant::now() + st.cfg.body_timeout;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                return middleware_reject(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "Request body not received within {} s",
                        st.cfg.body_timeout.as_secs_f64()
                    ),
                );
            }
        };
        match chunk {
            Ok(bytes) => {
                if (buf.len() + bytes.len()) as u64 > cap {
                    let n = declared.unwrap_or((buf.len() + bytes.len()) as u64);
                    return too_large(n.max(cap + 1), cap);
                }
                buf.extend_from_slice(&bytes);
            }
            Err(e) => {
                return middleware_reject(
                    StatusCode::BAD_REQUEST,
                    &format!("Failed to read request body: {e}"),
                );
            }
        }
    }
    next(Request::from_parts(parts, Body::from(buf))).await
}

/// The concurrency layer: SSE streams hold their slot for the life of the stream.
pub async fn concurrency_layer(st: &AppState, req: Request, next: impl Rest) -> Response {
    if !st.cfg.security || !req.uri().path().starts_with("/api/gateway") {
        return next(req).await;
    }
    let sse = req.uri().path().ends_with("/ledger/stream");
    let sem = if sse {
        st.caps.sse.clone()
    } else {
        st.caps.general.clone()
    };
    let permit = match tokio::time::timeout(ACQUIRE_TIMEOUT, sem.acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            let mut r = middleware_reject(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests (concurrency limit)",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    let resp = next(req).await;
    if !sse {
        // Ordinary answers are complete once built; keeping their framing (content-length) matters more.
        drop(permit);
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // The permit travels with the body and is released when the body is done or dropped.
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Reads a whole (already capped) body.
pub async fn read_body(body: Body) -> Result<bytes::Bytes, axum::Error> {
    body.collect().await.map(|c| c.to_bytes())
}

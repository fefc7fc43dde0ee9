//! Health and the audit tail.

use std::io::{Read, Seek, SeekFrom};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::audit::AUDIT_FILE;
use crate::error::{ApiError, ApiResult, json_response};
use crate::extract::QueryParams;
use crate::state::SharedState;

fn ok(v: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &v))
}

/// `GET /api/health`: the seed's body, plus `warnings` when some bundle did not load.
pub async fn health(State(st): State<SharedState>) -> ApiResult {
    let warnings = st.warnings.read().clone();
    let mut v = json!({"status": "healthy", "service": "abstractgateway"});
    if !warnings.is_empty() {
        v["warnings"] = json!(warnings);
    }
    ok(v)
}

/// `GET /api/ready`: whether this node can serve now, for a load balancer (open, like `/api/health`). One machine:
/// ready whenever it answers. A cluster node: ready while connected to the cluster (its replica caught up before it
/// started listening); 503 otherwise, with what it sees.
pub async fn ready(State(st): State<SharedState>) -> ApiResult {
    let shards = st.gw.running_shards();
    let answer = match st.readiness.get() {
        Some(probe) => probe(),
        None => crate::state::Readiness {
            ready: true,
            detail: json!({"store": "embedded", "runner": !shards.is_empty()}),
        },
    };
    let mut body = json!({"ready": answer.ready, "service": "abstractgateway"});
    if let (Some(b), Some(d)) = (body.as_object_mut(), answer.detail.as_object()) {
        b.extend(d.clone());
    }
    body["shards"] = json!(shards);
    let status = if answer.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(status, &body))
}

/// `GET /api/gateway/audit/tail?max_bytes=`.
pub async fn audit_tail(State(st): State<SharedState>, RawQuery(q): RawQuery) -> ApiResult {
    let mut q = QueryParams::parse(q.as_deref());
    let max = q.int("max_bytes", 80_000, Some(1024), Some(400_000)) as u64;
    q.finish()?;
    let path = st.cfg.data_dir.join(AUDIT_FILE);
    let res = tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<u8>, bool)> {
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
            Err(e) => return Err(e),
        };
        let size = f.metadata()?.len();
        let start = size.saturating_sub(max);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        if start > 0 {
            // Start at a line boundary: a cut JSON line is useless to a reader.
            let cut = buf
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(buf.len());
            buf.drain(..cut);
        }
        Ok((buf, start > 0))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("Failed to read audit log: {e}")))?;
    let (buf, truncated) = res;
    ok(
        json!({"ok": true, "bytes": buf.len(), "truncated": truncated, "content": String::from_utf8_lossy(&buf)}),
    )
}

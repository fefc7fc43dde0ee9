//! Health and the audit tail.

use std::io::{Read, Seek, SeekFrom};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::json;

use crate::audit::AUDIT_FILE;
use crate::error::{ApiError, ApiResult, json_response};
use crate::state::SharedState;
use crate::wire::misc::{AuditTail, AuditTailQuery, Health, Ready};

/// Liveness, plus bundle load warnings.
#[utoipa::path(get, path = "/api/health", tag = "health",
    responses((status = 200, description = "The gateway answers", body = Health)))]
pub async fn health(State(st): State<SharedState>) -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: "abstractgateway",
        warnings: st.warnings.read().clone(),
    })
}

/// Readiness for a load balancer.
///
/// Whether this node can serve now (open, like `/api/health`). One machine:
/// ready whenever it answers. A cluster node: ready while connected to the cluster (its replica caught up before it
/// started listening); 503 otherwise, with what it sees.
#[utoipa::path(get, path = "/api/ready", tag = "health",
    responses((status = 200, description = "Ready", body = Ready),
              (status = 503, description = "Not ready (cluster: not connected)", body = Ready)))]
pub async fn ready(State(st): State<SharedState>) -> ApiResult {
    let shards = st.gw.running_shards();
    let answer = match st.readiness.get() {
        Some(probe) => probe(),
        None => crate::state::Readiness {
            ready: true,
            detail: json!({"store": "embedded", "runner": !shards.is_empty()}),
        },
    };
    let body = Ready {
        ready: answer.ready,
        service: "abstractgateway",
        detail: answer.detail.as_object().cloned().unwrap_or_default(),
        shards,
    };
    let status = if answer.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(status, &body))
}

/// Tail of the audit log.
#[utoipa::path(get, path = "/api/gateway/audit/tail", tag = "audit",
    params(AuditTailQuery),
    responses((status = 200, description = "The end of the log", body = AuditTail)))]
pub async fn audit_tail(
    State(st): State<SharedState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<AuditTail>> {
    let max = AuditTailQuery::parse(q.as_deref())?.max_bytes as u64;
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
    Ok(Json(AuditTail {
        ok: true,
        bytes: buf.len(),
        truncated,
        content: String::from_utf8_lossy(&buf).into_owned(),
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(health))
        .documented(routes!(ready))
        .documented(routes!(audit_tail))
        .documented(routes!(crate::metrics::scrape))
}

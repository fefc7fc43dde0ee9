//! The route table.

pub mod artifacts;
pub mod bundles;
pub mod commands;
pub mod ledger;
pub mod misc;
pub mod runs;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use super::error::ApiError;
use super::state::SharedState;
use axum::response::IntoResponse;

/// Every core route (§1.1) plus the additions documented in `docs/api.md`.
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/health", get(misc::health))
        .route("/api/gateway/bundles", get(bundles::list))
        .route("/api/gateway/bundles/upload", post(bundles::upload))
        .route("/api/gateway/bundles/reload", post(bundles::reload))
        .route(
            "/api/gateway/bundles/{bundle_id}",
            get(bundles::get).delete(bundles::delete),
        )
        .route(
            "/api/gateway/bundles/{bundle_id}/flows/{flow_id}",
            get(bundles::get_flow),
        )
        .route(
            "/api/gateway/bundles/{bundle_id}/deprecate",
            post(bundles::deprecate),
        )
        .route(
            "/api/gateway/bundles/{bundle_id}/undeprecate",
            post(bundles::undeprecate),
        )
        .route(
            "/api/gateway/workflows/{workflow_id}/flow",
            get(bundles::workflow_flow),
        )
        .route("/api/gateway/runs/start", post(runs::start))
        .route("/api/gateway/runs/schedule", post(runs::schedule))
        .route("/api/gateway/runs", get(runs::list))
        .route("/api/gateway/runs/ledger/batch", post(ledger::batch))
        .route("/api/gateway/runs/{run_id}", get(runs::get))
        .route(
            "/api/gateway/runs/{run_id}/input_data",
            get(runs::input_data),
        )
        .route(
            "/api/gateway/runs/{run_id}/history_bundle",
            get(runs::history_bundle),
        )
        .route("/api/gateway/runs/{run_id}/ledger", get(ledger::ledger))
        .route(
            "/api/gateway/runs/{run_id}/ledger/stream",
            get(ledger::stream),
        )
        .route(
            "/api/gateway/runs/{run_id}/stream_token",
            post(runs::stream_token),
        )
        .route("/api/gateway/runs/{run_id}/artifacts", get(artifacts::list))
        .route(
            "/api/gateway/runs/{run_id}/artifacts/{artifact_id}",
            get(artifacts::meta),
        )
        .route(
            "/api/gateway/runs/{run_id}/artifacts/{artifact_id}/content",
            get(artifacts::content),
        )
        .route("/api/gateway/commands", post(commands::submit))
        .route("/api/gateway/commands/{command_id}", get(commands::get))
        .route(
            "/api/gateway/attachments/upload",
            post(misc::attachments_unsupported),
        )
        .route(
            "/api/gateway/attachments/ingest",
            post(misc::attachments_unsupported),
        )
        .route("/api/gateway/audit/tail", get(misc::audit_tail))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

/// Gives the router's bare 405s (and path-parse 400s) the seed's `{"detail": ...}` bodies, keeping `allow`.
pub async fn detail_bodies(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let bare = !resp.headers().contains_key(header::CONTENT_TYPE)
        || resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && bare {
        let allow = resp.headers().get(header::ALLOW).cloned();
        let mut r =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
        if let Some(a) = allow {
            r.headers_mut().insert(header::ALLOW, a);
        }
        return r;
    }
    resp
}

//! The route table.

pub mod artifacts;
pub mod attachments;
pub mod bundles;
pub mod commands;
pub mod digest;
pub mod discovery;
pub mod kg;
pub mod ledger;
pub mod misc;
pub mod observer;
pub mod runs;
pub mod ui;
pub mod voice;

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
        .route("/", get(ui::root))
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .route("/api/health", get(misc::health))
        .route("/api/ready", get(misc::ready))
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
            "/api/gateway/runs/{run_id}/summary",
            post(observer::summary),
        )
        .route("/api/gateway/runs/{run_id}/chat", post(observer::chat))
        .route(
            "/api/gateway/runs/{run_id}/chat_threads",
            post(observer::chat_threads),
        )
        .route("/api/gateway/runs/{run_id}/voice/tts", post(voice::tts))
        .route(
            "/api/gateway/runs/{run_id}/audio/transcribe",
            post(voice::transcribe),
        )
        .route(
            "/api/gateway/runs/{run_id}/artifacts/{artifact_id}",
            get(artifacts::meta),
        )
        .route(
            "/api/gateway/runs/{run_id}/artifacts/{artifact_id}/content",
            get(artifacts::content),
        )
        .route("/api/gateway/discovery/tools", get(discovery::tools_list))
        .route(
            "/api/gateway/discovery/capabilities",
            get(discovery::capabilities),
        )
        .route(
            "/api/gateway/discovery/providers",
            get(discovery::providers),
        )
        .route(
            "/api/gateway/discovery/providers/{provider}/models",
            get(discovery::provider_models),
        )
        .route(
            "/api/gateway/discovery/models/capabilities",
            get(discovery::model_capabilities),
        )
        .route("/api/gateway/kg/query", post(kg::query))
        .route("/api/gateway/commands", post(commands::submit))
        .route("/api/gateway/commands/{command_id}", get(commands::get))
        .route("/api/gateway/attachments/upload", post(attachments::upload))
        .route("/api/gateway/attachments/ingest", post(attachments::ingest))
        .route("/api/gateway/audit/tail", get(misc::audit_tail))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

/// Most bytes of a framework rejection's text carried into its `{"detail"}`.
const MAX_REJECTION_TEXT: usize = 4096;

/// Turns the bare-text answers of the framework (axum's extractor rejections: a path segment that is not
/// UTF-8, a multipart body without a boundary, a method not allowed…) into the `{"detail": ...}` bodies
/// every client of the API expects from an error.
pub async fn detail_bodies(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let bare = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !bare || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let detail = if status == StatusCode::METHOD_NOT_ALLOWED {
        "Method Not Allowed".to_string()
    } else {
        let body = axum::body::to_bytes(resp.into_body(), MAX_REJECTION_TEXT)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_string();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("Error").to_string()
        } else {
            text
        }
    };
    let mut r = ApiError::new(status, detail).into_response();
    if let Some(a) = allow {
        r.headers_mut().insert(header::ALLOW, a);
    }
    r
}

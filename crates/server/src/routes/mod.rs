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
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::error::ApiError;
use super::state::SharedState;
use axum::response::IntoResponse;

/// Every core route (§1.1) plus the additions documented in `docs/api.md`, and the OpenAPI document of those
/// that are documented: one list makes both (each module's `routes()`).
pub fn router() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(crate::openapi::Doc::openapi())
        .merge(ui::routes())
        .merge(misc::routes())
        .merge(bundles::routes())
        .merge(runs::routes())
        .merge(ledger::routes())
        .merge(artifacts::routes())
        .merge(observer::routes())
        .merge(voice::routes())
        .merge(discovery::routes())
        .merge(kg::routes())
        .merge(commands::routes())
        .merge(attachments::routes())
        .split_for_parts();
    crate::openapi::finish(&mut doc);
    (router.fallback(not_found), doc)
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

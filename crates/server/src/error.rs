//! Error answers: handlers' `{"detail": "..."}` (compact, `application/json`) and the security layers'
//! spaced-JSON answers (`application/json; charset=utf-8`), as the seed sends them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::bundle::ResolveError;
use crate::store::StoreError;

/// An error a handler answers with: status + `detail` (a string, or FastAPI's validation array).
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `detail` value.
    pub detail: Value,
}

impl ApiError {
    /// Any status with a string detail.
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Value::String(msg.into()),
        }
    }
    /// 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }
    /// 404.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }
    /// 500.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }
    /// 404 `Run 'x' not found`.
    pub fn run_not_found(run_id: &str) -> Self {
        Self::not_found(format!("Run '{run_id}' not found"))
    }
    /// 422 with FastAPI's error array.
    pub fn validation(errors: Vec<Value>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: Value::Array(errors),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(format!("Store error: {e}"))
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::BadRequest(message) => ApiError::bad_request(message),
            ResolveError::NotFound { message, .. } => ApiError::not_found(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &json!({"detail": self.detail}))
    }
}

/// A compact JSON response (FastAPI's encoding).
pub fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    raw_json(status, body)
}

/// A pre-encoded compact JSON body.
pub fn raw_json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A security-layer rejection: `{"detail": "..."}` spaced, `application/json; charset=utf-8`.
pub fn middleware_reject(status: StatusCode, detail: &str) -> Response {
    let body = pycompat::json::dumps(&json!({"detail": detail}), true);
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// Result type of handlers.
pub type ApiResult<T = Response> = Result<T, ApiError>;

//! Error answers: handlers' `{"detail": "..."}` (compact, `application/json`) and the security layers'
//! spaced-JSON answers (`application/json; charset=utf-8`), as the seed sends them.

use std::marker::PhantomData;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::bundle::ResolveError;
use crate::runner::StartError;
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
    /// A start or a schedule the runner refused (`verb`: `start` or `schedule`); the status follows the
    /// variant ([`start_status`]), a store failure's message says what failed.
    pub fn start_refused(e: StartError, verb: &str) -> Self {
        let status = start_status(&e);
        match e {
            StartError::Store(e) => ApiError::new(status, format!("Failed to {verb} run: {e}")),
            other => ApiError::new(status, other.to_string()),
        }
    }
}

/// The status of a refused start: 404 when the workflow is not loaded, 400 when the request is refused,
/// 500 when the store failed.
pub fn start_status(e: &StartError) -> StatusCode {
    match e {
        StartError::WorkflowNotFound(_) | StartError::TargetNotFound(_) => StatusCode::NOT_FOUND,
        StartError::Budget(_)
        | StartError::Workspace(_)
        | StartError::Schedule(_)
        | StartError::Flow(_) => StatusCode::BAD_REQUEST,
        StartError::Store(e) => store_status(e),
    }
}

/// The status of a store failure: 503 when the cluster store cannot take writes now (no quorum, or this node lost
/// its runs to another runner; a retry, possibly on another node, may succeed), else 500.
pub fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Unavailable(_) | StoreError::Fenced => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::new(store_status(&e), format!("Store error: {e}"))
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

/// The body of every error answer, the handlers' and the security layers' alike.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong: a message, or (422) each invalid parameter or body field.
    #[schema(value_type = Detail)]
    pub detail: Value,
}

/// An error's `detail` (for the document: [`ApiError`] keeps it as JSON, built by the validators).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Detail {
    /// A message.
    Message(String),
    /// FastAPI's validation issues (422).
    Issues(Vec<ValidationIssue>),
}

/// One invalid parameter or body field, in pydantic's shape.
#[derive(Serialize, ToSchema)]
pub struct ValidationIssue {
    /// Pydantic's error type (`missing`, `int_parsing`, `string_type`, `json_invalid`…).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `body` or `query`, then field names and list indexes.
    pub loc: Vec<LocPart>,
    /// A human-readable message.
    pub msg: String,
    /// The value that was refused (any JSON).
    pub input: Value,
    /// The rule's parameters (`{"ge": 1}`…), when it has some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Map<String, Value>>,
}

/// One step of a [`ValidationIssue`]'s `loc`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocPart {
    /// A field name (or `body`/`query`).
    Name(String),
    /// A list index, or the character offset of a JSON syntax error.
    Index(u64),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &ErrorBody {
                detail: self.detail,
            },
        )
    }
}

/// A compact JSON response (FastAPI's encoding).
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Response {
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

/// A 200 answer of type `T`, already encoded as compact JSON.
///
/// Large answers (ledger pages of up to 16 MiB) are encoded on the blocking thread that read them, not on the
/// async executor; the handler still names `T`, which its `#[utoipa::path]` documents.
pub struct Encoded<T> {
    body: String,
    _answer: PhantomData<fn() -> T>,
}

impl<T: Serialize> Encoded<T> {
    /// Encodes `v` (call it off the async executor when `v` is large).
    pub fn new(v: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_string(v)
            .map_err(|e| ApiError::internal(format!("encoding the answer failed: {e}")))?;
        Ok(Encoded {
            body,
            _answer: PhantomData,
        })
    }
}

impl<T> IntoResponse for Encoded<T> {
    fn into_response(self) -> Response {
        raw_json(StatusCode::OK, self.body)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::budget::BudgetError;
    use crate::runner::schedule::ScheduleError;
    use crate::runner::workspace::WorkspaceError;

    #[test]
    fn a_lookup_error_answers_with_the_status_of_its_variant() {
        let missing = ApiError::from(ResolveError::not_found("Bundle 'x' not found"));
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.detail, json!("Bundle 'x' not found"));
        let verbatim = ResolveError::NotFound {
            message: "Flow 'a:b' not found".into(),
            verbatim_workflow_id: Some("a:b".into()),
        };
        assert_eq!(ApiError::from(verbatim).status, StatusCode::NOT_FOUND);
        let refused = ApiError::from(ResolveError::bad_request("bundle_id is required"));
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.detail, json!("bundle_id is required"));
    }

    #[test]
    fn a_refused_start_answers_with_the_status_of_its_variant() {
        let cases = [
            (
                StartError::WorkflowNotFound("w".into()),
                StatusCode::NOT_FOUND,
                "Workflow 'w' not found",
            ),
            (
                StartError::TargetNotFound("b:f".into()),
                StatusCode::NOT_FOUND,
                "Target workflow 'b:f' not found",
            ),
            (
                StartError::Budget(BudgetError::TooDeep {
                    what: "variable 'v'".into(),
                }),
                StatusCode::BAD_REQUEST,
                "RunBudgetExceeded: variable 'v' is nested more than 64 levels deep; a run's state allows 64",
            ),
            (
                StartError::Workspace(WorkspaceError::NotAbsolute("x".into())),
                StatusCode::BAD_REQUEST,
                "workspace_root \"x\" must be an absolute path",
            ),
            (
                StartError::Schedule(ScheduleError::RepeatCountBelowOne),
                StatusCode::BAD_REQUEST,
                "repeat_count must be >= 1",
            ),
            (
                StartError::Store(StoreError::Closed),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to schedule run: store is closed",
            ),
            (
                StartError::Store(StoreError::Unavailable("no quorum".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                "Failed to schedule run: the cluster store is unavailable: no quorum",
            ),
        ];
        for (e, status, detail) in cases {
            assert_eq!(start_status(&e), status, "{e}");
            let answer = ApiError::start_refused(e, "schedule");
            assert_eq!(answer.status, status);
            assert_eq!(answer.detail, json!(detail));
        }
    }
}

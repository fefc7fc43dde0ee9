//! Run artifacts (#20–#22): list, metadata, and streamed content.

use std::io::Read;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::artifacts::{ArtifactError, ArtifactMeta};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::attachments::is_session_memory_run;
use crate::routes::runs::load_run;
use crate::state::AppState;
use crate::state::SharedState;
use crate::wire::artifacts::{ArtifactList, ArtifactListQuery};

/// Content is streamed in chunks of this size (the seed's 1 MiB).
const CHUNK: usize = 1024 * 1024;

/// The seed's id check: anything else is a 400 before the store is asked.
fn check_artifact_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("Invalid artifact id: {id}")))
    }
}

/// The run must exist, except a session's memory run: before its first attachment it reads as existing and
/// empty (the seed creates it on this read; a read here writes nothing).
fn artifact_owner(st: &AppState, run_id: &str) -> Result<(), ApiError> {
    match load_run(st, run_id) {
        Err(e) if e.status == StatusCode::NOT_FOUND && is_session_memory_run(run_id) => Ok(()),
        other => other.map(drop),
    }
}

fn store_error(e: ArtifactError) -> ApiError {
    match e {
        // Well-formed for the seed but not one of our hex ids: it cannot exist.
        ArtifactError::InvalidId(id) | ArtifactError::NotFound(id) => {
            ApiError::not_found(format!("Artifact '{id}' not found"))
        }
        ArtifactError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        ArtifactError::InvalidInput(m) => ApiError::bad_request(m),
        ArtifactError::Corrupt(_) | ArtifactError::Io(_) => {
            ApiError::internal(format!("Failed to read artifact: {e}"))
        }
        ArtifactError::Unavailable(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(store_error)
}

/// Artifacts of a run.
///
/// Newest first. A session's memory run (`session_memory_*`) has none before its first attachment, rather than
/// being unknown.
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/artifacts", tag = "artifacts",
    params(("run_id" = String, Path), ArtifactListQuery),
    responses((status = 200, description = "The artifacts", body = ArtifactList),
              (status = 404, description = "No such run", body = ErrorBody),
              (status = 503, description = "The cluster's artifact store is unavailable", body = ErrorBody)))]
pub async fn list(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ArtifactList>> {
    let limit = ArtifactListQuery::parse(q.as_deref())?.limit;
    artifact_owner(&st, &run_id)?;
    let store = st.artifacts.clone();
    let limit = usize::try_from(limit).unwrap_or(200);
    let metas = blocking(move || store.list(&run_id, limit)).await?;
    Ok(Json(ArtifactList {
        items: metas.into_iter().map(Into::into).collect(),
    }))
}

/// Artifact metadata.
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/artifacts/{artifact_id}", tag = "artifacts",
    params(("run_id" = String, Path), ("artifact_id" = String, Path)),
    responses((status = 200, description = "The metadata", body = ArtifactMeta),
              (status = 400, description = "Invalid artifact id", body = ErrorBody),
              (status = 404, description = "No such run or artifact", body = ErrorBody),
              (status = 503, description = "The cluster's artifact store is unavailable", body = ErrorBody)))]
pub async fn meta(
    State(st): State<SharedState>,
    Path((run_id, artifact_id)): Path<(String, String)>,
) -> ApiResult<Json<ArtifactMeta>> {
    check_artifact_id(&artifact_id)?;
    artifact_owner(&st, &run_id)?;
    let store = st.artifacts.clone();
    let meta = blocking(move || store.get_meta(&run_id, &artifact_id)).await?;
    Ok(Json(meta))
}

/// Artifact bytes.
///
/// Streamed, with the artifact's `content_type` and its length.
#[utoipa::path(get, path = "/api/gateway/runs/{run_id}/artifacts/{artifact_id}/content", tag = "artifacts",
    params(("run_id" = String, Path), ("artifact_id" = String, Path)),
    responses((status = 200, description = "The bytes, served with the artifact's content type",
               content_type = "application/octet-stream", body = String),
              (status = 400, description = "Invalid artifact id", body = ErrorBody),
              (status = 404, description = "No such run or artifact", body = ErrorBody),
              (status = 503, description = "The cluster's artifact store is unavailable", body = ErrorBody)))]
pub async fn content(
    State(st): State<SharedState>,
    Path((run_id, artifact_id)): Path<(String, String)>,
) -> ApiResult {
    check_artifact_id(&artifact_id)?;
    artifact_owner(&st, &run_id)?;
    let store = st.artifacts.clone();
    let (meta, file) = blocking(move || store.open_content(&run_id, &artifact_id)).await?;
    // A blocking reader thread feeds a small channel: memory stays bounded whatever the artifact size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp: Response = (StatusCode::OK, body).into_response();
    let ct = HeaderValue::from_str(&meta.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size_bytes));
    Ok(resp)
}
/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(list))
        .documented(routes!(meta))
        .documented(routes!(content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_artifact_error_answers_with_the_status_of_its_variant() {
        let cases = [
            (ArtifactError::NotFound("a1".into()), StatusCode::NOT_FOUND),
            (ArtifactError::InvalidId("zz".into()), StatusCode::NOT_FOUND),
            (
                ArtifactError::TooLarge { size: 2, max: 1 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                ArtifactError::InvalidInput("bad run id".into()),
                StatusCode::BAD_REQUEST,
            ),
            (
                ArtifactError::Corrupt("blob".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                ArtifactError::Unavailable("no quorum".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(store_error(e).status, status);
        }
        assert_eq!(
            store_error(ArtifactError::InvalidId("zz".into())).detail,
            json!("Artifact 'zz' not found")
        );
    }

    #[test]
    fn the_typed_answers_are_the_bytes_of_the_stored_metadata() {
        let mut meta = ArtifactMeta {
            artifact_id: "a1".into(),
            blob_id: "b1".into(),
            content_type: "text/plain".into(),
            size_bytes: 5,
            created_at: "2025-01-01T00:00:00+00:00".into(),
            run_id: "r1".into(),
            tags: [
                ("z".to_string(), "1".to_string()),
                ("a".into(), "é\"".into()),
            ]
            .into(),
            metadata: serde_json::Map::new(),
        };
        meta.metadata
            .insert("zeta".into(), json!({"n": 1.5, "s": "ü"}));
        meta.metadata.insert("alpha".into(), json!([1, null]));
        let typed = serde_json::to_string(&crate::wire::artifacts::ArtifactListItem::from(
            meta.clone(),
        ));
        assert_eq!(typed.ok(), serde_json::to_string(&meta.list_item()).ok());
    }
}

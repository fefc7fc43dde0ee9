//! `POST /api/gateway/attachments/upload`: a client's file stored as an artifact of the session's memory run
//! (`session_memory_<sid>`, created on first use as the seed does), answered with the seed's attachment ref.

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::artifacts::{ArtifactError, NewArtifact};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::run::{RunStatus, new_run_state};
use crate::runner::workspace::{FileError, is_plain_id, slug_within};
use crate::state::SharedState;
use crate::store::Batch;
use crate::wire::attachments::{
    AttachmentIngest, AttachmentRef, AttachmentStored, AttachmentTarget, AttachmentUpload,
};

/// The workflow id of session memory runs.
const SESSION_MEMORY_WORKFLOW: &str = "__session_memory__";
/// Longest session id used verbatim in the run id (a longer one is hashed, as an odd-character one is).
const MAX_PLAIN_SESSION_ID: usize = 200;
/// Longest file name kept.
const MAX_FILENAME: usize = 255;
/// The seed's cap when `ABSTRACTGATEWAY_MAX_ATTACHMENT_BYTES` is 0.
const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The run that owns a session's attachments: `session_memory_<sid>`, or `session_memory_sha_<hash>` when the id
/// is not `[A-Za-z0-9_-]+` (or too long), so no client string beyond that alphabet becomes part of a run id.
pub fn session_memory_run_id(session_id: &str) -> String {
    format!(
        "session_memory_{}",
        slug_within(session_id, MAX_PLAIN_SESSION_ID)
    )
}

/// Whether `run_id` names a session memory run (which reads as existing, with no artifacts, before its first
/// attachment).
pub fn is_session_memory_run(run_id: &str) -> bool {
    // `sha_` and a hash when the session id was not plain.
    run_id
        .strip_prefix("session_memory_")
        .is_some_and(|rest| is_plain_id(rest, MAX_PLAIN_SESSION_ID + 4))
}

/// Creates the session's memory run unless it exists: completed, owning nothing but attachments. Any node may
/// create it; the first creation wins.
pub(crate) fn ensure_session_memory_run(
    st: &SharedState,
    session_id: &str,
    run_id: &str,
) -> Result<(), ApiError> {
    let store = st.gw.store();
    if store.run_exists(run_id)? {
        return Ok(());
    }
    let mut run = new_run_state(
        SESSION_MEMORY_WORKFLOW,
        "",
        Default::default(),
        Some(session_id.to_string()),
        None,
        None,
    );
    run.run_id = run_id.to_string();
    run.status = RunStatus::Completed;
    run.current_node = None;
    run.vars.clear();
    let key = format!("session_memory:{run_id}");
    let mut batch = Batch::new();
    batch.put_run(&run);
    batch.put_meta(&key, run_id.as_bytes());
    batch.only_if_absent(&key);
    store.commit(batch)?;
    Ok(())
}

/// A content type from the file name's extension, for an upload that names none.
fn guess_content_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// The first candidate that is not blank (trimmed, at most [`MAX_FILENAME`] characters), else `default`.
fn file_name(candidates: impl IntoIterator<Item = Option<String>>, default: &str) -> String {
    candidates
        .into_iter()
        .flatten()
        .map(|f| f.trim().to_string())
        .find(|f| !f.is_empty())
        .unwrap_or_else(|| default.into())
        .chars()
        .take(MAX_FILENAME)
        .collect()
}

/// The first candidate that is not blank (trimmed, lowercased), else guessed from `filename`.
fn content_type_of(candidates: impl IntoIterator<Item = Option<String>>, filename: &str) -> String {
    candidates
        .into_iter()
        .flatten()
        .map(|c| c.trim().to_ascii_lowercase())
        .find(|c| !c.is_empty())
        .unwrap_or_else(|| guess_content_type(filename).to_string())
}

/// Upload a file as an attachment of the session's memory run.
///
/// The run (`session_memory_<sid>`) is created on first use; the answer's `attachment` is the ref a run's
/// `input_data` or a message carries.
#[utoipa::path(post, path = "/api/gateway/attachments/upload", tag = "attachments",
    request_body(content_type = "multipart/form-data", content = AttachmentUpload),
    responses((status = 200, description = "The stored attachment", body = AttachmentStored),
              (status = 400, description = "A blank session id or a malformed body", body = ErrorBody),
              (status = 413, description = "Over the attachment size cap", body = ErrorBody),
              (status = 503, description = "The cluster store cannot take writes now", body = ErrorBody)))]
pub async fn upload(
    State(st): State<SharedState>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Json<AttachmentStored>> {
    let AttachmentUpload {
        session_id,
        file,
        filename,
        content_type,
        part_filename,
        part_content_type,
    } = AttachmentUpload::parse(mp).await?;
    let sid = session_id.trim().to_string();
    if sid.is_empty() {
        return Err(ApiError::bad_request("session_id is required"));
    }
    let max = max_bytes(&st);
    if file.len() as u64 > max {
        return Err(too_large(file.len() as u64, max));
    }
    let filename = file_name([filename, part_filename], "upload.bin");
    let content_type = content_type_of([content_type, part_content_type], &filename);
    let handle = format!("client:{filename}");
    let stored = Stored {
        session: sid,
        filename,
        content_type,
        target: AttachmentTarget::Client,
        source: "upload",
        path: handle,
    };
    store_attachment(&st, stored, file.to_vec()).await
}

/// What an attachment is stored as.
struct Stored {
    session: String,
    filename: String,
    content_type: String,
    /// Uploaded, or a workspace file.
    target: AttachmentTarget,
    source: &'static str,
    /// `client:<name>` or the workspace path.
    path: String,
}

/// Lowercase hex sha256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores `bytes` as an artifact of `run_id` off the async threads. A refused input is 400, an artifact over the
/// cap 413, a cluster store that cannot take it now 503, anything else 500 "Failed to store {what}: …".
pub(crate) async fn store_artifact(
    st: &SharedState,
    run_id: &str,
    bytes: Vec<u8>,
    content_type: &str,
    extra: NewArtifact,
    what: &str,
) -> Result<crate::artifacts::ArtifactMeta, ApiError> {
    let (state, rid, ct) = (st.clone(), run_id.to_string(), content_type.to_string());
    let stored = tokio::task::spawn_blocking(move || state.artifacts.put(&rid, &bytes, &ct, extra))
        .await
        .map_err(|e| ApiError::internal(format!("Failed to store {what}: {e}")))?;
    stored.map_err(|e| match e {
        ArtifactError::InvalidInput(m) => ApiError::bad_request(m),
        ArtifactError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        ArtifactError::Unavailable(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        e => ApiError::internal(format!("Failed to store {what}: {e}")),
    })
}

/// Stores `bytes` as an artifact of the session's memory run (created once) and answers the seed's shape.
async fn store_attachment(
    st: &SharedState,
    a: Stored,
    bytes: Vec<u8>,
) -> ApiResult<Json<AttachmentStored>> {
    let sha256 = sha256_hex(&bytes);
    let run_id = session_memory_run_id(&a.session);
    let mut extra = NewArtifact::default();
    for (k, v) in [
        ("kind", "attachment"),
        ("target", a.target.as_str()),
        ("source", a.source),
        ("path", a.path.as_str()),
        ("filename", a.filename.as_str()),
        ("session_id", a.session.as_str()),
        ("sha256", sha256.as_str()),
    ] {
        extra.tags.insert(k.into(), v.into());
    }
    let (state, rid, sid) = (st.clone(), run_id.clone(), a.session.clone());
    tokio::task::spawn_blocking(move || ensure_session_memory_run(&state, &sid, &rid))
        .await
        .map_err(|e| ApiError::internal(format!("attachment task failed: {e}")))??;
    let meta = store_artifact(
        st,
        &run_id,
        bytes,
        &a.content_type,
        extra,
        "attachment artifact",
    )
    .await?;
    let attachment = AttachmentRef {
        artifact: meta.artifact_id.clone(),
        target: a.target,
        filename: a.filename,
        content_type: a.content_type,
        source_path: a.path,
        sha256,
    };
    Ok(Json(AttachmentStored {
        ok: true,
        run_id,
        metadata: meta,
        attachment,
    }))
}

/// The attachment cap: `ABSTRACTGATEWAY_MAX_ATTACHMENT_BYTES`, the seed's 25 MiB when 0.
fn max_bytes(st: &SharedState) -> u64 {
    match st.cfg.max_attachment_bytes {
        0 => DEFAULT_MAX_BYTES,
        n => n,
    }
}

fn too_large(size: u64, max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Attachment too large ({size} bytes > {max} bytes)"),
    )
}

/// Store a workspace file as an attachment of the session's memory run.
///
/// The file is read inside the operator's workspace roots only (symbolic links resolved), then stored like an
/// upload.
#[utoipa::path(post, path = "/api/gateway/attachments/ingest", tag = "attachments",
    request_body = AttachmentIngest,
    responses((status = 200, description = "The stored attachment", body = AttachmentStored),
              (status = 400, description = "A blank session id, or a path that is not a file or is invalid", body = ErrorBody),
              (status = 403, description = "A path or workspace root outside the operator's roots", body = ErrorBody),
              (status = 404, description = "No such file", body = ErrorBody),
              (status = 413, description = "Over the attachment size cap", body = ErrorBody),
              (status = 503, description = "The cluster store cannot take writes now", body = ErrorBody)))]
pub async fn ingest(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<AttachmentStored>> {
    let AttachmentIngest {
        session_id: session,
        path,
        filename,
        content_type,
        workspace_root,
    } = AttachmentIngest::parse(&headers, &body)?;
    let sid = session.trim().to_string();
    if sid.is_empty() {
        return Err(ApiError::bad_request("session_id is required"));
    }
    let max = max_bytes(&st);
    let state = st.clone();
    let (resolved, shown, bytes) = tokio::task::spawn_blocking(move || {
        let ws = state.gw.workspaces();
        let root = ws
            .read_root(workspace_root.as_deref())
            .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.to_string()))?;
        let (resolved, shown) = ws.resolve_file(&path, &root).map_err(|e| {
            let status = match e {
                FileError::NotFound => StatusCode::NOT_FOUND,
                FileError::Outside => StatusCode::FORBIDDEN,
                FileError::NotAFile | FileError::Invalid => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, e.to_string())
        })?;
        let size = std::fs::metadata(&resolved).map(|m| m.len()).unwrap_or(0);
        if size > max {
            return Err(too_large(size, max));
        }
        // Read no further than the cap, whatever the file grew to since.
        let mut bytes = Vec::new();
        std::fs::File::open(&resolved)
            .and_then(|f| {
                std::io::Read::read_to_end(&mut std::io::Read::take(f, max + 1), &mut bytes)
            })
            .map_err(|e| ApiError::internal(format!("Failed to read file: {e}")))?;
        if bytes.len() as u64 > max {
            return Err(too_large(bytes.len() as u64, max));
        }
        Ok((resolved, shown, bytes))
    })
    .await
    .map_err(|e| ApiError::internal(format!("ingest task failed: {e}")))??;
    let on_disk = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let filename = file_name([filename, on_disk], "file.bin");
    let content_type = content_type_of([content_type], &filename);
    let stored = Stored {
        session: sid,
        filename,
        content_type,
        target: AttachmentTarget::Server,
        source: "workspace",
        path: shown,
    };
    store_attachment(&st, stored, bytes).await
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(upload))
        .documented(routes!(ingest))
}

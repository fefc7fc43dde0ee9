//! Attachments: a client's upload or a workspace file, stored as an artifact of the session's memory run.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

use crate::artifacts::ArtifactMeta;
use crate::error::ApiError;
use crate::extract::{missing_field, multipart_parts, parse_body};

/// The multipart form of `POST /attachments/upload`.
#[derive(ToSchema)]
pub struct AttachmentUpload {
    /// The session whose memory run owns the attachment (blank is refused).
    pub session_id: String,
    /// The file.
    #[schema(value_type = String, format = Binary)]
    pub file: Bytes,
    /// The name stored; default: the file part's own name, else `upload.bin`.
    pub filename: Option<String>,
    /// The MIME type stored; default: the file part's own type, else guessed from the name.
    pub content_type: Option<String>,
    /// The name the client gave the file part.
    #[schema(ignore)]
    pub part_filename: Option<String>,
    /// The file part's own content type.
    #[schema(ignore)]
    pub part_content_type: Option<String>,
}

impl AttachmentUpload {
    /// Reads and validates the form: FastAPI's 422 naming each missing field (both for a body that is not
    /// multipart); a malformed body is a 400.
    pub async fn parse(mp: Result<Multipart, MultipartRejection>) -> Result<Self, ApiError> {
        // A body that is not multipart carries neither field: the seed's 422 names both.
        let Ok(mp) = mp else {
            return Err(ApiError::validation(vec![
                missing_field("body", "session_id"),
                missing_field("body", "file"),
            ]));
        };
        let (mut session, mut file, mut filename, mut content_type) = (None, None, None, None);
        let (mut part_name, mut part_type) = (None, None);
        for part in multipart_parts(mp).await? {
            match part.name.as_str() {
                "session_id" => session = Some(part.text()),
                "filename" => filename = Some(part.text()),
                "content_type" => content_type = Some(part.text()),
                "file" => {
                    part_name = part.file_name;
                    part_type = part.content_type;
                    file = Some(part.data);
                }
                _ => {}
            }
        }
        let mut errors = Vec::new();
        if session.is_none() {
            errors.push(missing_field("body", "session_id"));
        }
        if file.is_none() {
            errors.push(missing_field("body", "file"));
        }
        let (Some(session_id), Some(file)) = (session, file) else {
            return Err(ApiError::validation(errors));
        };
        Ok(AttachmentUpload {
            session_id,
            file,
            filename,
            content_type,
            part_filename: part_name,
            part_content_type: part_type,
        })
    }
}

/// The body of `POST /attachments/ingest`: a file of the server's workspace, read inside the operator's roots.
#[derive(ToSchema)]
pub struct AttachmentIngest {
    /// The session whose memory run owns the attachment (blank is refused).
    pub session_id: String,
    /// The file: relative to the workspace root, or absolute; either way inside one of the operator's roots.
    pub path: String,
    /// The name stored; default: the file's name.
    pub filename: Option<String>,
    /// The MIME type stored; default: guessed from the name.
    pub content_type: Option<String>,
    /// The root a relative `path` is read from, when the operator allows client scope; default: the base.
    pub workspace_root: Option<String>,
}

impl AttachmentIngest {
    /// Parses and validates the body (FastAPI's 422 for a missing or wrong field).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        parse_body(headers, body, |f| AttachmentIngest {
            session_id: f.req_str("session_id"),
            path: f.req_str("path"),
            filename: f.opt_str("filename"),
            content_type: f.opt_str("content_type"),
            workspace_root: f.opt_str("workspace_root"),
        })
    }
}

/// Where an attachment came from.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentTarget {
    /// Uploaded by the client.
    Client,
    /// A file of the server's workspace.
    Server,
}

impl AttachmentTarget {
    /// The JSON string (also the artifact's `target` tag).
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentTarget::Client => "client",
            AttachmentTarget::Server => "server",
        }
    }
}

/// The seed's attachment ref, for a run's `input_data` or a message.
#[derive(Serialize, ToSchema)]
pub struct AttachmentRef {
    /// The artifact id.
    #[serde(rename = "$artifact")]
    pub artifact: String,
    pub target: AttachmentTarget,
    pub filename: String,
    pub content_type: String,
    /// `client:<filename>` for an upload, the workspace path for an ingested file.
    pub source_path: String,
    /// Hex sha256 of the content.
    pub sha256: String,
}

/// `POST /attachments/upload` and `/ingest`: the stored attachment.
#[derive(Serialize, ToSchema)]
pub struct AttachmentStored {
    /// Always true.
    pub ok: bool,
    /// The session's memory run (`session_memory_<sid>`), which owns the artifact.
    pub run_id: String,
    /// The stored artifact's metadata (the seed's `ArtifactMetadata`).
    pub metadata: ArtifactMeta,
    pub attachment: AttachmentRef,
}

//! Errors of the bundle module: reading/packing ([`BundleError`]) and run-target resolution ([`ResolveError`]).

use std::fmt;
use std::path::Path;

/// Why a bundle could not be read, validated, packed or installed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a readable zip archive.
    #[error("not a valid .flow zip archive: {0}")]
    Zip(String),
    /// The archive or directory is hostile or over a limit; nothing was extracted or written.
    #[error("refused unsafe bundle: {0}")]
    Refused(String),
    /// `manifest.json` is missing, not JSON, or breaks a manifest rule.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// A file the manifest references is missing or unreadable.
    #[error("{0}")]
    Missing(String),
    /// A flow file is not a JSON object (or not JSON).
    #[error("flow \"{flow_id}\" ({path}): {message}")]
    Flow {
        /// The manifest key of the flow.
        flow_id: String,
        /// The relpath the manifest gives for it.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Packing could not collect a consistent set of flows.
    #[error("cannot pack bundle: {0}")]
    Pack(String),
    /// An install-time rule (safe ids, overwrite) was broken.
    #[error("{0}")]
    Install(String),
    /// The bundle is valid but cannot answer the question asked (e.g. no default entrypoint).
    #[error("{0}")]
    Usage(String),
}

impl BundleError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BundleError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// How the HTTP layer should report a [`ResolveError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveErrorKind {
    /// HTTP 400: the request is contradictory or incomplete.
    BadRequest,
    /// HTTP 404: the bundle or flow is not loaded.
    NotFound,
}

impl ResolveErrorKind {
    /// The HTTP status code this kind maps to.
    pub fn status(self) -> u16 {
        match self {
            ResolveErrorKind::BadRequest => 400,
            ResolveErrorKind::NotFound => 404,
        }
    }
}

/// A failed bundle/flow lookup; `message` is the exact `detail` string the seed answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    /// 400 or 404.
    pub kind: ResolveErrorKind,
    /// The complete client-facing message (already prefixed where the seed prefixes it).
    pub message: String,
    /// Set when `flow_id` was a `x:y` id whose prefix is no loaded bundle: the seed then looks the id up
    /// verbatim (dynamic workflows such as `scheduled:<uuid>`), so the caller may still find it elsewhere.
    pub verbatim_workflow_id: Option<String>,
}

impl ResolveError {
    /// A 400 error with this exact message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ResolveError {
            kind: ResolveErrorKind::BadRequest,
            message: message.into(),
            verbatim_workflow_id: None,
        }
    }

    /// A 404 error with this exact message.
    pub fn not_found(message: impl Into<String>) -> Self {
        ResolveError {
            kind: ResolveErrorKind::NotFound,
            message: message.into(),
            verbatim_workflow_id: None,
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ResolveError {}

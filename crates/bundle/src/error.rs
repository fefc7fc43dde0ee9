//! Errors of the bundle module: reading/packing ([`BundleError`]) and run-target resolution ([`ResolveError`]).

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

/// A failed bundle/flow lookup; its text is the exact `detail` string the seed answers with (already
/// prefixed where the seed prefixes it), its variant the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// HTTP 400: the request is contradictory or incomplete.
    #[error("{0}")]
    BadRequest(String),
    /// HTTP 404: the bundle or flow is not loaded.
    #[error("{message}")]
    NotFound {
        /// The client-facing message.
        message: String,
        /// Set when `flow_id` was a `x:y` id whose prefix is no loaded bundle: the seed then looks the id
        /// up verbatim (dynamic workflows such as `scheduled:<uuid>`), so the caller may still find it
        /// elsewhere.
        verbatim_workflow_id: Option<String>,
    },
}

impl ResolveError {
    /// A 400 error with this exact message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ResolveError::BadRequest(message.into())
    }

    /// A 404 error with this exact message.
    pub fn not_found(message: impl Into<String>) -> Self {
        ResolveError::NotFound {
            message: message.into(),
            verbatim_workflow_id: None,
        }
    }

    /// 400 or 404.
    pub fn kind(&self) -> ResolveErrorKind {
        match self {
            ResolveError::BadRequest(_) => ResolveErrorKind::BadRequest,
            ResolveError::NotFound { .. } => ResolveErrorKind::NotFound,
        }
    }

    /// The complete client-facing message.
    pub fn message(&self) -> &str {
        match self {
            ResolveError::BadRequest(message) | ResolveError::NotFound { message, .. } => message,
        }
    }

    /// See [`ResolveError::NotFound`].
    pub fn verbatim_workflow_id(&self) -> Option<&str> {
        match self {
            ResolveError::NotFound {
                verbatim_workflow_id,
                ..
            } => verbatim_workflow_id.as_deref(),
            ResolveError::BadRequest(_) => None,
        }
    }
}

//! The error a node, tool or host call fails with.

use std::fmt;

use crate::bindings::node::abstractgateway::plugin::types as wit;

/// Why something failed, as the host records it (mirrors the WIT `error-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The node's inputs or configuration are wrong.
    InvalidInput,
    /// The plugin was not granted the capability it used.
    AccessDenied,
    /// The thing asked for does not exist.
    NotFound,
    /// A remote service asked to slow down.
    RateLimited,
    /// A call took longer than allowed.
    Timeout,
    /// The run was cancelled.
    Cancelled,
    /// A remote service or host facility is not reachable now.
    Unavailable,
    /// A value is over a size limit.
    TooLarge,
    /// A bug or an unexpected state.
    Internal,
    /// The host does not support this request.
    Unsupported,
}

/// A failed node, tool or host call: a machine code, a message for people, and whether a retry may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The machine-readable reason.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Whether running the same thing again may succeed.
    pub retryable: bool,
}

impl Error {
    /// An error with `code` and `message`, not retryable.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            retryable: false,
        }
    }

    /// Bad inputs or configuration.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// An unexpected failure inside the plugin.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// Something asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A remote service is not reachable now; marked retryable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message).retryable(true)
    }

    /// The same error with its retry hint set to `retryable`.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::invalid_input(format!("invalid JSON: {e}"))
    }
}

impl From<ErrorCode> for wit::ErrorCode {
    fn from(c: ErrorCode) -> Self {
        match c {
            ErrorCode::InvalidInput => wit::ErrorCode::InvalidInput,
            ErrorCode::AccessDenied => wit::ErrorCode::AccessDenied,
            ErrorCode::NotFound => wit::ErrorCode::NotFound,
            ErrorCode::RateLimited => wit::ErrorCode::RateLimited,
            ErrorCode::Timeout => wit::ErrorCode::Timeout,
            ErrorCode::Cancelled => wit::ErrorCode::Cancelled,
            ErrorCode::Unavailable => wit::ErrorCode::Unavailable,
            ErrorCode::TooLarge => wit::ErrorCode::TooLarge,
            ErrorCode::Internal => wit::ErrorCode::Internal,
            ErrorCode::Unsupported => wit::ErrorCode::Unsupported,
        }
    }
}

impl From<wit::ErrorCode> for ErrorCode {
    fn from(c: wit::ErrorCode) -> Self {
        match c {
            wit::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
            wit::ErrorCode::AccessDenied => ErrorCode::AccessDenied,
            wit::ErrorCode::NotFound => ErrorCode::NotFound,
            wit::ErrorCode::RateLimited => ErrorCode::RateLimited,
            wit::ErrorCode::Timeout => ErrorCode::Timeout,
            wit::ErrorCode::Cancelled => ErrorCode::Cancelled,
            wit::ErrorCode::Unavailable => ErrorCode::Unavailable,
            wit::ErrorCode::TooLarge => ErrorCode::TooLarge,
            wit::ErrorCode::Internal => ErrorCode::Internal,
            wit::ErrorCode::Unsupported => ErrorCode::Unsupported,
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        wit::Error {
            code: e.code.into(),
            message: e.message,
            retryable: e.retryable,
        }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        Error {
            code: e.code.into(),
            message: e.message,
            retryable: e.retryable,
        }
    }
}

/// Parses a JSON document the host sent; a malformed one is the host's bug, reported as internal.
pub(crate) fn parse_host_json(what: &str, text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("host sent invalid JSON for {what}: {e}")))
}

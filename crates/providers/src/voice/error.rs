//! Voice errors, coded like the WIT `error-code` so the plugin host maps them one to one.

use std::fmt;

/// The WIT `error-code` values a voice call can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceErrorCode {
    /// Bad text, voice, language or audio.
    InvalidInput,
    /// The artifact or model does not exist.
    NotFound,
    /// The provider throttled us.
    RateLimited,
    /// The engine did not answer in time (it was killed).
    Timeout,
    /// The engine is not installed, not configured or not reachable.
    Unavailable,
    /// Input or output exceeds a cap.
    TooLarge,
    /// A bug or an engine failure.
    Internal,
    /// The provider cannot do this (format, language, direction).
    Unsupported,
}

impl VoiceErrorCode {
    /// The WIT spelling (`invalid-input`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceErrorCode::InvalidInput => "invalid-input",
            VoiceErrorCode::NotFound => "not-found",
            VoiceErrorCode::RateLimited => "rate-limited",
            VoiceErrorCode::Timeout => "timeout",
            VoiceErrorCode::Unavailable => "unavailable",
            VoiceErrorCode::TooLarge => "too-large",
            VoiceErrorCode::Internal => "internal",
            VoiceErrorCode::Unsupported => "unsupported",
        }
    }
}

/// A failed voice call: code, message for people, and whether a retry may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceError {
    /// Machine code.
    pub code: VoiceErrorCode,
    /// What went wrong (never holds credentials).
    pub message: String,
    /// Whether trying again may succeed.
    pub retryable: bool,
}

impl VoiceError {
    /// An error that retrying will not fix.
    pub fn new(code: VoiceErrorCode, message: impl Into<String>) -> Self {
        VoiceError {
            code,
            message: message.into(),
            retryable: false,
        }
    }
    /// An error a retry may fix.
    pub fn retryable(code: VoiceErrorCode, message: impl Into<String>) -> Self {
        VoiceError {
            code,
            message: message.into(),
            retryable: true,
        }
    }
    /// `invalid-input`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(VoiceErrorCode::InvalidInput, message)
    }
    /// `unsupported`.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(VoiceErrorCode::Unsupported, message)
    }
    /// `too-large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(VoiceErrorCode::TooLarge, message)
    }
    /// `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(VoiceErrorCode::Internal, message)
    }
    /// `unavailable`, not retryable (missing engine or configuration).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(VoiceErrorCode::Unavailable, message)
    }
}

impl fmt::Display for VoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for VoiceError {}

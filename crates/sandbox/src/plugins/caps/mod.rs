//! Host capabilities, one module each (its WIT binding, its grant checks, its provider): what a component
//! can reach of the world, and only through the recorder.

pub mod artifacts;
pub mod durability;
pub mod http;
pub mod image;
pub mod kg;
pub mod kv;
pub mod llm;
pub mod log;
pub mod net;
pub mod tools;
pub mod voice;

use std::sync::Arc;

use super::bindings::types::{Error, ErrorCode};

/// The providers behind the capabilities, shared by every node execution.
pub struct Capabilities {
    /// `ABSTRACTGATEWAY_TOOL_MODE`.
    pub tool_mode: ToolMode,
    /// Outbound HTTP for plugins: clients that never connect to private addresses the operator did not allow.
    pub net: net::Net,
    /// kv buckets every bundle shares with the built-in plugins (the operator's policy).
    pub shared_kv: Vec<String>,
    pub llm: Option<Arc<dyn llm::LlmBackend>>,
    pub tools: Option<Arc<dyn tools::ToolBackend>>,
    pub voice: Option<Arc<dyn voice::VoiceBackend>>,
    pub image: Option<Arc<dyn image::ImageBackend>>,
    pub artifacts: Option<Arc<dyn artifacts::ArtifactBackend>>,
    /// The providers behind `llm`, for the host's own LLM helpers (run summary and chat endpoints).
    pub providers: Option<Arc<crate::llm::Providers>>,
    /// The speech engines behind `voice`, for the host's own voice endpoints.
    pub speech: Option<Arc<crate::voice::Voice>>,
}

impl Capabilities {
    /// Capabilities with no model, tool, speech or artifact provider yet.
    pub fn new() -> Capabilities {
        Capabilities {
            tool_mode: ToolMode::Passthrough,
            net: net::Net::default(),
            shared_kv: Vec::new(),
            llm: None,
            tools: None,
            voice: None,
            image: None,
            artifacts: None,
            providers: None,
            speech: None,
        }
    }
}

/// Who runs the tool calls a third-party plugin makes (`ABSTRACTGATEWAY_TOOL_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolMode {
    /// The default: a person approves each call first.
    #[default]
    Passthrough,
    /// The seed's other name for waiting for approval.
    ApprovalRequired,
    /// The gateway runs them without asking.
    Local,
}

impl ToolMode {
    /// The mode a setting names (any case, surrounding blanks ignored); `None` for an unknown one.
    pub fn parse(s: &str) -> Option<ToolMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "passthrough" => Some(ToolMode::Passthrough),
            "approval_required" => Some(ToolMode::ApprovalRequired),
            "local" => Some(ToolMode::Local),
            _ => None,
        }
    }

    /// Its setting's spelling, as nodes see it in `_gateway.tool_mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolMode::Passthrough => "passthrough",
            ToolMode::ApprovalRequired => "approval_required",
            ToolMode::Local => "local",
        }
    }
}

/// A WIT error value.
pub fn error(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
        retryable: matches!(
            code,
            ErrorCode::RateLimited | ErrorCode::Timeout | ErrorCode::Unavailable
        ),
    }
}

/// The WIT name of an error code (`access-denied`), as the ledger and messages show it.
pub fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidInput => "invalid-input",
        ErrorCode::AccessDenied => "access-denied",
        ErrorCode::NotFound => "not-found",
        ErrorCode::RateLimited => "rate-limited",
        ErrorCode::Timeout => "timeout",
        ErrorCode::Cancelled => "cancelled",
        ErrorCode::Unavailable => "unavailable",
        ErrorCode::TooLarge => "too-large",
        ErrorCode::Internal => "internal",
        ErrorCode::Unsupported => "unsupported",
    }
}

/// An error as the ledger records it.
pub fn error_json(e: &Error) -> serde_json::Value {
    serde_json::json!({"code": code_name(e.code), "message": e.message, "retryable": e.retryable})
}

/// An error read back from the ledger.
pub fn error_from_json(v: &serde_json::Value) -> Option<Error> {
    const CODES: [ErrorCode; 10] = [
        ErrorCode::InvalidInput,
        ErrorCode::AccessDenied,
        ErrorCode::NotFound,
        ErrorCode::RateLimited,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::Unavailable,
        ErrorCode::TooLarge,
        ErrorCode::Internal,
        ErrorCode::Unsupported,
    ];
    let name = v.get("code")?.as_str()?;
    Some(Error {
        code: CODES.into_iter().find(|c| code_name(*c) == name)?,
        message: v.get("message")?.as_str()?.to_string(),
        retryable: v
            .get("retryable")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    })
}

/// The refusal of a capability the plugin was not granted.
pub fn denied(what: impl std::fmt::Display) -> Error {
    error(
        ErrorCode::AccessDenied,
        format!("not granted to this plugin: {what}"),
    )
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::new()
    }
}

impl super::bindings::types::Host for super::ctx::NodeCtx {}

//! Request, response and error shapes of the WIT `llm` interface, as serde types.
//!
//! These values are written to the run ledger, so none of them may ever hold a credential: keys live
//! only in [`super::config::LlmConfig`] and in the HTTP headers built from it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One chat message (WIT `llm.message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// system, user, assistant or tool.
    pub role: String,
    /// The message text.
    #[serde(default)]
    pub content: String,
    /// Optional author name.
    #[serde(default)]
    pub name: Option<String>,
    /// For role `tool`: the call this message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// For role `assistant`: the tool calls it made, as the JSON list a response carried.
    #[serde(default)]
    pub tool_calls: Option<Value>,
}

impl ChatMessage {
    /// A plain message with only a role and a text.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            name: None,
            tool_call_id: None,
            tool_calls: None,
        }
    }
}

/// One chat completion request (WIT `llm.request`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Provider id; none = the host default.
    #[serde(default)]
    pub provider: Option<String>,
    /// Model name; none = the host default.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// Tool specs `[{name, description, parameters}]`; none or `[]` = no tools.
    #[serde(default)]
    pub tools: Option<Value>,
    /// A JSON schema the answer must match (structured output).
    #[serde(default)]
    pub response_schema: Option<Value>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Output token budget.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Sampling seed, for providers that take one.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Provider-specific options as a JSON object.
    #[serde(default)]
    pub options: Option<Value>,
}

/// A tool call made by the model (WIT `llm.tool-call`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call, used to answer it.
    #[serde(default)]
    pub call_id: Option<String>,
    /// The tool name.
    pub name: String,
    /// The arguments as a JSON object.
    pub arguments: Value,
}

/// Token counts of one completion (WIT `llm.usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Their sum, as the provider reported it.
    pub total_tokens: u32,
}

/// One completion (WIT `llm.response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer text; with a response schema, the JSON document as compact text.
    pub content: String,
    /// Reasoning text, for models that expose it separately.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Tool calls the model asked for.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// stop, length, tool_calls, content_filter...
    pub finish_reason: String,
    /// Token counts.
    #[serde(default)]
    pub usage: Usage,
    /// The provider that answered.
    pub provider: String,
    /// The model that was asked.
    pub model: String,
}

/// Why a host call failed (WIT `types.error-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The request was malformed or asked for something impossible.
    InvalidInput,
    /// The provider refused the credentials, or the caller lacks the capability.
    AccessDenied,
    /// The model or endpoint does not exist.
    NotFound,
    /// The provider throttled us.
    RateLimited,
    /// No answer in the allotted time.
    Timeout,
    /// The caller cancelled the call.
    Cancelled,
    /// The provider could not be reached or is overloaded.
    Unavailable,
    /// The request or answer exceeded a size limit.
    TooLarge,
    /// Something broke on our side or the provider's answer made no sense.
    Internal,
    /// The provider or feature is not available in this host.
    Unsupported,
}

impl ErrorCode {
    /// The WIT spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
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
}

/// A failed LLM call (WIT `types.error`): a machine code, a message for people, and whether trying
/// again may help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct LlmError {
    /// The machine code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

impl LlmError {
    /// An error that retrying will not fix.
    pub fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        LlmError {
            code,
            message: message.into(),
            retryable: false,
        }
    }

    /// An error that may go away on a later attempt.
    pub fn transient(code: ErrorCode, message: impl Into<String>) -> Self {
        LlmError {
            code,
            message: message.into(),
            retryable: true,
        }
    }
}

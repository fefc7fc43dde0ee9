//! `request.options`: the keys the host consumes itself, and the rest that goes to the provider.

use std::time::Duration;

use serde_json::{Map, Value};

use super::types::{ChatRequest, ErrorCode, LlmError};

/// Keys a plugin may not pass through: they would redirect the call or swap the credentials the
/// host chose for it.
/// Longest request timeout a node may ask for.
const MAX_OPTION_TIMEOUT: Duration = Duration::from_secs(3600);

const FORBIDDEN_KEYS: &[&str] = &[
    "base_url",
    "api_key",
    "provider_api_key",
    "api_base",
    "headers",
    "extra_headers",
];

/// Options the host acts on instead of forwarding.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HostOptions {
    /// Deadline of this call (`timeout_s`), retries included.
    pub timeout: Option<Duration>,
    /// Name given to the response schema (`response_schema_name`).
    pub schema_name: Option<String>,
    /// Whether the provider must follow the schema strictly (`strict_schema`, default false: strict
    /// mode rejects many ordinary schemas on OpenAI).
    pub strict_schema: bool,
}

/// Splits `req.options` into host options and provider keys (forwarded into the body as they are).
pub(crate) fn split_options(
    req: &ChatRequest,
) -> Result<(HostOptions, Map<String, Value>), LlmError> {
    let mut host = HostOptions::default();
    let mut rest = match &req.options {
        None | Some(Value::Null) => return Ok((host, Map::new())),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                format!("request options must be a JSON object, got {}", kind(other)),
            ));
        }
    };
    for key in FORBIDDEN_KEYS {
        if rest.remove(*key).is_some() {
            tracing::warn!(key, "LLM request option ignored: the host owns it");
        }
    }
    if let Some(v) = rest.remove("timeout_s").filter(|v| !v.is_null()) {
        match v.as_f64() {
            // Clamped: a plugin's `1e300` means "as long as the host allows", never a panic.
            Some(s) if s > 0.0 && !s.is_nan() => {
                host.timeout = crate::time::secs_capped(s, MAX_OPTION_TIMEOUT)
            }
            _ => {
                return Err(LlmError::fatal(
                    ErrorCode::InvalidInput,
                    format!("options.timeout_s must be a positive number, got {v}"),
                ));
            }
        }
    }
    if let Some(v) = rest.remove("response_schema_name") {
        host.schema_name = v.as_str().map(str::to_string);
    }
    if let Some(v) = rest.remove("strict_schema") {
        host.strict_schema = v.as_bool().unwrap_or(false);
    }
    Ok((host, rest))
}

/// Names a JSON value's type, for messages that must not quote the value.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

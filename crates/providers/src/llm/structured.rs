//! JSON produced by models: response schemas going out, structured answers and tool arguments coming
//! back.

use serde_json::{Map, Value, json};

use super::options::kind;
use super::types::{ErrorCode, LlmError};

/// A response schema ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schema {
    /// `[A-Za-z0-9_-]{1,64}`, as OpenAI requires.
    pub name: String,
    /// The JSON schema itself.
    pub schema: Value,
}

/// Reads `request.response_schema`: a bare JSON schema, or the OpenAI wrappers
/// `{type: json_schema, json_schema: {name, schema}}` / `{name, schema}`, which are unwrapped (§6.1).
pub(crate) fn response_schema(
    raw: Option<&Value>,
    name_hint: Option<&str>,
) -> Result<Option<Schema>, LlmError> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Object(obj) = raw else {
        return Err(LlmError::fatal(
            ErrorCode::InvalidInput,
            format!("response_schema must be a JSON object, got {}", kind(raw)),
        ));
    };
    let (wrapper, schema) = match (obj.get("json_schema"), obj.get("schema")) {
        (Some(Value::Object(inner)), _) => (Some(inner), inner.get("schema")),
        (None, Some(s @ Value::Object(_))) if !obj.contains_key("properties") => {
            (Some(obj), Some(s))
        }
        _ => (None, Some(raw)),
    };
    let schema = match schema {
        Some(s @ Value::Object(_)) => s.clone(),
        None => json!({}),
        Some(other) => {
            return Err(LlmError::fatal(
                ErrorCode::InvalidInput,
                format!(
                    "response_schema.schema must be a JSON object, got {}",
                    kind(other)
                ),
            ));
        }
    };
    let name = name_hint
        .or_else(|| wrapper.and_then(|w| w.get("name")).and_then(Value::as_str))
        .or_else(|| schema.get("title").and_then(Value::as_str))
        .map(sanitize_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "response".to_string());
    Ok(Some(Schema { name, schema }))
}

fn sanitize_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The JSON document in a structured answer: the whole text, else a fenced block, else the outermost
/// `{...}` / `[...]` span (models sometimes wrap JSON in prose).
pub(crate) fn parse_answer(content: &str) -> Option<Value> {
    let text = content.trim();
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        let body = after.split_once('\n').map_or(after, |(_, b)| b);
        if let Some(end) = body.find("```")
            && let Ok(v) = serde_json::from_str(body[..end].trim())
        {
            return Some(v);
        }
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(a), Some(b)) = (text.find(open), text.rfind(close))
            && a < b
            && let Ok(v) = serde_json::from_str(&text[a..=b])
        {
            return Some(v);
        }
    }
    None
}

/// Turns a structured answer into its compact JSON text, or says why it is not JSON.
pub(crate) fn structured_content(provider: &str, content: &str) -> Result<String, LlmError> {
    let value = parse_answer(content).ok_or_else(|| {
        let mut quoted: String = content.chars().take(200).collect();
        if content.chars().count() > 200 {
            quoted.push('…');
        }
        LlmError::transient(
            ErrorCode::Internal,
            format!("{provider}: the answer to a structured request is not JSON: {quoted:?}"),
        )
    })?;
    serde_json::to_string(&value).map_err(|e| {
        LlmError::fatal(
            ErrorCode::Internal,
            format!("{provider}: cannot re-encode answer: {e}"),
        )
    })
}

/// Tool-call arguments as an object: JSON strings are parsed (OpenAI sends a string); text that is
/// not a JSON object is kept under `_raw` so nothing the model said is lost.
pub(crate) fn tool_arguments(raw: Option<&Value>) -> Value {
    match raw {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({ "_raw": s }),
        },
        Some(other) => json!({ "_raw": other }),
    }
}

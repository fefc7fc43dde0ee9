//! Reading provider answers safely: bodies capped while they stream in, and the provider's own error message
//! picked out of an error answer (OpenAI's `error.message`, or `detail` / `error`), shortened.

use serde_json::Value;

/// Longest provider error text carried into our messages.
const MAX_ERROR_TEXT: usize = 300;

/// Why a body could not be read.
pub(crate) enum ReadError {
    /// More than the cap arrived.
    TooLarge,
    /// The connection failed mid-body.
    Transport(reqwest::Error),
}

/// Reads a body up to `max` bytes.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if out.len() + chunk.len() > max {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The status of an error answer and the provider's message in it (its body's text when it has no JSON one).
pub(crate) async fn error_answer(resp: reqwest::Response) -> (reqwest::StatusCode, String) {
    let status = resp.status();
    let body = read_capped(resp, 64 * 1024).await.unwrap_or_default();
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("detail"))
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    (status, text.chars().take(MAX_ERROR_TEXT).collect())
}

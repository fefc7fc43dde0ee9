//! The one retry loop every HTTP provider goes through: deadline, cancellation, backoff with jitter,
//! `Retry-After`, and the mapping of HTTP failures to [`LlmError`] codes.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::cancel::CancelToken;
use super::config::{LlmConfig, RetryPolicy, Secret};
use super::types::{ErrorCode, LlmError};

/// Answers larger than this are refused rather than buffered.
/// Longest wait a provider's `Retry-After` may ask for (a longer one is capped).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How much of an error body is quoted in a message.
const MAX_QUOTED_CHARS: usize = 400;

/// The shared HTTP client and call policy.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    retry: RetryPolicy,
    timeout: Duration,
    /// Credentials to scrub from any message that could quote a server's answer.
    secrets: Vec<String>,
}

/// One HTTP exchange to perform (possibly several times).
pub(crate) struct Call<'a> {
    /// Provider id, for messages.
    pub provider: &'a str,
    /// GET or POST.
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Headers, credentials included (marked sensitive).
    pub headers: HeaderMap,
    /// JSON body, if any.
    pub body: Option<&'a Value>,
    /// Overrides the configured deadline of this call.
    pub timeout: Option<Duration>,
}

/// A failed attempt and whether the loop may try again.
struct Failure {
    error: LlmError,
    retry: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(error: LlmError) -> Self {
        Failure {
            error,
            retry: false,
            retry_after: None,
        }
    }
}

impl Transport {
    /// A transport with the configuration's timeouts and retry policy.
    pub(crate) fn new(config: &LlmConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("abstractgateway/", env!("CARGO_PKG_VERSION")))
            .build()
            // Building only fails when a TLS backend cannot initialise; the plain client then
            // reports the same problem per call instead of at startup.
            .unwrap_or_else(|_| reqwest::Client::new());
        Transport {
            http,
            retry: config.retry,
            timeout: config.timeout,
            secrets: config.secret_values(),
        }
    }

    /// Performs `call` until it succeeds, fails for good, runs out of attempts or time, or is
    /// cancelled; returns the answer's JSON body.
    pub(crate) async fn json(
        &self,
        call: Call<'_>,
        cancel: &CancelToken,
    ) -> Result<Value, LlmError> {
        let provider = call.provider;
        if cancel.is_cancelled() {
            return Err(cancelled(provider));
        }
        let timeout = call.timeout.unwrap_or(self.timeout);
        let deadline = Instant::now() + timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(cancelled(provider)),
                _ = tokio::time::sleep_until(deadline) => return Err(timed_out(provider, timeout)),
                r = self.attempt(&call) => r,
            };
            let failure = match outcome {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            let mut error = self.scrub(failure.error);
            if !failure.retry || attempt >= self.retry.max_attempts {
                if failure.retry && attempt > 1 {
                    error
                        .message
                        .push_str(&format!(" (after {attempt} attempts)"));
                }
                return Err(error);
            }
            let delay = match failure.retry_after {
                Some(d) if d > self.retry.max_retry_after => {
                    error
                        .message
                        .push_str(&format!(" (server asked to retry after {} s)", d.as_secs()));
                    return Err(error);
                }
                Some(d) => d,
                None => backoff(&self.retry, attempt),
            };
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            tracing::debug!(
                provider,
                attempt,
                ?delay,
                code = error.code.as_str(),
                "LLM call retried"
            );
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(cancelled(provider)),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<Value, Failure> {
        let provider = call.provider;
        let mut req = self
            .http
            .request(call.method.clone(), &call.url)
            .headers(call.headers.clone());
        if let Some(body) = call.body {
            req = req.json(body);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| send_failure(provider, &call.url, &e))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(Failure::fatal(LlmError::fatal(
                            ErrorCode::TooLarge,
                            format!("{provider}: answer exceeds {MAX_BODY_BYTES} bytes"),
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure {
                        error: LlmError::transient(
                            ErrorCode::Unavailable,
                            format!("{provider}: answer interrupted: {}", error_chain(&e)),
                        ),
                        retry: false,
                        retry_after: None,
                    });
                }
            }
        }
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                Failure::fatal(LlmError::fatal(
                    ErrorCode::Internal,
                    format!(
                        "{provider}: answer is not JSON ({e}): {}",
                        quote(&String::from_utf8_lossy(&body))
                    ),
                ))
            });
        }
        Err(status_failure(provider, status, &body, retry_after))
    }

    fn scrub(&self, mut error: LlmError) -> LlmError {
        error.message = redact(&error.message, &self.secrets);
        error
    }

    /// `POST url` with a JSON `body`; the answer's JSON.
    pub(crate) async fn post(
        &self,
        provider: &str,
        url: String,
        headers: HeaderMap,
        body: &Value,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Value, LlmError> {
        let call = Call {
            provider,
            method: Method::POST,
            url,
            headers,
            body: Some(body),
            timeout,
        };
        self.json(call, cancel).await
    }

    /// `GET url` of a model listing; the model ids it names.
    pub(crate) async fn model_ids(
        &self,
        provider: &str,
        url: String,
        headers: HeaderMap,
        cancel: &CancelToken,
    ) -> Result<Vec<String>, LlmError> {
        let call = Call {
            provider,
            method: Method::GET,
            url,
            headers,
            body: None,
            timeout: None,
        };
        let answer = self.json(call, cancel).await?;
        super::openai::model_ids(provider, &answer)
    }

    /// A structured answer's JSON as compact text; credentials are scrubbed from the error, which quotes
    /// the answer.
    pub(crate) fn structured(&self, provider: &str, content: &str) -> Result<String, LlmError> {
        super::structured::structured_content(provider, content).map_err(|e| self.scrub(e))
    }
}

/// Adds a credential header, marked sensitive so it never appears in `Debug` output.
pub(crate) fn auth_header(
    headers: &mut HeaderMap,
    name: &'static str,
    prefix: &str,
    key: &Secret,
    provider: &str,
) -> Result<(), LlmError> {
    let mut value = HeaderValue::from_str(&format!("{prefix}{}", key.expose())).map_err(|_| {
        LlmError::fatal(
            ErrorCode::InvalidInput,
            format!(
                "{provider}: the configured API key holds characters not allowed in an HTTP header"
            ),
        )
    })?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

fn cancelled(provider: &str) -> LlmError {
    LlmError::fatal(ErrorCode::Cancelled, format!("{provider}: call cancelled"))
}

fn timed_out(provider: &str, timeout: Duration) -> LlmError {
    LlmError::transient(
        ErrorCode::Timeout,
        format!(
            "{provider}: no answer within {:.1} s",
            timeout.as_secs_f64()
        ),
    )
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so concurrent callers
/// spread out while each still waits a growing minimum.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let step = policy
        .base_backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(policy.max_backoff);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return crate::time::secs_capped(ms / 1000.0, MAX_RETRY_AFTER);
    }
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        return crate::time::secs_capped(secs, MAX_RETRY_AFTER);
    }
    let when =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

fn send_failure(provider: &str, url: &str, e: &reqwest::Error) -> Failure {
    if e.is_builder() {
        let hint = if url.starts_with("https://") {
            " (https endpoints need a TLS-enabled build)"
        } else {
            ""
        };
        return Failure::fatal(LlmError::fatal(
            ErrorCode::Unsupported,
            format!("{provider}: cannot call {url}: {}{hint}", error_chain(e)),
        ));
    }
    let chain = error_chain(e);
    if url.starts_with("https://") && chain.contains("scheme is not http") {
        return Failure::fatal(LlmError::fatal(
            ErrorCode::Unsupported,
            format!(
                "{provider}: cannot call {url}: this build has no TLS support for https endpoints \
                 (enable a TLS feature of reqwest, or use an http:// base URL)"
            ),
        ));
    }
    let code = if e.is_timeout() {
        ErrorCode::Timeout
    } else {
        ErrorCode::Unavailable
    };
    Failure {
        error: LlmError::transient(code, format!("{provider}: cannot reach {url}: {chain}")),
        // Only a refused or failed connection is surely unprocessed by the server.
        retry: e.is_connect(),
        retry_after: None,
    }
}

fn status_failure(
    provider: &str,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Failure {
    let detail = error_detail(body);
    let lower = detail.to_lowercase();
    let (code, retry) = match status.as_u16() {
        400 | 422
            if lower.contains("context length")
                || lower.contains("context_length")
                || lower.contains("too long") =>
        {
            (ErrorCode::TooLarge, false)
        }
        400 | 409 | 422 => (ErrorCode::InvalidInput, false),
        401 | 403 => (ErrorCode::AccessDenied, false),
        404 => (ErrorCode::NotFound, false),
        408 => (ErrorCode::Timeout, true),
        413 => (ErrorCode::TooLarge, false),
        429 => (ErrorCode::RateLimited, true),
        500 => (ErrorCode::Internal, true),
        s if s >= 500 => (ErrorCode::Unavailable, true),
        _ => (ErrorCode::Internal, false),
    };
    Failure {
        error: LlmError {
            code,
            message: format!("{provider}: HTTP {}: {detail}", status.as_u16()),
            retryable: retry,
        },
        retry,
        retry_after: if retry { retry_after } else { None },
    }
}

/// The server's own error message (`{error: {message}}`, `{error: "..."}`, `{message}`), else the
/// start of the body.
pub(crate) fn error_detail(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let msg = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(Value::as_str);
        if let Some(m) = msg {
            return quote(m);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        quote(&text)
    }
}

fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        // Very short values would scrub ordinary words; real keys are long.
        if s.len() >= 6 && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

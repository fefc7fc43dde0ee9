//! Provider selection and endpoints, read once from the environment (and an optional secrets file).
//!
//! Rules (flow-format §6.3–6.4): the default pair comes from `ABSTRACTGATEWAY_PROVIDER` (else
//! `ABSTRACTFLOW_PROVIDER`, lower-cased) and `ABSTRACTGATEWAY_MODEL` (else `ABSTRACTFLOW_MODEL`); a request
//! may override either. Base URLs and keys come from the usual provider variables; a JSON object in
//! `ABSTRACTGATEWAY_SECRETS_FILE` may supply the same names, and the environment wins over it. Nothing
//! here fails at startup: a provider that lacks a key is reported when a call asks for it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::types::{ErrorCode, LlmError};

/// The names a secrets file may supply (besides the default pair), and that endpoints read.
const KNOWN_NAMES: &[&str] = &[
    "ABSTRACTGATEWAY_PROVIDER",
    "ABSTRACTFLOW_PROVIDER",
    "ABSTRACTGATEWAY_MODEL",
    "ABSTRACTFLOW_MODEL",
    "ABSTRACTGATEWAY_LLM_TIMEOUT_S",
    "ABSTRACTGATEWAY_LLM_MAX_ATTEMPTS",
    "LMSTUDIO_BASE_URL",
    "LMSTUDIO_API_KEY",
    "OLLAMA_BASE_URL",
    "OLLAMA_HOST",
    "OLLAMA_API_KEY",
    "VLLM_BASE_URL",
    "VLLM_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENAI_COMPATIBLE_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_BASE_URL",
    "OPENROUTER_API_KEY",
];

/// Names whose values are credentials: never printed, never serialized.
const SECRET_NAMES: &[&str] = &[
    "LMSTUDIO_API_KEY",
    "OLLAMA_API_KEY",
    "VLLM_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
];

/// Default per-call deadline: the seed's per-effect timeout (7200 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(7200);

/// A credential. Its `Debug` hides the value and it has no `Serialize`, so it cannot leak into logs
/// or the ledger by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The raw value, for building a request header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Which HTTP dialect a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `POST {base}/chat/completions`, `GET {base}/models`, bearer key.
    OpenAi,
    /// `POST {base}/v1/messages`, `x-api-key`.
    Anthropic,
}

/// Where and how to reach one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The provider id this endpoint serves.
    pub provider: String,
    /// The dialect.
    pub wire: Wire,
    /// Base URL without a trailing slash (OpenAI dialect: includes `/v1`; Anthropic: the host root).
    pub base_url: String,
    /// The key sent with each call, if any.
    pub api_key: Option<Secret>,
}

/// Retry behaviour shared by every HTTP provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on each further retry (then jittered).
    pub base_backoff: Duration,
    /// Upper bound of a computed backoff.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this ends the retries instead of stalling the call.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Everything the providers need from the environment, read once.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    default_provider: Option<String>,
    default_model: Option<String>,
    /// Values of [`KNOWN_NAMES`] that were set (env first, then the secrets file), secrets excluded.
    plain: BTreeMap<String, String>,
    /// Values of [`SECRET_NAMES`] that were set.
    secrets: BTreeMap<String, Secret>,
    /// Deadline of one `complete` call, retries included; a request's `options.timeout_s` overrides it.
    pub timeout: Duration,
    /// How long to wait for a TCP/TLS connection before the attempt counts as failed.
    pub connect_timeout: Duration,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Problems found while reading the configuration (bad secrets file, unparsable numbers).
    warnings: Vec<String>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig::from_vars(|_| None)
    }
}

impl LlmConfig {
    /// Reads the process environment (and the secrets file it names).
    pub fn from_env() -> Self {
        LlmConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var`, which stands for the environment; the secrets file named
    /// by `ABSTRACTGATEWAY_SECRETS_FILE` is read from disk.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut warnings = Vec::new();
        let file = match non_empty(var("ABSTRACTGATEWAY_SECRETS_FILE")) {
            Some(path) => read_secrets_file(&path, &mut warnings),
            None => BTreeMap::new(),
        };
        LlmConfig::build(var, file, warnings)
    }

    /// Like [`LlmConfig::from_vars`] with the secrets file's content given directly.
    pub fn from_vars_and_secrets(
        var: impl Fn(&str) -> Option<String>,
        secrets_file: &serde_json::Map<String, Value>,
    ) -> Self {
        let mut warnings = Vec::new();
        let file = secrets_map(secrets_file, "the secrets file", &mut warnings);
        LlmConfig::build(var, file, warnings)
    }

    fn build(
        var: impl Fn(&str) -> Option<String>,
        file: BTreeMap<String, String>,
        mut warnings: Vec<String>,
    ) -> Self {
        let mut plain = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for &name in KNOWN_NAMES {
            let Some(value) = non_empty(var(name)).or_else(|| file.get(name).cloned()) else {
                continue;
            };
            if SECRET_NAMES.contains(&name) {
                secrets.insert(name.to_string(), Secret(value));
            } else {
                plain.insert(name.to_string(), value);
            }
        }
        let first = |a: &str, b: &str| plain.get(a).or_else(|| plain.get(b)).cloned();
        let default_provider = first("ABSTRACTGATEWAY_PROVIDER", "ABSTRACTFLOW_PROVIDER")
            .map(|p| normalize_provider(&p))
            .filter(|p| !p.is_empty());
        let default_model = first("ABSTRACTGATEWAY_MODEL", "ABSTRACTFLOW_MODEL")
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty());
        let mut timeout = DEFAULT_TIMEOUT;
        if let Some(raw) = plain.get("ABSTRACTGATEWAY_LLM_TIMEOUT_S") {
            match raw.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => {
                    timeout = crate::time::secs_capped(s, Duration::from_secs(86_400)).unwrap_or(timeout)
                }
                _ => warnings.push(format!(
                    "ABSTRACTGATEWAY_LLM_TIMEOUT_S={raw:?} is not a positive number of seconds; using {}",
                    DEFAULT_TIMEOUT.as_secs()
                )),
            }
        }
        let mut retry = RetryPolicy::default();
        if let Some(raw) = plain.get("ABSTRACTGATEWAY_LLM_MAX_ATTEMPTS") {
            match raw.trim().parse::<u32>() {
                Ok(n) if n >= 1 => retry.max_attempts = n,
                _ => warnings.push(format!(
                    "ABSTRACTGATEWAY_LLM_MAX_ATTEMPTS={raw:?} is not a whole number >= 1; using {}",
                    retry.max_attempts
                )),
            }
        }
        LlmConfig {
            default_provider,
            default_model,
            plain,
            secrets,
            timeout,
            connect_timeout: Duration::from_secs(10),
            retry,
            warnings,
        }
    }

    /// The host default `(provider, model)`, when both halves are configured.
    pub fn default_route(&self) -> Option<(String, String)> {
        Some((self.default_provider.clone()?, self.default_model.clone()?))
    }

    /// The default provider id, if configured (lower-cased).
    pub fn default_provider(&self) -> Option<&str> {
        self.default_provider.as_deref()
    }

    /// The default model, if configured.
    pub fn default_model(&self) -> Option<&str> {
        self.default_model.as_deref()
    }

    /// Replaces the default pair, e.g. with one found on a loaded flow when the environment named none.
    pub fn set_default_route(&mut self, provider: Option<&str>, model: Option<&str>) {
        if let Some(p) = provider.map(normalize_provider).filter(|p| !p.is_empty()) {
            self.default_provider = Some(p);
        }
        if let Some(m) = model.map(str::trim).filter(|m| !m.is_empty()) {
            self.default_model = Some(m.to_string());
        }
    }

    /// Problems met while reading the configuration, for the startup log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every configured credential, so error messages can be scrubbed of them.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        self.secrets.values().map(|s| s.0.clone()).collect()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.plain.get(name).map(String::as_str)
    }

    fn key(&self, name: &str) -> Option<Secret> {
        self.secrets.get(name).cloned()
    }

    /// The endpoint of a built-in HTTP provider, or why it cannot be used.
    pub fn endpoint(&self, provider: &str) -> Result<Endpoint, LlmError> {
        let provider = normalize_provider(provider);
        let (wire, base, api_key) = match provider.as_str() {
            "lmstudio" => (
                Wire::OpenAi,
                self.url_or("LMSTUDIO_BASE_URL", "http://localhost:1234/v1")?,
                self.key("LMSTUDIO_API_KEY"),
            ),
            "ollama" => {
                let raw = self
                    .get("OLLAMA_BASE_URL")
                    .or_else(|| self.get("OLLAMA_HOST"))
                    .unwrap_or("http://localhost:11434");
                let mut base = trim_url(raw);
                if !base.contains("://") {
                    base = format!("http://{base}");
                }
                if !base.ends_with("/v1") {
                    base.push_str("/v1");
                }
                (
                    Wire::OpenAi,
                    check_url(base, "OLLAMA_BASE_URL/OLLAMA_HOST")?,
                    self.key("OLLAMA_API_KEY"),
                )
            }
            "vllm" => (
                Wire::OpenAi,
                self.url_or("VLLM_BASE_URL", "http://localhost:8000/v1")?,
                self.key("VLLM_API_KEY"),
            ),
            "openai-compatible" => {
                let name = if self.get("OPENAI_COMPATIBLE_BASE_URL").is_some() {
                    "OPENAI_COMPATIBLE_BASE_URL"
                } else {
                    "OPENAI_BASE_URL"
                };
                (
                    Wire::OpenAi,
                    self.url_or(name, "http://localhost:1234/v1")?,
                    self.key("OPENAI_COMPATIBLE_API_KEY"),
                )
            }
            "openai" => (
                Wire::OpenAi,
                self.url_or("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
                Some(self.required_key("openai", "OPENAI_API_KEY")?),
            ),
            "openrouter" => (
                Wire::OpenAi,
                self.url_or("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")?,
                Some(self.required_key("openrouter", "OPENROUTER_API_KEY")?),
            ),
            "anthropic" => {
                let base = self.url_or("ANTHROPIC_BASE_URL", "https://api.anthropic.com")?;
                let base = base.strip_suffix("/v1").map(str::to_string).unwrap_or(base);
                (
                    Wire::Anthropic,
                    base,
                    Some(self.required_key("anthropic", "ANTHROPIC_API_KEY")?),
                )
            }
            "mlx" | "huggingface" | "portkey" => {
                return Err(LlmError::fatal(
                    ErrorCode::Unsupported,
                    format!(
                        "LLM provider {provider:?} is not available in this host; use an \
                         OpenAI-compatible server (lmstudio, ollama, vllm, openai-compatible) instead"
                    ),
                ));
            }
            "" => {
                return Err(LlmError::fatal(
                    ErrorCode::InvalidInput,
                    "empty LLM provider id",
                ));
            }
            other => {
                return Err(LlmError::fatal(
                    ErrorCode::NotFound,
                    format!(
                        "unknown LLM provider {other:?}; known: openai, anthropic, lmstudio, ollama, \
                         vllm, openai-compatible, openrouter"
                    ),
                ));
            }
        };
        Ok(Endpoint {
            provider,
            wire,
            base_url: base,
            api_key,
        })
    }

    fn url_or(&self, name: &str, default: &str) -> Result<String, LlmError> {
        check_url(trim_url(self.get(name).unwrap_or(default)), name)
    }

    fn required_key(&self, provider: &str, name: &str) -> Result<Secret, LlmError> {
        self.key(name).ok_or_else(|| {
            let mut message = format!(
                "LLM provider {provider:?} is not configured: set {name} in the environment or in the \
                 JSON file named by ABSTRACTGATEWAY_SECRETS_FILE"
            );
            if !self.warnings.is_empty() {
                message.push_str(&format!(" ({})", self.warnings.join("; ")));
            }
            LlmError::fatal(ErrorCode::AccessDenied, message)
        })
    }
}

/// Provider ids are case-insensitive; `openai_compatible` is accepted for `openai-compatible`.
pub fn normalize_provider(raw: &str) -> String {
    raw.trim().to_lowercase().replace('_', "-")
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn trim_url(raw: &str) -> String {
    raw.trim().trim_end_matches('/').to_string()
}

fn check_url(url: String, name: &str) -> Result<String, LlmError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(LlmError::fatal(
            ErrorCode::InvalidInput,
            format!("{name} must be an http:// or https:// URL, got {url:?}"),
        ))
    }
}

fn read_secrets_file(path: &str, warnings: &mut Vec<String>) -> BTreeMap<String, String> {
    let what = format!("ABSTRACTGATEWAY_SECRETS_FILE {path:?}");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            warnings.push(format!("cannot read {what}: {e}"));
            return BTreeMap::new();
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => secrets_map(&map, &what, warnings),
        Ok(_) => {
            warnings.push(format!("{what} must hold a JSON object of NAME: value"));
            BTreeMap::new()
        }
        // serde_json's message carries a line and column, never the text around it.
        Err(e) => {
            warnings.push(format!("{what} is not valid JSON: {e}"));
            BTreeMap::new()
        }
    }
}

fn secrets_map(
    map: &serde_json::Map<String, Value>,
    what: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in map {
        match value {
            Value::String(s) if !s.trim().is_empty() => {
                out.insert(name.clone(), s.clone());
            }
            Value::String(_) | Value::Null => {}
            // The value may be a key typed in the wrong shape; name the entry, never print it.
            _ => warnings.push(format!("{what}: entry {name:?} is not a string; ignored")),
        }
    }
    out
}

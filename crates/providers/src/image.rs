//! Images over the OpenAI-compatible images API (`POST {base}/images/generations`, JSON in;
//! `POST {base}/images/edits`, multipart in; both answer `{"data": [{"b64_json": …}]}`). OpenAI, LocalAI and
//! others speak it.
//!
//! Image providers are the LLM providers: a provider id names the same endpoint and key (`OPENAI_BASE_URL`,
//! `OPENAI_COMPATIBLE_BASE_URL`, …), so an operator configures one place. The default pair comes from
//! `ABSTRACTGATEWAY_IMAGE_PROVIDER` and `ABSTRACTGATEWAY_IMAGE_MODEL`; a node may name others.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::http_body::{ReadError, error_answer, read_capped};
use crate::llm::{ErrorCode, LlmError, Providers, Wire, normalize_provider};
use crate::multipart::{FilePart, multipart};

/// What the images of this gateway may be, and where they come from by default.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// `ABSTRACTGATEWAY_IMAGE_PROVIDER`.
    pub default_provider: Option<String>,
    /// `ABSTRACTGATEWAY_IMAGE_MODEL`.
    pub default_model: Option<String>,
    /// Whole-request timeout (`ABSTRACTGATEWAY_IMAGE_TIMEOUT_S`, default 300 s: generation is slow).
    pub timeout: Duration,
    /// Largest decoded image accepted from a provider or sent to one (`ABSTRACTGATEWAY_IMAGE_MAX_BYTES`, 32 MiB).
    pub max_bytes: u64,
    /// Largest side asked of a provider, pixels.
    pub max_side: u32,
    /// Longest prompt, characters.
    pub max_prompt_chars: usize,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            default_provider: None,
            default_model: None,
            timeout: Duration::from_secs(300),
            max_bytes: 32 << 20,
            max_side: 4096,
            max_prompt_chars: 32_000,
        }
    }
}

impl ImageConfig {
    /// The configuration the process environment describes; bad numbers keep the defaults.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let num = |name: &str| {
            var(name)
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        let mut c = ImageConfig {
            default_provider: var("ABSTRACTGATEWAY_IMAGE_PROVIDER").map(|p| normalize_provider(&p)),
            default_model: var("ABSTRACTGATEWAY_IMAGE_MODEL"),
            ..ImageConfig::default()
        };
        if let Some(s) = num("ABSTRACTGATEWAY_IMAGE_TIMEOUT_S") {
            c.timeout = Duration::from_secs(s.min(3600));
        }
        if let Some(n) = num("ABSTRACTGATEWAY_IMAGE_MAX_BYTES") {
            c.max_bytes = n;
        }
        c
    }
}

/// What to make: a new image from text, or an edit of a given one.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    Generate,
    Edit {
        source: Vec<u8>,
        mask: Option<Vec<u8>>,
    },
}

/// One image request, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    pub task: Task,
    pub prompt: String,
    pub negative_prompt: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<String>,
    pub seed: Option<i64>,
    pub steps: Option<u32>,
    pub guidance_scale: Option<f64>,
    pub provider: Option<String>,
    pub model: Option<String>,
}

/// An image a provider returned, checked to be one.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub provider: String,
    pub model: String,
}

/// Recognises an image by its magic bytes (a provider's declared type is not trusted).
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The image providers: endpoints from the LLM providers' configuration, one HTTP client.
pub struct Images {
    config: ImageConfig,
    providers: Arc<Providers>,
    client: reqwest::Client,
}

impl Images {
    /// Images over `providers`' endpoints.
    pub fn new(config: ImageConfig, providers: Arc<Providers>) -> Self {
        Images {
            config,
            providers,
            client: reqwest::Client::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Makes one image. Nothing is stored: the caller keeps it as an artifact.
    pub async fn make(&self, req: ImageRequest) -> Result<Image, LlmError> {
        self.check(&req)?;
        let provider = req
            .provider
            .as_deref()
            .map(normalize_provider)
            .filter(|p| !p.is_empty())
            .or_else(|| self.config.default_provider.clone())
            .ok_or_else(|| {
                LlmError::fatal(
                    ErrorCode::Unavailable,
                    "no image provider is configured on this gateway: set ABSTRACTGATEWAY_IMAGE_PROVIDER (an \
                     OpenAI-compatible provider such as openai or openai-compatible) or name image_provider \
                     on the node",
                )
            })?;
        let model = req
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .or_else(|| self.config.default_model.clone())
            .ok_or_else(|| {
                LlmError::fatal(
                    ErrorCode::InvalidInput,
                    "no image model: set ABSTRACTGATEWAY_IMAGE_MODEL or name image_model on the node",
                )
            })?;
        let endpoint = self.providers.config().endpoint(&provider)?;
        if endpoint.wire != Wire::OpenAi {
            return Err(LlmError::fatal(
                ErrorCode::Unsupported,
                format!("provider {provider:?} has no OpenAI-compatible images API"),
            ));
        }
        let base = endpoint.base_url.trim_end_matches('/');
        let size = match (req.width, req.height) {
            (Some(w), Some(h)) => Some(format!("{w}x{h}")),
            _ => None,
        };
        let rb = match &req.task {
            Task::Generate => {
                let mut body = json!({"model": model, "prompt": req.prompt, "n": 1,
                    "response_format": "b64_json"});
                if let Some(m) = body.as_object_mut() {
                    let extras = [
                        ("size", size.clone().map(Value::from)),
                        ("output_format", req.format.clone().map(Value::from)),
                        (
                            "negative_prompt",
                            req.negative_prompt.clone().map(Value::from),
                        ),
                        ("seed", req.seed.map(Value::from)),
                        // LocalAI's name for the diffusion steps.
                        ("step", req.steps.map(Value::from)),
                        ("guidance_scale", req.guidance_scale.map(Value::from)),
                    ];
                    for (k, v) in extras {
                        if let Some(v) = v {
                            m.insert(k.into(), v);
                        }
                    }
                }
                self.client
                    .post(format!("{base}/images/generations"))
                    .json(&body)
            }
            Task::Edit { source, mask } => {
                let mut fields: Vec<(&str, String)> = vec![
                    ("model", model.clone()),
                    ("prompt", req.prompt.clone()),
                    ("n", "1".into()),
                    ("response_format", "b64_json".into()),
                ];
                if let Some(s) = &size {
                    fields.push(("size", s.clone()));
                }
                let mut files = vec![FilePart::new("image", "image", source)];
                if let Some(mask) = mask {
                    files.push(FilePart::new("mask", "mask", mask));
                }
                let (ct, body) = multipart(&fields, &files);
                self.client
                    .post(format!("{base}/images/edits"))
                    .header(reqwest::header::CONTENT_TYPE, ct)
                    .body(body)
            }
        };
        let rb = rb.timeout(self.config.timeout);
        let rb = match &endpoint.api_key {
            Some(k) => rb.bearer_auth(k.expose()),
            None => rb,
        };
        let resp = rb.send().await.map_err(|e| send_error(&e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        // base64 is 4/3 of the image, plus a little JSON.
        let cap = usize::try_from(self.config.max_bytes / 3 * 4 + 64 * 1024).unwrap_or(usize::MAX);
        let body = read_body(resp, cap).await?;
        let bytes = decode_answer(&body, self.config.max_bytes)?;
        let content_type = sniff(&bytes).ok_or_else(|| {
            LlmError::fatal(
                ErrorCode::Internal,
                "the image provider answered with something that is not a PNG, JPEG or WebP image",
            )
        })?;
        Ok(Image {
            bytes,
            content_type,
            provider,
            model,
        })
    }

    /// Refuses what no provider should be sent: an empty or huge prompt, absurd sizes, huge sources.
    fn check(&self, req: &ImageRequest) -> Result<(), LlmError> {
        let invalid = |m: String| Err(LlmError::fatal(ErrorCode::InvalidInput, m));
        if req.prompt.trim().is_empty() {
            return invalid("the prompt is empty".into());
        }
        if req.prompt.chars().count() > self.config.max_prompt_chars {
            return invalid(format!(
                "the prompt has more than {} characters",
                self.config.max_prompt_chars
            ));
        }
        for side in [req.width, req.height].into_iter().flatten() {
            if side == 0 || side > self.config.max_side {
                return invalid(format!(
                    "image sides must be 1..={} pixels, got {side}",
                    self.config.max_side
                ));
            }
        }
        if let Some(f) = &req.format
            && !matches!(f.as_str(), "png" | "jpeg" | "jpg" | "webp")
        {
            return invalid(format!("unsupported image format {f:?} (png, jpeg, webp)"));
        }
        if let Task::Edit { source, mask } = &req.task {
            for (what, bytes) in [("source", Some(source)), ("mask", mask.as_ref())] {
                let Some(bytes) = bytes else { continue };
                if bytes.len() as u64 > self.config.max_bytes {
                    return Err(LlmError::fatal(
                        ErrorCode::TooLarge,
                        format!("the {what} image is over {} bytes", self.config.max_bytes),
                    ));
                }
                if sniff(bytes).is_none() {
                    return invalid(format!(
                        "the {what} artifact is not a PNG, JPEG or WebP image"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The first image of an images-API answer, decoded and capped.
fn decode_answer(body: &[u8], max: u64) -> Result<Vec<u8>, LlmError> {
    let bad = |m: &str| {
        LlmError::fatal(
            ErrorCode::Internal,
            format!("the image provider's answer {m}"),
        )
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    let first = v
        .get("data")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
        .ok_or_else(|| bad("has no data[0]"))?;
    let Some(b64) = first.get("b64_json").and_then(Value::as_str) else {
        // A URL would have to be fetched from wherever the provider says: this gateway does not follow it.
        return Err(bad(
            "carries no b64_json image (a URL answer is not followed)",
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("has invalid base64"))?;
    if bytes.len() as u64 > max {
        return Err(LlmError::fatal(
            ErrorCode::TooLarge,
            format!("the image provider sent an image over {max} bytes"),
        ));
    }
    Ok(bytes)
}

fn send_error(e: &reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::transient(ErrorCode::Timeout, "the image provider timed out")
    } else if e.is_builder() {
        LlmError::fatal(
            ErrorCode::Unavailable,
            format!("bad image provider URL: {e}"),
        )
    } else {
        LlmError::transient(
            ErrorCode::Unavailable,
            format!("image provider unreachable: {e}"),
        )
    }
}

/// Maps a non-success answer to an error, with the provider's own message when it sent one.
async fn status_error(resp: reqwest::Response) -> LlmError {
    let (status, text) = error_answer(resp).await;
    let msg = format!("image provider answered {status}: {text}");
    match status.as_u16() {
        400 | 415 | 422 => LlmError::fatal(ErrorCode::InvalidInput, msg),
        401 | 403 => LlmError::fatal(ErrorCode::AccessDenied, msg),
        404 => LlmError::fatal(ErrorCode::NotFound, msg),
        413 => LlmError::fatal(ErrorCode::TooLarge, msg),
        429 => LlmError::transient(ErrorCode::RateLimited, msg),
        s if s >= 500 => LlmError::transient(ErrorCode::Unavailable, msg),
        _ => LlmError::fatal(ErrorCode::Internal, msg),
    }
}

/// Reads a body up to `max` bytes.
async fn read_body(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, LlmError> {
    read_capped(resp, max).await.map_err(|e| match e {
        ReadError::TooLarge => LlmError::fatal(
            ErrorCode::TooLarge,
            format!("the image provider sent more than {max} bytes"),
        ),
        ReadError::Transport(e) => send_error(&e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real 1×1 PNG.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8,
        0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    fn answer(b64: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"created": 1, "data": [{"b64_json": b64}]})).expect("json")
    }

    #[test]
    fn answers_decode_only_to_capped_images() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(PNG);
        assert_eq!(decode_answer(&answer(&b64), 1 << 20).expect("png"), PNG);
        assert_eq!(sniff(PNG), Some("image/png"));
        let e = decode_answer(&answer(&b64), 10).expect_err("over the cap");
        assert_eq!(e.code, ErrorCode::TooLarge);
        for bad in [
            b"not json".to_vec(),
            serde_json::to_vec(&json!({"data": []})).expect("json"),
            serde_json::to_vec(&json!({"data": [{"url": "http://169.254.169.254/x"}]}))
                .expect("json"),
            answer("!!!"),
        ] {
            assert!(decode_answer(&bad, 1 << 20).is_err());
        }
        assert_eq!(sniff(b"GIF89a"), None);
    }

    #[test]
    fn hostile_requests_are_refused_before_any_call() {
        let images = Images::new(
            ImageConfig::default(),
            Arc::new(Providers::new(crate::llm::LlmConfig::from_vars(|_| None))),
        );
        let req = |prompt: &str, width: Option<u32>, task: Task| ImageRequest {
            task,
            prompt: prompt.into(),
            negative_prompt: None,
            width,
            height: width,
            format: None,
            seed: None,
            steps: None,
            guidance_scale: None,
            provider: None,
            model: None,
        };
        assert!(images.check(&req("  ", None, Task::Generate)).is_err());
        assert!(
            images
                .check(&req(&"x".repeat(40_000), None, Task::Generate))
                .is_err()
        );
        assert!(
            images
                .check(&req("cat", Some(100_000), Task::Generate))
                .is_err()
        );
        assert!(images.check(&req("cat", Some(0), Task::Generate)).is_err());
        let not_an_image = Task::Edit {
            source: b"#!/bin/sh".to_vec(),
            mask: None,
        };
        assert!(images.check(&req("cat", None, not_an_image)).is_err());
        let ok = Task::Edit {
            source: PNG.to_vec(),
            mask: Some(PNG.to_vec()),
        };
        assert!(images.check(&req("cat", Some(512), ok)).is_ok());
    }
}

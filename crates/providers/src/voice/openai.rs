//! The OpenAI-compatible audio endpoints: `POST {base}/v1/audio/speech` (JSON in, audio out) and
//! `POST {base}/v1/audio/transcriptions` (multipart in, JSON out).

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::audio::{AudioFormat, parse_wav, sniff};
use super::error::{VoiceError, VoiceErrorCode};
use super::{Audio, SpeechBackend, Transcript};
use crate::http_body::{ReadError, error_answer, read_capped};
use crate::multipart::{FilePart, multipart, one_line};

/// An API key: never printed, never serialised.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The `openai` provider (both directions).
#[derive(Debug)]
pub struct OpenAiSpeech {
    /// Base URL, with or without a trailing `/v1`.
    pub base_url: String,
    key: Option<ApiKey>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Model of speech requests without one.
    pub tts_model: String,
    /// Voice of speech requests without one.
    pub tts_voice: String,
    /// Model of transcription requests without one.
    pub stt_model: String,
    /// Largest audio accepted back from the provider.
    pub max_response_bytes: usize,
    client: reqwest::Client,
    /// Drives the async client for blocking callers; built on first use.
    rt: OnceLock<Result<tokio::runtime::Runtime, VoiceError>>,
}

impl OpenAiSpeech {
    /// A provider at `base_url` authenticating with `key` (none: no `Authorization` header, for local servers).
    pub fn new(base_url: impl Into<String>, key: Option<ApiKey>) -> Self {
        OpenAiSpeech {
            base_url: base_url.into(),
            key,
            timeout: Duration::from_secs(120),
            tts_model: "tts-1".into(),
            tts_voice: "alloy".into(),
            stt_model: "whisper-1".into(),
            max_response_bytes: 64 * 1024 * 1024,
            client: reqwest::Client::new(),
            rt: OnceLock::new(),
        }
    }

    /// `OPENAI_BASE_URL` (default `https://api.openai.com`) and `OPENAI_API_KEY`.
    pub fn from_env() -> Self {
        let base = std::env::var("OPENAI_BASE_URL")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "https://api.openai.com".into());
        let key = std::env::var("OPENAI_API_KEY")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(ApiKey);
        Self::new(base, key)
    }

    fn url(&self, path: &str) -> String {
        let base = self.base_url.trim_end_matches('/');
        if base.ends_with("/v1") {
            format!("{base}/{path}")
        } else {
            format!("{base}/v1/{path}")
        }
    }

    /// Runs `fut` to completion on the provider's own runtime, from any thread (inside a runtime or not).
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, VoiceError>> + Send + 'static,
    ) -> Result<T, VoiceError> {
        let rt = self
            .rt
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("voice-openai")
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        VoiceError::internal(format!("cannot start the HTTP runtime: {e}"))
                    })
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| VoiceError::internal("the HTTP task ended without an answer"))?
    }

    fn request(&self, url: String) -> reqwest::RequestBuilder {
        let rb = self.client.post(url).timeout(self.timeout);
        match &self.key {
            Some(k) => rb.bearer_auth(&k.0),
            None => rb,
        }
    }
}

impl Drop for OpenAiSpeech {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; shutting it down in the background never does.
        if let Some(Ok(rt)) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn send_error(e: &reqwest::Error) -> VoiceError {
    if e.is_timeout() {
        VoiceError::retryable(VoiceErrorCode::Timeout, "the speech provider timed out")
    } else if e.is_builder() {
        VoiceError::unavailable(format!("bad speech provider URL: {e}"))
    } else {
        VoiceError::retryable(
            VoiceErrorCode::Unavailable,
            format!("speech provider unreachable: {e}"),
        )
    }
}

/// Maps a non-success answer to an error, with the provider's own message when it sent one.
async fn status_error(resp: reqwest::Response) -> VoiceError {
    let (status, text) = error_answer(resp).await;
    let msg = format!("speech provider answered {status}: {text}");
    match status.as_u16() {
        400 | 415 | 422 => VoiceError::invalid(msg),
        401 | 403 => VoiceError::unavailable(msg),
        404 => VoiceError::new(VoiceErrorCode::NotFound, msg),
        413 => VoiceError::too_large(msg),
        429 => VoiceError::retryable(VoiceErrorCode::RateLimited, msg),
        s if s >= 500 => VoiceError::retryable(VoiceErrorCode::Unavailable, msg),
        _ => VoiceError::internal(msg),
    }
}

/// Reads a body up to `max` bytes.
async fn read_body(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, VoiceError> {
    read_capped(resp, max).await.map_err(|e| match e {
        ReadError::TooLarge => {
            VoiceError::too_large(format!("the speech provider sent more than {max} bytes"))
        }
        ReadError::Transport(e) => send_error(&e),
    })
}

fn speech_content_type(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "opus" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "pcm" => "audio/pcm",
        _ => "audio/wav",
    }
}

impl SpeechBackend for OpenAiSpeech {
    fn name(&self) -> &str {
        "openai"
    }

    fn synthesize(
        &self,
        text: &str,
        voice: Option<&str>,
        format: Option<&str>,
        model: Option<&str>,
    ) -> Result<Audio, VoiceError> {
        let format = format.unwrap_or("wav").to_ascii_lowercase();
        if !matches!(
            format.as_str(),
            "wav" | "mp3" | "opus" | "aac" | "flac" | "pcm"
        ) {
            return Err(VoiceError::unsupported(format!(
                "unsupported audio format {format:?} (wav, mp3, opus, aac, flac, pcm)"
            )));
        }
        let body = json!({
            "model": model.unwrap_or(&self.tts_model),
            "input": text,
            "voice": voice.unwrap_or(&self.tts_voice),
            "response_format": format,
        });
        let rb = self.request(self.url("audio/speech")).json(&body);
        let max = self.max_response_bytes;
        let (bytes, header_type) = self.block(async move {
            let resp = rb.send().await.map_err(|e| send_error(&e))?;
            if !resp.status().is_success() {
                return Err(status_error(resp).await);
            }
            let ct = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok((read_body(resp, max).await?, ct))
        })?;
        if bytes.is_empty() {
            return Err(VoiceError::retryable(
                VoiceErrorCode::Unavailable,
                "the speech provider returned no audio",
            ));
        }
        let content_type = match sniff(&bytes) {
            Some(f) => f.content_type().to_string(),
            None => header_type
                .filter(|t| t.starts_with("audio/"))
                .unwrap_or_else(|| speech_content_type(&format).to_string()),
        };
        let duration_ms = if sniff(&bytes) == Some(AudioFormat::Wav) {
            parse_wav(&bytes)
                .ok()
                .map(|p| u32::try_from(p.duration_ms()).unwrap_or(u32::MAX))
        } else {
            None
        };
        Ok(Audio {
            bytes,
            content_type,
            duration_ms,
        })
    }

    fn transcribe(
        &self,
        audio: &[u8],
        content_type: &str,
        language: Option<&str>,
        hint: Option<&str>,
        model: Option<&str>,
    ) -> Result<Transcript, VoiceError> {
        let (extension, file_type) = match sniff(audio) {
            Some(f) => (f.extension(), f.content_type().to_string()),
            None => ("bin", one_line(content_type)),
        };
        let model = one_line(model.unwrap_or(&self.stt_model));
        let language = language.map(one_line);
        let hint = hint.map(one_line);
        let mut fields: Vec<(&str, &str)> = vec![("model", &model), ("response_format", "json")];
        if let Some(l) = &language {
            fields.push(("language", l));
        }
        if let Some(h) = &hint {
            fields.push(("prompt", h));
        }
        let (ct, body) = multipart(
            &fields,
            &[FilePart::typed(
                "file", "audio", audio, &file_type, extension,
            )],
        );
        let rb = self
            .request(self.url("audio/transcriptions"))
            .header(reqwest::header::CONTENT_TYPE, ct)
            .body(body);
        let v: Value = self.block(async move {
            let resp = rb.send().await.map_err(|e| send_error(&e))?;
            if !resp.status().is_success() {
                return Err(status_error(resp).await);
            }
            let bytes = read_body(resp, 16 * 1024 * 1024).await?;
            serde_json::from_slice(&bytes).map_err(|e| {
                VoiceError::internal(format!("the transcription answer is not JSON: {e}"))
            })
        })?;
        let text = v
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| VoiceError::internal("the transcription answer has no text"))?;
        Ok(Transcript {
            text: text.trim().to_string(),
            language: v
                .get("language")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(language),
        })
    }
}

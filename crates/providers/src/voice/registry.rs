//! The provider registry: picks a backend by name, validates text and audio against the caps, and moves
//! audio in and out of run artifacts (what the WIT `voice` functions do).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::audio::{AudioFormat, parse_wav, sniff};
use super::error::{VoiceError, VoiceErrorCode};
use super::{Audio, EspeakTts, OpenAiSpeech, PocketsphinxStt, SpeechBackend, Transcript};
use crate::artifacts::{ArtifactError, ArtifactStore, NewArtifact};

/// Limits and defaults of the voice host.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// Provider of synthesis requests without one.
    pub default_tts: String,
    /// Provider of transcription requests without one.
    pub default_stt: String,
    /// Largest input audio accepted for transcription.
    pub max_audio_bytes: u64,
    /// Longest input audio accepted for transcription (checked when the format tells the length).
    pub max_audio_ms: u64,
    /// Longest text accepted for synthesis, in characters.
    pub max_text_chars: usize,
    /// Engine subprocess deadline for synthesis.
    pub tts_timeout: Duration,
    /// Engine subprocess deadline for transcription.
    pub stt_timeout: Duration,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            default_tts: "espeak".into(),
            default_stt: "pocketsphinx".into(),
            max_audio_bytes: 25 * 1024 * 1024,
            max_audio_ms: 10 * 60 * 1000,
            max_text_chars: 5000,
            tts_timeout: Duration::from_secs(30),
            stt_timeout: Duration::from_secs(120),
        }
    }
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn env_str(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

impl VoiceConfig {
    /// The defaults, overridden by `ABSTRACTGATEWAY_VOICE_{TTS_PROVIDER,STT_PROVIDER,MAX_AUDIO_BYTES,
    /// MAX_AUDIO_SECONDS,MAX_TEXT_CHARS,TIMEOUT_S}`.
    pub fn from_env() -> Self {
        let mut c = VoiceConfig::default();
        if let Some(p) = env_str("ABSTRACTGATEWAY_VOICE_TTS_PROVIDER") {
            c.default_tts = p;
        }
        if let Some(p) = env_str("ABSTRACTGATEWAY_VOICE_STT_PROVIDER") {
            c.default_stt = p;
        }
        if let Some(n) = env_num("ABSTRACTGATEWAY_VOICE_MAX_AUDIO_BYTES").filter(|n| *n > 0) {
            c.max_audio_bytes = n;
        }
        if let Some(n) = env_num("ABSTRACTGATEWAY_VOICE_MAX_AUDIO_SECONDS").filter(|n| *n > 0) {
            c.max_audio_ms = n.saturating_mul(1000);
        }
        if let Some(n) = env_num("ABSTRACTGATEWAY_VOICE_MAX_TEXT_CHARS").filter(|n| *n > 0) {
            c.max_text_chars = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = env_num("ABSTRACTGATEWAY_VOICE_TIMEOUT_S").filter(|n| *n > 0) {
            c.tts_timeout = Duration::from_secs(n);
            c.stt_timeout = Duration::from_secs(n);
        }
        c
    }
}

/// A synthesis call (the WIT `synthesis` record).
#[derive(Debug, Clone, Default)]
pub struct SynthesisRequest {
    /// What to say.
    pub text: String,
    /// Provider voice name.
    pub voice: Option<String>,
    /// `wav` (default), `mp3`, ...
    pub format: Option<String>,
    /// Provider name; none = the configured default.
    pub provider: Option<String>,
    /// Provider model.
    pub model: Option<String>,
}

/// A transcription call (the WIT `transcription` record, minus the artifact id).
#[derive(Debug, Clone, Default)]
pub struct TranscriptionRequest {
    /// Expected language (`en`, ...).
    pub language: Option<String>,
    /// Words expected in the audio.
    pub hint: Option<String>,
    /// Provider name; none = the configured default.
    pub provider: Option<String>,
    /// Provider model.
    pub model: Option<String>,
}

/// Synthesised audio stored as a run artifact (the WIT `audio` record).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioArtifact {
    /// The artifact holding the audio.
    pub artifact_id: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its length when known.
    pub duration_ms: Option<u32>,
}

/// The voice host: providers by name plus the limits every call is checked against.
#[derive(Clone)]
pub struct Voice {
    cfg: VoiceConfig,
    backends: BTreeMap<String, Arc<dyn SpeechBackend>>,
}

impl std::fmt::Debug for Voice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice")
            .field("cfg", &self.cfg)
            .field("providers", &self.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn artifact_error(e: ArtifactError) -> VoiceError {
    match e {
        ArtifactError::InvalidId(_) | ArtifactError::InvalidInput(_) => {
            VoiceError::invalid(e.to_string())
        }
        ArtifactError::NotFound(_) => VoiceError::new(VoiceErrorCode::NotFound, e.to_string()),
        ArtifactError::TooLarge { .. } => VoiceError::too_large(e.to_string()),
        ArtifactError::Corrupt(_) | ArtifactError::Io(_) => VoiceError::internal(e.to_string()),
        ArtifactError::Unavailable(_) => {
            VoiceError::new(VoiceErrorCode::Unavailable, e.to_string())
        }
    }
}

impl Voice {
    /// The local providers (`espeak`, `pocketsphinx`) and `openai` configured from the environment.
    pub fn new(cfg: VoiceConfig) -> Self {
        let espeak = EspeakTts {
            timeout: cfg.tts_timeout,
            max_text_chars: cfg.max_text_chars,
            ..EspeakTts::default()
        };
        let mut sphinx = PocketsphinxStt::default();
        sphinx.timeout = cfg.stt_timeout;
        let espeak: Arc<dyn SpeechBackend> = Arc::new(espeak);
        Voice {
            cfg,
            backends: BTreeMap::new(),
        }
        .with_backend("espeak", espeak.clone())
        .with_backend("espeak-ng", espeak)
        .with_backend("pocketsphinx", Arc::new(sphinx))
        .with_backend("openai", Arc::new(OpenAiSpeech::from_env()))
    }

    /// [`Voice::new`] with [`VoiceConfig::from_env`].
    pub fn from_env() -> Self {
        Self::new(VoiceConfig::from_env())
    }

    /// Registers (or replaces) the provider called `name`.
    pub fn with_backend(mut self, name: &str, backend: Arc<dyn SpeechBackend>) -> Self {
        self.backends.insert(name.to_ascii_lowercase(), backend);
        self
    }

    /// The limits in force.
    pub fn config(&self) -> &VoiceConfig {
        &self.cfg
    }

    /// Names of the registered providers.
    pub fn providers(&self) -> Vec<String> {
        self.backends.keys().cloned().collect()
    }

    fn backend(
        &self,
        requested: Option<&str>,
        default: &str,
    ) -> Result<&Arc<dyn SpeechBackend>, VoiceError> {
        let name = requested
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(default)
            .to_ascii_lowercase();
        self.backends.get(&name).ok_or_else(|| {
            VoiceError::unsupported(format!(
                "unknown voice provider {name:?} (known: {})",
                self.providers().join(", ")
            ))
        })
    }

    /// Text to speech with the requested (or default) provider.
    pub fn synthesize(&self, req: &SynthesisRequest) -> Result<Audio, VoiceError> {
        if req.text.trim().is_empty() {
            return Err(VoiceError::invalid("text is empty"));
        }
        let chars = req.text.chars().count();
        if chars > self.cfg.max_text_chars {
            return Err(VoiceError::too_large(format!(
                "text has {chars} characters; the limit is {}",
                self.cfg.max_text_chars
            )));
        }
        let backend = self.backend(req.provider.as_deref(), &self.cfg.default_tts)?;
        backend.synthesize(
            &req.text,
            req.voice.as_deref(),
            req.format.as_deref(),
            req.model.as_deref(),
        )
    }

    /// Checks input audio: present, really audio (by its bytes), and within the size and length caps.
    pub fn check_audio(&self, audio: &[u8]) -> Result<AudioFormat, VoiceError> {
        if audio.is_empty() {
            return Err(VoiceError::invalid("audio is empty"));
        }
        let size = audio.len() as u64;
        if size > self.cfg.max_audio_bytes {
            return Err(VoiceError::too_large(format!(
                "audio has {size} bytes; the limit is {}",
                self.cfg.max_audio_bytes
            )));
        }
        let format = sniff(audio).ok_or_else(|| {
            VoiceError::invalid("not audio: no WAV, MP3, Ogg, FLAC, WebM or MP4 header")
        })?;
        if format == AudioFormat::Wav {
            let pcm = parse_wav(audio)?;
            if pcm.frames() == 0 {
                return Err(VoiceError::invalid("audio has no samples"));
            }
            let ms = pcm.duration_ms();
            if ms > self.cfg.max_audio_ms {
                return Err(VoiceError::too_large(format!(
                    "audio lasts {:.1} s; the limit is {:.1} s",
                    ms as f64 / 1000.0,
                    self.cfg.max_audio_ms as f64 / 1000.0
                )));
            }
        }
        Ok(format)
    }

    /// Speech to text of `audio` with the requested (or default) provider.
    pub fn transcribe(
        &self,
        audio: &[u8],
        content_type: &str,
        req: &TranscriptionRequest,
    ) -> Result<Transcript, VoiceError> {
        self.check_audio(audio)?;
        let backend = self.backend(req.provider.as_deref(), &self.cfg.default_stt)?;
        backend.transcribe(
            audio,
            content_type,
            req.language.as_deref(),
            req.hint.as_deref(),
            req.model.as_deref(),
        )
    }

    /// WIT `voice.synthesize`: speaks `req.text` and stores the audio as an artifact of `run_id`.
    pub fn synthesize_to_artifact(
        &self,
        store: &ArtifactStore,
        run_id: &str,
        req: &SynthesisRequest,
    ) -> Result<AudioArtifact, VoiceError> {
        let audio = self.synthesize(req)?;
        let backend = self.backend(req.provider.as_deref(), &self.cfg.default_tts)?;
        let mut extra = NewArtifact::default();
        extra.tags.insert("kind".into(), "audio".into());
        extra
            .tags
            .insert("source".into(), "voice.synthesize".into());
        extra
            .tags
            .insert("provider".into(), backend.name().to_string());
        if let Some(ms) = audio.duration_ms {
            extra.metadata.insert("duration_ms".into(), ms.into());
        }
        let meta = store
            .put(run_id, &audio.bytes, &audio.content_type, extra)
            .map_err(artifact_error)?;
        Ok(AudioArtifact {
            artifact_id: meta.artifact_id,
            content_type: meta.content_type,
            size: meta.size_bytes,
            duration_ms: audio.duration_ms,
        })
    }

    /// WIT `voice.transcribe`: transcribes artifact `artifact_id` of `run_id`.
    pub fn transcribe_artifact(
        &self,
        store: &ArtifactStore,
        run_id: &str,
        artifact_id: &str,
        req: &TranscriptionRequest,
    ) -> Result<Transcript, VoiceError> {
        let meta = store
            .get_meta(run_id, artifact_id)
            .map_err(artifact_error)?;
        // Checked before reading so a huge artifact is refused without loading it.
        if meta.size_bytes > self.cfg.max_audio_bytes {
            return Err(VoiceError::too_large(format!(
                "audio has {} bytes; the limit is {}",
                meta.size_bytes, self.cfg.max_audio_bytes
            )));
        }
        let (meta, bytes) = store.read(run_id, artifact_id).map_err(artifact_error)?;
        self.transcribe(&bytes, &meta.content_type, req)
    }

    /// [`Voice::synthesize_to_artifact`] on the blocking pool, for async callers.
    pub async fn synthesize_to_artifact_async(
        self: Arc<Self>,
        store: Arc<ArtifactStore>,
        run_id: String,
        req: SynthesisRequest,
    ) -> Result<AudioArtifact, VoiceError> {
        tokio::task::spawn_blocking(move || self.synthesize_to_artifact(&store, &run_id, &req))
            .await
            .map_err(|e| VoiceError::internal(format!("voice task failed: {e}")))?
    }

    /// [`Voice::transcribe_artifact`] on the blocking pool, for async callers.
    pub async fn transcribe_artifact_async(
        self: Arc<Self>,
        store: Arc<ArtifactStore>,
        run_id: String,
        artifact_id: String,
        req: TranscriptionRequest,
    ) -> Result<Transcript, VoiceError> {
        tokio::task::spawn_blocking(move || {
            self.transcribe_artifact(&store, &run_id, &artifact_id, &req)
        })
        .await
        .map_err(|e| VoiceError::internal(format!("voice task failed: {e}")))?
    }
}

//! The seed's voice endpoints over this gateway's speech engines: `POST /runs/{id}/voice/tts` speaks a text into
//! an audio artifact of the run, `POST /runs/{id}/audio/transcribe` turns an audio artifact (the run's, or one
//! uploaded to its session) into text and a transcript artifact. Each appends its `abstract.voice.tts` /
//! `abstract.audio.transcript` record through the runner.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};

use super::attachments::{
    ensure_session_memory_run, is_session_memory_run, session_memory_run_id, sha256_hex,
    store_artifact,
};
use super::observer::{find_run, record_event};
use crate::artifacts::{ArtifactError, NewArtifact};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::run::RunState;
use crate::state::SharedState;
use crate::voice::{SynthesisRequest, TranscriptionRequest, VoiceError, VoiceErrorCode};
use crate::wire::observer::ArtifactRef;
use crate::wire::voice::{SpeakText, SpokenText, TranscribeAudio, Transcript};

/// Longest `request_id` kept (it becomes part of the record's idempotency key).
const MAX_REQUEST_ID: usize = 128;

/// The run, or the seed's 400/404; a session memory run that does not exist yet is created, as the seed does.
async fn run_or_session(st: &SharedState, run_id: &str) -> Result<RunState, ApiError> {
    let (state, rid) = (st.clone(), run_id.trim().to_string());
    tokio::task::spawn_blocking(move || {
        if let Some(run) = find_run(&state, &rid)? {
            return Ok(run);
        }
        if is_session_memory_run(&rid) {
            // The seed's placeholder keeps the id's suffix as the session (a hashed one has none to keep).
            let suffix = rid.trim_start_matches("session_memory_");
            let session = if suffix.starts_with("sha_") {
                &rid
            } else {
                suffix
            };
            ensure_session_memory_run(&state, session, &rid)?;
            if let Some(run) = find_run(&state, &rid)? {
                return Ok(run);
            }
        }
        Err(ApiError::run_not_found(&rid))
    })
    .await
    .map_err(|e| ApiError::internal(format!("Failed to load run: {e}")))?
}

/// A speech engine's error as an HTTP error: the client's fault is 4xx, a missing engine 503, the rest 500.
fn voice_error(prefix: &str, e: VoiceError) -> ApiError {
    let status = match e.code {
        VoiceErrorCode::InvalidInput | VoiceErrorCode::Unsupported => StatusCode::BAD_REQUEST,
        VoiceErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        VoiceErrorCode::NotFound => StatusCode::NOT_FOUND,
        VoiceErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, format!("{prefix}: {}", e.message))
}

fn speech(st: &SharedState) -> Result<std::sync::Arc<crate::voice::Voice>, ApiError> {
    st.plugin_caps.speech.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Voice/audio support is not available: no speech engine is configured on this gateway",
        )
    })
}

/// The client's `request_id`, else a fresh one; refused when too long or not printable.
fn checked_request_id(given: Option<String>) -> Result<String, ApiError> {
    match given
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(id) if id.chars().count() <= MAX_REQUEST_ID && !id.chars().any(char::is_control) => {
            Ok(id)
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "request_id must be at most {MAX_REQUEST_ID} printable characters"
        ))),
    }
}

/// The seed's content type and file name of a synthesis format.
fn format_file(format: &str) -> (String, String) {
    match format {
        "wav" | "wave" => ("audio/wav".into(), "tts.wav".into()),
        "mp3" | "mpeg" => ("audio/mpeg".into(), "tts.mp3".into()),
        other => ("application/octet-stream".into(), format!("tts.{other}")),
    }
}

/// Speak a text into an audio artifact of the run (recorded as abstract.voice.tts).
///
/// A session memory run that does not exist yet is created, as the seed does.
#[utoipa::path(post, path = "/api/gateway/runs/{run_id}/voice/tts", tag = "voice",
    params(("run_id" = String, Path)),
    request_body = SpeakText,
    responses((status = 200, description = "The audio artifact", body = SpokenText),
              (status = 400, description = "Blank text, a bad format or request_id, or the engine refused the \
                                            input", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody),
              (status = 413, description = "The audio is over the artifact store's limit", body = ErrorBody),
              (status = 503, description = "No speech engine is configured, or the artifact store cannot take \
                                            writes now", body = ErrorBody)))]
pub async fn tts(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<SpokenText>> {
    let SpeakText {
        text,
        voice,
        format,
        request_id,
    } = SpeakText::parse(&headers, &body)?;
    let run = run_or_session(&st, &run_id).await?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::bad_request("text is required"));
    }
    let request_id = checked_request_id(request_id)?;
    let format = format
        .map(|f| f.trim().to_ascii_lowercase())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "wav".into());
    if format.len() > 16 || !format.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_request(format!(
            "format must be a short name like wav or mp3 (got {format:?})"
        )));
    }
    let voice = voice
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let engines = speech(&st)?;
    let req = SynthesisRequest {
        text: text.clone(),
        voice: voice.clone(),
        format: Some(format.clone()),
        provider: None,
        model: None,
    };
    let audio = tokio::task::spawn_blocking(move || engines.synthesize(&req))
        .await
        .map_err(|e| ApiError::internal(format!("TTS failed: {e}")))?
        .map_err(|e| voice_error("TTS failed", e))?;
    let (content_type, filename) = format_file(&format);
    let sha = sha256_hex(&audio.bytes);
    let mut extra = NewArtifact::default();
    for (k, v) in [
        ("kind", "voice_tts".to_string()),
        ("request_id", request_id.clone()),
        ("sha256", sha.clone()),
        ("format", format.clone()),
        ("session_id", run.session_id.clone().unwrap_or_default()),
    ] {
        extra.tags.insert(k.into(), v);
    }
    if let Some(v) = &voice {
        extra.tags.insert("voice".into(), v.clone());
    }
    if let Some(ms) = audio.duration_ms {
        extra.metadata.insert("duration_ms".into(), ms.into());
    }
    let meta = store_artifact(
        &st,
        &run.run_id,
        audio.bytes,
        &content_type,
        extra,
        "TTS audio artifact",
    )
    .await?;
    let audio_ref = ArtifactRef {
        artifact_id: meta.artifact_id,
        content_type,
        filename,
        sha256: sha,
        size_bytes: meta.size_bytes,
    };
    let payload = json!({"run_id": run.run_id, "request_id": request_id, "text": text, "voice": voice,
        "format": format, "audio_artifact": audio_ref});
    let key = format!("gateway:voice_tts:{request_id}");
    record_event(
        &st,
        &run.run_id,
        "gateway",
        "abstract.voice.tts",
        payload,
        &key,
    )
    .await
    .map_err(|e| ApiError::internal(format!("Failed to persist TTS event: {e}")))?;
    Ok(Json(SpokenText {
        ok: true,
        run_id: run.run_id,
        request_id,
        audio_artifact: audio_ref,
    }))
}

/// Finds `artifact_id` among the artifacts `run` may read: its own and its session memory run's (the uploads of
/// its session). Anything else is "not found", never "forbidden": the existence of another session's artifact is
/// not told.
fn readable_audio(
    st: &SharedState,
    run: &RunState,
    artifact_id: &str,
) -> Result<(crate::artifacts::ArtifactMeta, Vec<u8>), ApiError> {
    let not_found = || ApiError::not_found("audio_artifact not found");
    let mut owners = vec![run.run_id.clone()];
    if let Some(s) = run.session_id.as_deref().filter(|s| !s.is_empty()) {
        owners.push(session_memory_run_id(s));
    }
    for owner in owners {
        match st.artifacts.get_meta(&owner, artifact_id) {
            Ok(meta) => {
                let ct = meta.content_type.to_ascii_lowercase();
                if !(ct.is_empty() || ct.starts_with("audio/") || ct == "application/octet-stream")
                {
                    return Err(ApiError::bad_request(format!(
                        "audio_artifact must be audio/* (got '{}')",
                        meta.content_type
                    )));
                }
                return st.artifacts.read(&owner, artifact_id).map_err(|e| match e {
                    ArtifactError::NotFound(_) => not_found(),
                    e => ApiError::internal(format!("Failed to load audio artifact content: {e}")),
                });
            }
            Err(
                ArtifactError::NotFound(_)
                | ArtifactError::InvalidId(_)
                | ArtifactError::InvalidInput(_),
            ) => continue,
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "Failed to load audio artifact metadata: {e}"
                )));
            }
        }
    }
    Err(not_found())
}

/// Transcribe an audio artifact of the run or its session (recorded as abstract.audio.transcript).
///
/// The audio may be the run's own artifact or one uploaded to its session; the text is also stored as a
/// transcript artifact of the run. Another session's artifact is "not found".
#[utoipa::path(post, path = "/api/gateway/runs/{run_id}/audio/transcribe", tag = "voice",
    params(("run_id" = String, Path)),
    request_body = TranscribeAudio,
    responses((status = 200, description = "The transcript", body = Transcript),
              (status = 400, description = "Not an artifact ref or not audio, a bad request_id, or the engine \
                                            refused the input", body = ErrorBody),
              (status = 404, description = "No such run or audio artifact", body = ErrorBody),
              (status = 413, description = "The audio or the transcript is too large", body = ErrorBody),
              (status = 503, description = "No speech engine is configured, or the artifact store cannot take \
                                            writes now", body = ErrorBody)))]
pub async fn transcribe(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Transcript>> {
    let TranscribeAudio {
        audio_artifact: audio_ref,
        language,
        request_id,
    } = TranscribeAudio::parse(&headers, &body)?;
    let run = run_or_session(&st, &run_id).await?;
    let Some(artifact_id) = audio_ref
        .get("$artifact")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    else {
        return Err(ApiError::bad_request(
            "audio_artifact must be an artifact ref dict like {'$artifact': '...'}",
        ));
    };
    let request_id = checked_request_id(request_id)?;
    let language = language
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty());
    let engines = speech(&st)?;
    let (state, run2, id, lang) = (
        st.clone(),
        run.clone(),
        artifact_id.clone(),
        language.clone(),
    );
    let transcript = tokio::task::spawn_blocking(move || {
        let (meta, bytes) = readable_audio(&state, &run2, &id)?;
        let req = TranscriptionRequest {
            language: lang,
            ..Default::default()
        };
        engines
            .transcribe(&bytes, &meta.content_type, &req)
            .map_err(|e| voice_error("STT failed", e))
    })
    .await
    .map_err(|e| ApiError::internal(format!("STT failed: {e}")))??;
    let text = transcript.text;
    let bytes = text.clone().into_bytes();
    let sha = sha256_hex(&bytes);
    let mut extra = NewArtifact::default();
    for (k, v) in [
        ("kind", "derived_text".to_string()),
        ("modality", "audio".into()),
        ("task", "stt".into()),
        ("request_id", request_id.clone()),
        ("sha256", sha.clone()),
        ("session_id", run.session_id.clone().unwrap_or_default()),
        ("source_audio_artifact", artifact_id.clone()),
    ] {
        extra.tags.insert(k.into(), v);
    }
    let meta = store_artifact(
        &st,
        &run.run_id,
        bytes,
        "text/plain; charset=utf-8",
        extra,
        "transcript artifact",
    )
    .await?;
    let transcript_ref = ArtifactRef {
        artifact_id: meta.artifact_id,
        content_type: "text/plain; charset=utf-8".into(),
        filename: "transcript.txt".into(),
        sha256: sha,
        size_bytes: meta.size_bytes,
    };
    let payload = json!({"run_id": run.run_id, "request_id": request_id, "audio_artifact": audio_ref,
        "language": language, "text": text, "transcript_artifact": transcript_ref});
    let key = format!("gateway:audio_transcribe:{request_id}");
    record_event(
        &st,
        &run.run_id,
        "gateway",
        "abstract.audio.transcript",
        payload,
        &key,
    )
    .await
    .map_err(|e| ApiError::internal(format!("Failed to persist transcript event: {e}")))?;
    Ok(Json(Transcript {
        ok: true,
        run_id: run.run_id,
        request_id,
        text,
        transcript_artifact: transcript_ref,
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(tts))
        .documented(routes!(transcribe))
}

//! Voice providers for real: espeak-ng → pocketsphinx round trips through run artifacts, input validation,
//! engine deadlines, and the OpenAI audio wire format against an in-test stand-in server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abstractgateway::artifacts::{ArtifactStore, NewArtifact};
use abstractgateway::voice::audio::{Pcm, parse_wav};
use abstractgateway::voice::{
    ApiKey, EspeakTts, OpenAiSpeech, SpeechBackend, SynthesisRequest, TranscriptionRequest, Voice,
    VoiceConfig, VoiceErrorCode,
};

fn say(text: &str) -> SynthesisRequest {
    SynthesisRequest {
        text: text.into(),
        ..Default::default()
    }
}

fn hinted(hint: &str) -> TranscriptionRequest {
    TranscriptionRequest {
        hint: Some(hint.into()),
        ..Default::default()
    }
}

#[test]
fn espeak_to_pocketsphinx_round_trip_through_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let voice = Voice::new(VoiceConfig::default());

    let a = voice
        .synthesize_to_artifact(&store, "run-1", &say("The quick brown fox"))
        .unwrap();
    assert_eq!(a.content_type, "audio/wav");
    let ms = a.duration_ms.unwrap();
    assert!((500..5000).contains(&ms), "{ms} ms");
    let (meta, bytes) = store.read("run-1", &a.artifact_id).unwrap();
    assert_eq!(meta.size_bytes, a.size);
    assert_eq!(meta.tags["kind"], "audio");
    assert_eq!(meta.tags["provider"], "espeak");
    // The stored WAV has exact header sizes (espeak's streamed header is rewritten).
    assert_eq!(
        u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
        bytes.len() - 8
    );
    assert_eq!(parse_wav(&bytes).unwrap().duration_ms(), u64::from(ms));

    let t = voice
        .transcribe_artifact(
            &store,
            "run-1",
            &a.artifact_id,
            &hinted("the quick brown fox"),
        )
        .unwrap();
    assert_eq!(t.text, "the quick brown fox");
    assert_eq!(t.language.as_deref(), Some("en"));

    // A hint that is a superset of the words (a vocabulary, not the answer) still gives the sentence.
    let t = voice
        .transcribe_artifact(
            &store,
            "run-1",
            &a.artifact_id,
            &hinted("fox quick the brown lazy dog jumps over"),
        )
        .unwrap();
    assert_eq!(t.text, "the quick brown fox");

    // The artifact belongs to run-1 only.
    let e = voice
        .transcribe_artifact(&store, "run-2", &a.artifact_id, &hinted("x"))
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::NotFound);
}

#[test]
fn stereo_44k_input_is_resampled_for_the_model() {
    let voice = Voice::new(VoiceConfig::default());
    let audio = voice
        .synthesize(&say("hello world this is a test"))
        .unwrap();
    let pcm = parse_wav(&audio.bytes).unwrap();
    // Re-encode as 44.1 kHz stereo, a common recorder format.
    let up = pcm.to_mono(44_100);
    let stereo = Pcm {
        sample_rate: 44_100,
        channels: 2,
        samples: up.samples.iter().flat_map(|s| [*s, *s]).collect(),
    };
    let t = voice
        .transcribe(
            &stereo.to_wav(),
            "audio/wav",
            &hinted("hello world this is a test"),
        )
        .unwrap();
    assert_eq!(t.text, "hello world this is a test");
}

#[test]
fn bad_audio_is_refused_with_clear_codes() {
    let voice = Voice::new(VoiceConfig {
        max_audio_ms: 500,
        max_audio_bytes: 2_000_000,
        ..VoiceConfig::default()
    });
    let req = hinted("hello");

    let e = voice.transcribe(b"", "audio/wav", &req).unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::InvalidInput);
    assert!(e.message.contains("empty"), "{e}");

    let e = voice
        .transcribe(b"{\"not\": \"audio\"}", "audio/wav", &req)
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::InvalidInput);
    assert!(e.message.contains("not audio"), "{e}");

    let e = voice
        .transcribe(b"RIFF\x04\0\0\0WAVEjunk", "audio/wav", &req)
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::InvalidInput);

    // Two seconds of silence against a 0.5 s cap.
    let long = Pcm {
        sample_rate: 16_000,
        channels: 1,
        samples: vec![0; 32_000],
    };
    let e = voice
        .transcribe(&long.to_wav(), "audio/wav", &req)
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::TooLarge);
    assert!(e.message.contains("2.0 s"), "{e}");

    let e = voice
        .transcribe(&vec![0u8; 2_000_001], "audio/wav", &req)
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::TooLarge);

    // Real audio, but a format the local engine cannot read.
    let e = voice
        .transcribe(b"ID3\x04\0\0\0\0\0\0rest", "audio/mpeg", &req)
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::Unsupported);

    let short = Pcm {
        sample_rate: 16_000,
        channels: 1,
        samples: vec![0; 1600],
    };
    let e = voice
        .transcribe(
            &short.to_wav(),
            "audio/wav",
            &TranscriptionRequest {
                language: Some("fr".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::Unsupported);
}

#[test]
fn bad_synthesis_requests_are_refused() {
    let voice = Voice::new(VoiceConfig {
        max_text_chars: 50,
        ..VoiceConfig::default()
    });
    let code = |r: SynthesisRequest| voice.synthesize(&r).unwrap_err().code;
    assert_eq!(code(say("   ")), VoiceErrorCode::InvalidInput);
    assert_eq!(code(say(&"word ".repeat(20))), VoiceErrorCode::TooLarge);
    let with = |f: fn(&mut SynthesisRequest)| {
        let mut r = say("hello");
        f(&mut r);
        r
    };
    assert_eq!(
        code(with(|r| r.voice = Some("--stdout".into()))),
        VoiceErrorCode::InvalidInput
    );
    assert_eq!(
        code(with(|r| r.voice = Some("xx-nonexistent".into()))),
        VoiceErrorCode::InvalidInput
    );
    assert_eq!(
        code(with(|r| r.format = Some("mp3".into()))),
        VoiceErrorCode::Unsupported
    );
    assert_eq!(
        code(with(|r| r.provider = Some("nope".into()))),
        VoiceErrorCode::Unsupported
    );
    assert_eq!(
        code(with(|r| r.provider = Some("pocketsphinx".into()))),
        VoiceErrorCode::Unsupported
    );
    // A voice that exists changes the audio.
    let a = voice.synthesize(&say("hello")).unwrap();
    let b = voice
        .synthesize(&with(|r| r.voice = Some("en+f3".into())))
        .unwrap();
    assert_ne!(a.bytes, b.bytes);
}

#[test]
fn a_hung_engine_is_killed_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fake-espeak");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tts = EspeakTts {
        program: script.to_string_lossy().into_owned(),
        timeout: Duration::from_millis(300),
        ..EspeakTts::default()
    };
    // A script written a moment ago cannot be executed while a child another test forks at that instant
    // still holds it open ("text file busy"): that is the engine being unavailable, so try again.
    let mut attempts = 0;
    let (e, took) = loop {
        let t = Instant::now();
        let e = tts.synthesize("hello", None, None, None).unwrap_err();
        attempts += 1;
        if e.code != VoiceErrorCode::Unavailable || attempts == 20 {
            break (e, t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(e.code, VoiceErrorCode::Timeout);
    assert!(e.retryable);
    assert!(took < Duration::from_secs(5));

    let missing = EspeakTts {
        program: dir.path().join("absent").to_string_lossy().into_owned(),
        ..EspeakTts::default()
    };
    let e = missing.synthesize("hello", None, None, None).unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::Unavailable);
}

/// What the stand-in saw, for assertions.
#[derive(Default, Debug)]
struct Seen {
    auth: Vec<String>,
    speech: Vec<serde_json::Value>,
    fields: Vec<(String, String)>,
    file: Option<(String, String, usize)>,
}

/// An OpenAI audio stand-in on a loopback port, served from its own thread and runtime.
fn standin(seen: Arc<Mutex<Seen>>, speech_wav: Vec<u8>) -> String {
    use axum::extract::{Multipart, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;

    type St = (Arc<Mutex<Seen>>, Arc<Vec<u8>>);

    async fn speech(
        State((seen, wav)): State<St>,
        headers: HeaderMap,
        body: axum::Json<serde_json::Value>,
    ) -> axum::response::Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        seen.lock().unwrap().auth.push(auth);
        let input = body["input"].as_str().unwrap_or("").to_string();
        seen.lock().unwrap().speech.push(body.0);
        match input.as_str() {
            "rate me" => (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({"error": {"message": "Rate limit reached"}})),
            )
                .into_response(),
            "deny me" => (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": {"message": "Incorrect API key"}})),
            )
                .into_response(),
            _ => ([("content-type", "audio/wav")], wav.as_ref().clone()).into_response(),
        }
    }

    async fn transcriptions(
        State((seen, _)): State<St>,
        mut form: Multipart,
    ) -> axum::response::Response {
        let mut text = String::new();
        while let Ok(Some(field)) = form.next_field().await {
            let name = field.name().unwrap_or("").to_string();
            if name == "file" {
                let fname = field.file_name().unwrap_or("").to_string();
                let ct = field.content_type().unwrap_or("").to_string();
                let data = field.bytes().await.unwrap_or_default();
                if !data.starts_with(b"RIFF") {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(
                            serde_json::json!({"error": {"message": "Invalid file format."}}),
                        ),
                    )
                        .into_response();
                }
                seen.lock().unwrap().file = Some((fname, ct, data.len()));
            } else {
                let v = field.text().await.unwrap_or_default();
                if name == "prompt" {
                    text = v.clone();
                }
                seen.lock().unwrap().fields.push((name, v));
            }
        }
        axum::Json(serde_json::json!({"text": format!(" heard: {text} ")})).into_response()
    }

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new()
                .route("/v1/audio/speech", post(speech))
                .route("/v1/audio/transcriptions", post(transcriptions))
                .with_state((seen, Arc::new(speech_wav)));
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[test]
fn openai_audio_endpoints_wire_format() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let wav = Pcm {
        sample_rate: 24_000,
        channels: 1,
        samples: vec![100; 12_000],
    }
    .to_wav();
    let base = standin(seen.clone(), wav.clone());
    let openai = OpenAiSpeech::new(base.clone(), Some(ApiKey::new("sk-test-secret")));
    assert!(!format!("{openai:?}").contains("sk-test-secret"));
    let voice = Voice::new(VoiceConfig::default()).with_backend("openai", Arc::new(openai));

    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let a = voice
        .synthesize_to_artifact(
            &store,
            "run-o",
            &SynthesisRequest {
                text: "Hello there".into(),
                voice: Some("nova".into()),
                provider: Some("openai".into()),
                model: Some("gpt-4o-mini-tts".into()),
                format: None,
            },
        )
        .unwrap();
    assert_eq!(a.content_type, "audio/wav");
    assert_eq!(a.duration_ms, Some(500));
    assert_eq!(store.read("run-o", &a.artifact_id).unwrap().1, wav);
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.auth, ["Bearer sk-test-secret"]);
        assert_eq!(
            s.speech[0],
            serde_json::json!({"model": "gpt-4o-mini-tts", "input": "Hello there", "voice": "nova",
                               "response_format": "wav"})
        );
    }

    let t = voice
        .transcribe_artifact(
            &store,
            "run-o",
            &a.artifact_id,
            &TranscriptionRequest {
                language: Some("en".into()),
                hint: Some("general kenobi".into()),
                provider: Some("openai".into()),
                model: None,
            },
        )
        .unwrap();
    assert_eq!(t.text, "heard: general kenobi");
    assert_eq!(t.language.as_deref(), Some("en"));
    {
        let s = seen.lock().unwrap();
        let fields: Vec<(&str, &str)> = s
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("model", "whisper-1"),
                ("response_format", "json"),
                ("language", "en"),
                ("prompt", "general kenobi")
            ]
        );
        assert_eq!(
            s.file,
            Some(("audio.wav".into(), "audio/wav".into(), wav.len()))
        );
    }

    // Provider errors keep their message and get the matching code.
    let openai = |text: &str| {
        voice
            .synthesize(&SynthesisRequest {
                text: text.into(),
                provider: Some("openai".into()),
                ..Default::default()
            })
            .unwrap_err()
    };
    let e = openai("rate me");
    assert_eq!((e.code, e.retryable), (VoiceErrorCode::RateLimited, true));
    assert!(e.message.contains("Rate limit reached"), "{e}");
    let e = openai("deny me");
    assert_eq!(e.code, VoiceErrorCode::Unavailable);
    assert!(!e.message.contains("sk-test-secret"));

    // A base URL that already ends in /v1 is not doubled; a dead one is unavailable and retryable.
    let v1 = OpenAiSpeech::new(format!("{base}/v1/"), None);
    assert!(v1.synthesize("hi", None, None, None).is_ok());
    let dead = OpenAiSpeech::new("http://127.0.0.1:9", None);
    let e = dead.synthesize("hi", None, None, None).unwrap_err();
    assert_eq!((e.code, e.retryable), (VoiceErrorCode::Unavailable, true));
}

#[test]
fn artifacts_put_by_plugins_are_transcribable() {
    // The WIT path: a plugin puts recorded audio with artifacts.put, then asks voice.transcribe for it.
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let voice = Voice::new(VoiceConfig::default());
    let audio = voice.synthesize(&say("open the door")).unwrap();
    let meta = store
        .put("r", &audio.bytes, "audio/wav", NewArtifact::default())
        .unwrap();
    let t = voice
        .transcribe_artifact(
            &store,
            "r",
            &meta.artifact_id,
            &hinted("open close the door window"),
        )
        .unwrap();
    assert_eq!(t.text, "open the door");
    let not_audio = store
        .put("r", b"plain text", "text/plain", NewArtifact::default())
        .unwrap();
    let e = voice
        .transcribe_artifact(&store, "r", &not_audio.artifact_id, &hinted("x"))
        .unwrap_err();
    assert_eq!(e.code, VoiceErrorCode::InvalidInput);
}

/// Speed of the local engines, in seconds of compute per second of audio (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn measure_local_engine_speed() {
    let voice = Voice::new(VoiceConfig::default());
    let text = "the quick brown fox jumps over the lazy dog while the server records every step \
                and the runner keeps each run durable across every crash";
    let t = Instant::now();
    let audio = voice.synthesize(&say(text)).unwrap();
    let tts = t.elapsed().as_secs_f64();
    let secs = f64::from(audio.duration_ms.unwrap()) / 1000.0;
    let t = Instant::now();
    let out = voice
        .transcribe(&audio.bytes, "audio/wav", &hinted(text))
        .unwrap();
    let stt_hint = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let free = voice
        .transcribe(&audio.bytes, "audio/wav", &TranscriptionRequest::default())
        .unwrap();
    let stt_lm = t.elapsed().as_secs_f64();
    println!("audio: {secs:.2} s");
    println!(
        "espeak-ng TTS: {tts:.3} s = {:.3} s per audio second",
        tts / secs
    );
    println!(
        "pocketsphinx STT (grammar): {stt_hint:.3} s = {:.3} s per audio second; exact = {}; text = {:?}",
        stt_hint / secs,
        out.text == text,
        out.text
    );
    println!(
        "pocketsphinx STT (generic LM): {stt_lm:.3} s = {:.3} s per audio second; text = {:?}",
        stt_lm / secs,
        free.text
    );
}

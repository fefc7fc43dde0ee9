//! The built-in voice nodes through the real server binary: a flow speaks a sentence (generate_voice) and
//! hears it back (transcribe_audio), the audio downloads as a WAV, `listen_voice` waits for the user's
//! audio and transcribes it, and audio that is empty, not audio, or too long fails the transcribe node.

mod binary;
mod in_process;

use std::path::Path;
use std::time::{Duration, Instant};

use abstractgateway::voice::audio::{Pcm, parse_wav};
use binary::{Server, TOKEN};
use in_process::flowgen::{edge, node};
use in_process::plugins::component;
use serde_json::{Value, json};

const SENTENCE: &str = "the quick brown fox";

/// Packs bundle `voice@1.0.0` (flow `main`, plus the `put_bytes` component) into `dir/flows`.
fn write_bundle(dir: &Path, flow: Value) {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("flows")).expect("mkdir");
    std::fs::create_dir_all(src.join("plugins")).expect("mkdir");
    let wasm = component("put_bytes");
    std::fs::write(src.join("plugins/put_bytes.wasm"), &wasm).expect("wasm");
    std::fs::write(src.join("flows/main.json"), flow.to_string()).expect("flow");
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "voice", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main", "flows": {"main": "flows/main.json"},
        "plugins": [{"path": "plugins/put_bytes.wasm", "sha256": abstractgateway::bundle::sha256_hex(&wasm),
                     "grants": {"artifacts": true}}]});
    std::fs::write(src.join("manifest.json"), manifest.to_string()).expect("manifest");
    std::fs::create_dir_all(dir.join("flows")).expect("mkdir");
    abstractgateway::bundle::pack_dir(&src, &dir.join("flows/voice.flow")).expect("pack");
}

/// start(sentence) → generate_voice → transcribe_audio (prompt = the sentence) → end.
fn round_trip_flow() -> Value {
    json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["sentence"], json!({})),
        node("tts", "generate_voice", true, &["exec-out"], &["text"],
             &["audio_artifact", "artifact_id", "content_type", "meta", "success"],
             json!({"pinDefaults": {"format": "wav", "quality_preset": "standard", "speed": 1},
                    "effectConfig": {"tts_provider": "espeak"}})),
        node("stt", "transcribe_audio", true, &["exec-out"], &["audio_artifact", "prompt"],
             &["text", "transcript_artifact", "meta", "success"],
             json!({"pinDefaults": {"format": "json", "temperature": 0}})),
        node("e", "on_flow_end", true, &[],
             &["text", "audio_id", "content_type", "transcript", "tts_meta", "stt_meta"], &[], json!({}))],
      "edges": [
        edge("s", "exec-out", "tts", "exec-in"),
        edge("tts", "exec-out", "stt", "exec-in"),
        edge("stt", "exec-out", "e", "exec-in"),
        edge("s", "sentence", "tts", "text"),
        edge("s", "sentence", "stt", "prompt"),
        edge("tts", "audio_artifact", "stt", "audio_artifact"),
        edge("stt", "text", "e", "text"),
        edge("tts", "artifact_id", "e", "audio_id"),
        edge("tts", "content_type", "e", "content_type"),
        edge("stt", "transcript_artifact", "e", "transcript"),
        edge("tts", "meta", "e", "tts_meta"),
        edge("stt", "meta", "e", "stt_meta")]})
}

/// start(hex, content_type) → put_bytes → transcribe_audio → end.
fn bad_audio_flow() -> Value {
    json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["hex", "content_type"], json!({})),
        node("put", "put_bytes", true, &["exec-out"], &["hex", "content_type"], &["artifact"], json!({})),
        node("stt", "transcribe_audio", true, &["exec-out"], &["audio_artifact", "prompt"], &["text"],
             json!({"pinDefaults": {"prompt": "hello"}})),
        node("e", "on_flow_end", true, &[], &["text"], &[], json!({}))],
      "edges": [
        edge("s", "exec-out", "put", "exec-in"),
        edge("put", "exec-out", "stt", "exec-in"),
        edge("stt", "exec-out", "e", "exec-in"),
        edge("s", "hex", "put", "hex"),
        edge("s", "content_type", "put", "content_type"),
        edge("put", "artifact", "stt", "audio_artifact"),
        edge("stt", "text", "e", "text")]})
}

/// start(sentence) → generate_voice → listen_voice → end: the run speaks, then waits for voice input.
fn listen_flow() -> Value {
    json!({"id": "main", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &["sentence"], json!({})),
        node("tts", "generate_voice", true, &["exec-out"], &["text"], &["artifact_id"], json!({})),
        node("ask", "listen_voice", true, &["exec-out"], &["prompt", "language", "hint"],
             &["text", "audio_artifact", "content_type"],
             json!({"pinDefaults": {"prompt": "Say the sentence.", "language": "en"}})),
        node("e", "on_flow_end", true, &[], &["text", "audio_artifact", "content_type"], &[], json!({}))],
      "edges": [
        edge("s", "exec-out", "tts", "exec-in"),
        edge("tts", "exec-out", "ask", "exec-in"),
        edge("ask", "exec-out", "e", "exec-in"),
        edge("s", "sentence", "tts", "text"),
        edge("s", "sentence", "ask", "hint"),
        edge("ask", "text", "e", "text"),
        edge("ask", "audio_artifact", "e", "audio_artifact"),
        edge("ask", "content_type", "e", "content_type")]})
}

/// `interface.function` of every host call, in ledger order.
fn host_calls(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .filter(|r| r["effect"]["type"] == "host_call")
        .map(|r| {
            let p = &r["effect"]["payload"];
            format!(
                "{}.{}",
                p["interface"].as_str().unwrap_or(""),
                p["function"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Polls until the run is waiting or terminal (speech engines take a few seconds on a busy machine).
async fn settle(s: &Server, run: &str) -> Value {
    settle_in(s, run, &["completed", "failed", "cancelled", "waiting"]).await
}

/// Polls until the run's status is one of `states`.
async fn settle_in(s: &Server, run: &str, states: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, v) = s.get(&format!("/api/gateway/runs/{run}")).await;
        let status = v["status"].as_str().unwrap_or("");
        if states.contains(&status) {
            return v;
        }
        assert!(Instant::now() < deadline, "run {run} did not settle: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn download(s: &Server, run: &str, aid: &str) -> (u16, String, Vec<u8>) {
    let r = s
        .client
        .get(s.url(&format!("/api/gateway/runs/{run}/artifacts/{aid}/content")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("download");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_speaks_a_sentence_and_hears_it_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_bundle(tmp.path(), round_trip_flow());
    let s = Server::start_in(tmp.path(), &[]).await;
    let run = s.start_run("voice", json!({"sentence": SENTENCE})).await;
    let done = settle(&s, &run).await;
    assert_eq!(done["status"], "completed", "{done}");
    let out = &done["output"];
    assert_eq!(out["text"], SENTENCE, "{out}");
    assert_eq!(out["content_type"], "audio/wav");
    assert_eq!(
        out["tts_meta"]["schema"],
        "abstractflow.generate_voice.v1.meta"
    );
    assert_eq!(out["tts_meta"]["provider"], "espeak");
    assert_eq!(
        out["stt_meta"]["schema"],
        "abstractflow.transcribe_audio.v1.meta"
    );
    assert_eq!(out["stt_meta"]["language"], "en");

    // The audio downloads as a WAV of the length the node reported.
    let aid = out["audio_id"].as_str().expect("audio id");
    let (st, ct, wav) = download(&s, &run, aid).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "audio/wav");
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
    let ms = parse_wav(&wav).expect("a valid WAV").duration_ms();
    assert_eq!(json!(ms), out["tts_meta"]["duration_ms"]);
    assert!((300..5000).contains(&ms), "{ms} ms");

    // So does the transcript.
    let tid = out["transcript"]["$artifact"].as_str().expect("transcript");
    let (st, ct, text) = download(&s, &run, tid).await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(text, SENTENCE.as_bytes());

    // The ledger: both nodes are llm_call effects, and each engine call is recorded once, in order.
    let recs = s.ledger(&run).await;
    assert_eq!(
        host_calls(&recs),
        ["voice.synthesize", "voice.transcribe", "artifacts.put"]
    );
    for n in ["tts", "stt"] {
        let started = recs
            .iter()
            .find(|r| r["node_id"] == n && r["status"] == "started")
            .expect("started");
        assert_eq!(started["effect"]["type"], "llm_call", "{started}");
    }
    let synth = recs
        .iter()
        .find(|r| r["effect"]["payload"]["function"] == "synthesize")
        .expect("synthesize");
    assert_eq!(synth["effect"]["payload"]["request"]["text"], SENTENCE);
    assert_eq!(synth["result"]["ok"]["artifact_id"], json!(aid), "{synth}");
    let heard = recs
        .iter()
        .find(|r| r["effect"]["payload"]["function"] == "transcribe")
        .expect("transcribe");
    assert_eq!(heard["effect"]["payload"]["request"]["hint"], SENTENCE);
    assert_eq!(heard["result"]["ok"]["text"], SENTENCE, "{heard}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_voice_waits_for_voice_input_then_transcribes_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_bundle(tmp.path(), listen_flow());
    let s = Server::start_in(tmp.path(), &[]).await;
    let run = s.start_run("voice", json!({"sentence": SENTENCE})).await;
    let waiting = settle(&s, &run).await;
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    let w = &waiting["waiting"];
    assert_eq!(w["wait_key"], "voice_input", "{waiting}");
    assert_eq!(w["reason"], "event", "as the seed's WAIT_EVENT: {waiting}");
    assert_eq!(w["prompt"], "Say the sentence.");
    assert_eq!(w["details"]["input_mode"], "voice");
    assert_eq!(w["details"]["language"], "en");
    assert_eq!(
        w["details"]["content_types"],
        json!(["audio/wav", "audio/mpeg", "audio/webm"])
    );

    // The user's audio: here the run's own synthesised sentence, named by reference.
    let (_, arts) = s.get(&format!("/api/gateway/runs/{run}/artifacts")).await;
    let aid = arts["items"][0]["artifact_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no artifact: {arts}"))
        .to_string();
    let (st, v) = s
        .command(
            "c-listen-1",
            &run,
            "resume",
            json!({"wait_key": "voice_input", "payload": {"audio_artifact": {"$artifact": aid}}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The command is applied asynchronously: the run is still waiting for a moment.
    let done = settle_in(&s, &run, &["completed", "failed", "cancelled"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    let out = &done["output"];
    assert_eq!(out["text"], SENTENCE, "{out}");
    assert_eq!(out["audio_artifact"]["$artifact"], json!(aid));
    assert_eq!(out["content_type"], "audio/wav");
    let recs = s.ledger(&run).await;
    assert_eq!(
        host_calls(&recs),
        [
            "voice.synthesize",
            "durability.await-event",
            "artifacts.info",
            "voice.transcribe"
        ]
    );
    let started = recs
        .iter()
        .find(|r| r["node_id"] == "ask" && r["status"] == "started")
        .expect("started");
    assert_eq!(started["effect"]["type"], "wait_event");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audio_fails_the_transcribe_node_with_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_bundle(tmp.path(), bad_audio_flow());
    let s = Server::start_in(
        tmp.path(),
        &[("ABSTRACTGATEWAY_VOICE_MAX_AUDIO_SECONDS", "2")],
    )
    .await;
    let three_seconds = Pcm {
        sample_rate: 8000,
        channels: 1,
        samples: vec![0; 24_000],
    }
    .to_wav();
    let cases = [
        ("", "audio/wav", "audio is empty"),
        (
            &hex(b"this is plain text, not a recording")[..],
            "audio/wav",
            "not audio",
        ),
        (
            &hex(&three_seconds)[..],
            "audio/wav",
            "audio lasts 3.0 s; the limit is 2.0 s",
        ),
    ];
    for (bytes, ct, expected) in cases {
        let run = s
            .start_run("voice", json!({"hex": bytes, "content_type": ct}))
            .await;
        let done = settle(&s, &run).await;
        assert_eq!(done["status"], "failed", "{done}");
        let err = done["error"].as_str().unwrap_or("");
        assert!(err.contains("transcribe_audio"), "{err}");
        assert!(err.contains("cannot transcribe audio artifact"), "{err}");
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
        let recs = s.ledger(&run).await;
        assert_eq!(
            host_calls(&recs),
            ["artifacts.put", "voice.transcribe"],
            "{err}"
        );
        let failed = recs.iter().find(|r| {
            r["node_id"] == "stt" && r["status"] == "failed" && r["effect"]["type"] != "host_call"
        });
        assert!(
            failed.is_some(),
            "the transcribe node itself is failed: {recs:?}"
        );
    }
}

/// Seconds of node time per second of audio for TTS and STT through the server (run with
/// `--ignored --nocapture`): node time is from the node's `started` record to its `completed` one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_voice_nodes_per_audio_second() {
    let sentence = "the quick brown fox jumps over the lazy dog while the server records every step \
                    and the runner keeps each run durable across every crash";
    let tmp = tempfile::tempdir().expect("tmp");
    write_bundle(tmp.path(), round_trip_flow());
    let s = Server::start_in(tmp.path(), &[]).await;
    let rounds = 3;
    for i in 0..rounds {
        let wall = Instant::now();
        let run = s.start_run("voice", json!({"sentence": sentence})).await;
        let done = settle(&s, &run).await;
        let wall = wall.elapsed().as_secs_f64();
        assert_eq!(done["status"], "completed", "{done}");
        let audio_s = done["output"]["tts_meta"]["duration_ms"]
            .as_f64()
            .expect("duration")
            / 1000.0;
        let recs = s.ledger(&run).await;
        let node_s = |n: &str| {
            let at = |status: &str, field: &str| {
                recs.iter()
                    .find(|r| {
                        r["node_id"] == n
                            && r["status"] == status
                            && r["effect"]["type"] != "host_call"
                    })
                    .and_then(|r| r[field].as_str())
                    .and_then(abstractgateway::time::parse_iso)
                    .expect("timestamp")
            };
            (at("completed", "ended_at") - at("started", "started_at")).as_seconds_f64()
        };
        let engine_s = |f: &str| {
            recs.iter()
                .find(|r| r["effect"]["payload"]["function"] == f)
                .and_then(|r| r["result"]["duration_ms"].as_f64())
                .expect("duration")
                / 1000.0
        };
        let (tts, stt) = (node_s("tts"), node_s("stt"));
        println!(
            "round {i}: audio {audio_s:.2} s; TTS node {tts:.3} s = {:.3} s/audio-s (engine {:.3} s); \
             STT node {stt:.3} s = {:.3} s/audio-s (engine {:.3} s); run wall {wall:.2} s; heard {}",
            tts / audio_s,
            engine_s("synthesize"),
            stt / audio_s,
            engine_s("transcribe"),
            done["output"]["text"]
        );
    }
}

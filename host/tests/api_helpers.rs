//! The seed's run helpers on the real binary: `/runs/{id}/summary`, `/chat` and `/chat_threads` with the LLM
//! stand-in as the provider, and `/runs/{id}/voice/tts` and `/audio/transcribe` over the local speech engines
//! (espeak-ng and pocketsphinx, which `scripts/test.sh` installs). Each writes its record to the run's ledger
//! through the runner, for a finished run as for one still waiting, and the ledger stays whole.

mod binary;
mod in_process;

use binary::{Server, TOKEN, client};
use in_process::fake_llm::FakeLlm;
use serde_json::{Value, json};

async fn llm_server(llm: &FakeLlm) -> Server {
    let url = llm.base_url();
    Server::start(&[
        ("LMSTUDIO_BASE_URL", url.as_str()),
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "fake-model"),
    ])
    .await
}

/// The run's ledger records whose event is `name`.
async fn events(s: &Server, run: &str, name: &str) -> Vec<Value> {
    s.ledger(run)
        .await
        .into_iter()
        .filter(|r| r["effect"]["payload"]["name"] == name)
        .collect()
}

/// The ledger holds as many records as the store's head says, none of them twice.
async fn assert_whole(s: &Server, run: &str) {
    let ledger = s.ledger(run).await;
    let (st, v) = s
        .get("/api/gateway/runs?limit=500&include_ledger_len=true")
        .await;
    assert_eq!(st, 200, "{v}");
    let listed = v["items"]
        .as_array()
        .and_then(|items| items.iter().find(|r| r["run_id"] == run))
        .unwrap_or_else(|| panic!("{run} listed: {v}"));
    assert_eq!(listed["ledger_len"], json!(ledger.len()), "{listed}");
    let mut texts: Vec<String> = ledger.iter().map(Value::to_string).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), ledger.len(), "a record appears twice");
}

async fn content(s: &Server, run: &str, artifact: &str) -> Vec<u8> {
    let r = client()
        .get(s.url(&format!(
            "/api/gateway/runs/{run}/artifacts/{artifact}/content"
        )))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("content");
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("bytes").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_chat_ask_the_model_and_record_through_the_runner() {
    let llm = FakeLlm::start();
    let s = llm_server(&llm).await;
    let done = s.start_run("echo-upper", json!({"name": "Ada"})).await;
    s.wait_status(&done, "completed").await;
    let before = s.ledger(&done).await.len();

    let (st, v) = s
        .post(&format!("/api/gateway/runs/{done}/summary"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((&v["ok"], &v["run_id"]), (&json!(true), &json!(done)));
    assert_eq!(
        (&v["provider"], &v["model"]),
        (&json!("lmstudio"), &json!("fake-model"))
    );
    let summary = v["summary"].as_str().expect("summary");
    // The stand-in echoes the last user message: the digest, as pretty JSON.
    assert!(summary.starts_with("echo:{"), "{summary}");
    let body = llm
        .posted_bodies()
        .into_iter()
        .last()
        .expect("one completion");
    assert_eq!(body["temperature"], 0.2);
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("You are AbstractObserver."))
    );
    let context: Value =
        serde_json::from_str(body["messages"][1]["content"].as_str().expect("context"))
            .expect("the context is whole JSON");
    assert_eq!(context["run_id"], json!(done));
    assert_eq!(context["status"], "completed");
    assert_eq!(context["overall"]["stats"]["steps"], json!(before));
    let recs = events(&s, &done, "abstract.summary").await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = &recs[0];
    assert_eq!(rec["node_id"], "observer");
    assert_eq!(rec["status"], "completed");
    assert_eq!(rec["effect"]["type"], "emit_event");
    assert_eq!(rec["effect"]["payload"]["scope"], "run");
    assert_eq!(rec["result"]["payload"]["text"], json!(summary));
    assert_eq!(
        rec["result"]["payload"]["source"]["ledger_len_by_run"][&done],
        json!(before)
    );
    assert!(rec["idempotency_key"].as_str().is_some_and(|k| k
        == format!(
            "observer:summary:{}",
            v["generated_at"].as_str().unwrap_or("")
        )));

    // Chat: only user and assistant turns reach the model; persisted as abstract.chat.
    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{done}/chat"),
            json!({"messages": [{"role": "system", "content": "ignore me"},
                {"role": "user", "content": "  what happened?  "}], "persist": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["answer"], "echo:what happened?");
    let body = llm.posted_bodies().into_iter().last().expect("chat call");
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["system", "user", "user"]);
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("RUN_CONTEXT:\n{"))
    );
    let chats = events(&s, &done, "abstract.chat").await;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["result"]["payload"]["question"], "what happened?");
    assert_eq!(
        chats[0]["result"]["payload"]["answer"],
        "echo:what happened?"
    );
    // Without persist nothing is written.
    let (st, _) = s
        .post(
            &format!("/api/gateway/runs/{done}/chat"),
            json!({"messages": [{"role": "user", "content": "again"}]}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(events(&s, &done, "abstract.chat").await.len(), 1);

    // A thread saved as an artifact with its event.
    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{done}/chat_threads"),
            json!({"messages": [{"role": "user", "content": "Why\nnot?", "ts": "t1"},
                {"role": "assistant", "content": "because"}, {"content": "  "}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["title"], "Why not?");
    assert_eq!(v["message_count"], 2);
    let aid = v["chat_artifact"]["$artifact"].as_str().expect("artifact");
    let doc: Value = serde_json::from_slice(&content(&s, &done, aid).await).expect("json");
    assert_eq!(doc["schema"], "abstract.chat.thread.v0");
    assert_eq!(
        doc["messages"][0],
        json!({"role": "user", "content": "Why\nnot?", "ts": "t1"})
    );
    let threads = events(&s, &done, "abstract.chat.thread").await;
    assert_eq!(threads.len(), 1);
    assert_eq!(
        threads[0]["idempotency_key"],
        format!(
            "observer:chat_thread:{}",
            v["thread_id"].as_str().unwrap_or("")
        )
    );
    assert_whole(&s, &done).await;

    // A run still waiting gets its record through the runner's world, and goes on afterwards.
    let waiting = s.start_run("ask-user", json!({"name": "W"})).await;
    s.wait_status(&waiting, "waiting").await;
    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{waiting}/summary"),
            json!({"include_subruns": "false"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(events(&s, &waiting, "abstract.summary").await.len(), 1);
    let (st, v) = s
        .command(
            "answer-w",
            &waiting,
            "resume",
            json!({"payload": {"response": "blue"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    s.wait_status(&waiting, "completed").await;
    assert_whole(&s, &waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_helpers_refuse_bad_input_with_the_seeds_errors() {
    let llm = FakeLlm::start();
    let s = llm_server(&llm).await;
    let done = s.start_run("echo-upper", json!({"name": "B"})).await;
    s.wait_status(&done, "completed").await;
    for path in [
        "summary",
        "chat",
        "chat_threads",
        "voice/tts",
        "audio/transcribe",
    ] {
        let (st, v) = s
            .post(
                &format!("/api/gateway/runs/nope/{path}"),
                json!({"text": "x", "audio_artifact": {"$artifact": "x"}}),
            )
            .await;
        assert_eq!(st, 404, "{path}: {v}");
        assert_eq!(v["detail"], "Run 'nope' not found", "{path}");
    }
    for (path, body) in [
        ("chat", json!({"messages": "not a list"})),
        ("chat", json!({"messages": [1]})),
        ("summary", json!({"include_subruns": "perhaps"})),
        ("voice/tts", json!({})),
        ("audio/transcribe", json!({"audio_artifact": "x"})),
    ] {
        let (st, v) = s
            .post(&format!("/api/gateway/runs/{done}/{path}"), body.clone())
            .await;
        assert_eq!(st, 422, "{path} {body}: {v}");
        assert!(v["detail"].is_array(), "{v}");
    }
    // The model cannot be reached: the seed's 400, and nothing recorded.
    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{done}/summary"),
            json!({"provider": "ollama", "model": "m"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Failed to generate summary: ")),
        "{v}"
    );
    assert!(events(&s, &done, "abstract.summary").await.is_empty());
    // The internal record command is not a client's.
    let (st, v) = s
        .post(
            "/api/gateway/commands",
            json!({"command_id": "forge", "run_id": done, "type": "gateway.record_event",
                "payload": {"node_id": "observer", "name": "abstract.summary", "idempotency_key": "k"}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_whole(&s, &done).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_and_transcription_store_artifacts_and_record_events() {
    let s = Server::start(&[]).await;
    let run = s.start_run("echo-upper", json!({"name": "V"})).await;
    s.wait_status(&run, "completed").await;

    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{run}/voice/tts"),
            json!({"text": "hello world", "request_id": "req-1"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["request_id"], "req-1");
    let audio = &v["audio_artifact"];
    assert_eq!(
        (&audio["content_type"], &audio["filename"]),
        (&json!("audio/wav"), &json!("tts.wav"))
    );
    let aid = audio["$artifact"].as_str().expect("artifact").to_string();
    let wav = content(&s, &run, &aid).await;
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(audio["size_bytes"], json!(wav.len()));
    let tts = events(&s, &run, "abstract.voice.tts").await;
    assert_eq!(tts.len(), 1);
    assert_eq!(tts[0]["node_id"], "gateway");
    assert_eq!(tts[0]["idempotency_key"], "gateway:voice_tts:req-1");
    assert_eq!(tts[0]["result"]["payload"]["audio_artifact"], *audio);

    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{run}/audio/transcribe"),
            json!({"audio_artifact": {"$artifact": aid}, "language": "en"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let text = v["text"].as_str().expect("text");
    assert!(!text.is_empty(), "pocketsphinx heard something: {v}");
    let tid = v["transcript_artifact"]["$artifact"]
        .as_str()
        .expect("transcript");
    assert_eq!(content(&s, &run, tid).await, text.as_bytes());
    let heard = events(&s, &run, "abstract.audio.transcript").await;
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0]["result"]["payload"]["text"], json!(text));

    // The transcript is not audio; an id of nothing, or of another session's upload, is not found.
    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{run}/audio/transcribe"),
            json!({"audio_artifact": {"$artifact": tid}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("audio_artifact must be audio/*"))
    );
    let (st, up) = s
        .upload_attachment(
            &[("session_id", "someone-else")],
            Some(("a.wav", "audio/wav", &wav)),
        )
        .await;
    assert_eq!(st, 200, "{up}");
    let foreign = up["attachment"]["$artifact"].as_str().expect("upload");
    for id in [
        foreign,
        "0123456789abcdef0123456789abcdef",
        "../../etc/passwd",
    ] {
        let (st, v) = s
            .post(
                &format!("/api/gateway/runs/{run}/audio/transcribe"),
                json!({"audio_artifact": {"$artifact": id}}),
            )
            .await;
        assert_eq!(st, 404, "{id}: {v}");
        assert_eq!(v["detail"], "audio_artifact not found");
    }
    let (st, v) = s
        .post(
            &format!("/api/gateway/runs/{run}/audio/transcribe"),
            json!({"audio_artifact": {"id": "x"}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");

    // A session's upload is readable by the session's memory run, which a first voice call creates.
    let (st, v) = s
        .post(
            "/api/gateway/runs/session_memory_someone-else/audio/transcribe",
            json!({"audio_artifact": {"$artifact": foreign}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .post(
            "/api/gateway/runs/session_memory_fresh-1/voice/tts",
            json!({"text": "new session"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        events(&s, "session_memory_fresh-1", "abstract.voice.tts")
            .await
            .len(),
        1
    );

    // Bad text or format.
    for body in [
        json!({"text": "   "}),
        json!({"text": "x", "format": "../wav"}),
        json!({"text": "x", "request_id": "r".repeat(500)}),
    ] {
        let (st, v) = s
            .post(&format!("/api/gateway/runs/{run}/voice/tts"), body.clone())
            .await;
        assert_eq!(st, 400, "{body}: {v}");
    }
    assert_whole(&s, &run).await;
}

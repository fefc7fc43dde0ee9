//! ask-user, wait-event, pause/resume, cancel and emit_event end to end, watched through the SSE stream;
//! resumption by `?after=` and `Last-Event-ID`; browser stream tokens.

mod binary;

use std::time::Duration;

use binary::{Server, open_stream, record};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn ask_user_resume_through_sse() {
    let s = Server::start(&[]).await;
    let run = s.start_run("ask-user", json!({"name": "Bob"})).await;
    let mut sse = open_stream(&s, &run, "?heartbeat_s=0.5", None).await;
    let first = sse.next(T).await.unwrap();
    assert_eq!(first.retry.as_deref(), Some("1000"));
    let started = sse.next_event(T).await.unwrap();
    assert_eq!(
        (started.id.as_deref(), started.event.as_deref()),
        (Some("1"), Some("step"))
    );
    assert!(
        started
            .data
            .as_deref()
            .unwrap()
            .starts_with("{\"cursor\": 1, \"record\": {\"run_id\": "),
        "spaced JSON"
    );
    assert_eq!(record(&started)["status"], "started");
    let waiting = sse.next_event(T).await.unwrap();
    assert_eq!(
        record(&waiting)["result"]["wait"]["wait_key"],
        format!("user:{run}:ask")
    );
    // Idle: keep-alives only.
    let ka = sse.next(T).await.unwrap();
    assert_eq!(ka.comment.as_deref(), Some("keep-alive"));
    s.command(
        "r1",
        &run,
        "resume",
        json!({"payload": {"response": "blue"}}),
    )
    .await;
    let mut rest = Vec::new();
    while let Some(ev) = sse.next_event(T).await {
        rest.push(ev);
    }
    let done = rest.pop().unwrap();
    assert_eq!(done.event.as_deref(), Some("done"));
    assert_eq!(
        done.data.as_deref().unwrap(),
        format!("{{\"run_id\": \"{run}\", \"cursor\": 5, \"status\": \"terminal\"}}")
    );
    let ids: Vec<&str> = rest.iter().map(|e| e.id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["3", "4", "5"]);
    assert_eq!(record(&rest[0])["effect"]["type"], "resume");
    assert_eq!(
        record(&rest[1])["result"]["output"]["response"],
        "Bob  answered:  blue"
    );
    assert_eq!(
        record(&rest[2])["idempotency_key"],
        "system:terminal_status:completed"
    );

    // Replays: `after` and `Last-Event-ID` (which wins), no gap, no duplicate.
    let mut r = open_stream(&s, &run, "?after=3", None).await;
    assert_eq!(r.next_event(T).await.unwrap().id.as_deref(), Some("4"));
    let mut r = open_stream(&s, &run, "?after=0", Some("4")).await;
    assert_eq!(r.next_event(T).await.unwrap().id.as_deref(), Some("5"));
    assert_eq!(
        r.next_event(T).await.unwrap().event.as_deref(),
        Some("done")
    );
    assert!(r.next_event(T).await.is_none());
}

#[tokio::test]
async fn wait_event_emit_pause_and_cancel() {
    let s = Server::start(&[]).await;
    // Session-scoped event: run_id of the command is the session id.
    let run = s
        .start_run("wait-event", json!({"event_key": "evt:session:other:go"}))
        .await;
    let (st, v) = s.post("/api/gateway/runs/start", json!({"bundle_id": "wait-event", "session_id": "sess-A", "input_data": {"event_key": "evt:session:sess-A:go"}})).await;
    assert_eq!(st, 200);
    let in_session = v["run_id"].as_str().unwrap().to_string();
    s.wait_status(&in_session, "waiting").await;
    s.wait_status(&run, "waiting").await;
    let mut sse = open_stream(&s, &in_session, "", None).await;
    let (st, a) = s.post("/api/gateway/commands", json!({"command_id": "e1", "run_id": "sess-A", "type": "emit_event", "payload": {"name": "go", "payload": {"text": "hello"}, "event_id": "ev-1"}, "client_id": "t"})).await;
    assert_eq!((st, &a["accepted"]), (200, &json!(true)));
    let mut last = None;
    while let Some(ev) = sse.next_event(T).await {
        last = Some(ev.clone());
        if ev.event.as_deref() == Some("step")
            && record(&ev)["idempotency_key"] == "system:completion:end"
        {
            let out = &record(&ev)["result"]["output"]["event"];
            assert_eq!(out["event_id"], "ev-1");
            assert_eq!(out["payload"], json!({"text": "hello"}));
            assert_eq!(
                out["emitter"],
                json!({"source": "external", "client_id": "t"})
            );
        }
    }
    assert_eq!(last.unwrap().event.as_deref(), Some("done"));
    assert_eq!(
        s.get(&format!("/api/gateway/runs/{run}")).await.1["status"],
        "waiting",
        "other sessions are not woken"
    );

    // Pause a timed wait past its deadline, then resume: it completes after the resume only.
    let delay = s.start_run("delay", json!({"seconds": 0.3})).await;
    s.wait_status(&delay, "waiting").await;
    s.command("p1", &delay, "pause", json!({"reason": "hold"}))
        .await;
    let p = s.wait_run(&delay, |v| v["paused"] == true).await;
    assert_eq!(p["pause_reason"], "hold");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.get(&format!("/api/gateway/runs/{delay}")).await.1["status"],
        "waiting"
    );
    let mut dsse = open_stream(&s, &delay, "", None).await;
    s.command("p2", &delay, "resume", json!({})).await;
    let mut saw_completion = false;
    while let Some(ev) = dsse.next_event(T).await {
        if ev.event.as_deref() == Some("step")
            && record(&ev)["idempotency_key"] == "system:completion:end"
        {
            saw_completion = true;
        }
    }
    assert!(saw_completion);
    let d = s.wait_status(&delay, "completed").await;
    assert_eq!(
        (d["paused"].as_bool(), d["resumed_at"].is_string()),
        (Some(false), true)
    );

    // Cancel a waiting run: the stream ends with the cancelled status record.
    let mut csse = open_stream(&s, &run, "?after=2", None).await;
    s.command("c1", &run, "cancel", json!({"reason": "operator cancel"}))
        .await;
    let mut recs: Vec<Value> = Vec::new();
    while let Some(ev) = csse.next_event(T).await {
        if ev.event.as_deref() == Some("step") {
            recs.push(record(&ev));
        }
    }
    assert!(
        recs.iter()
            .any(|r| r["effect"]["payload"]["payload"]["text"] == "cancelled"),
        "{recs:?}"
    );
    let c = s.get(&format!("/api/gateway/runs/{run}")).await.1;
    assert_eq!(
        (c["status"].as_str(), c["error"].as_str(), &c["waiting"]),
        (Some("cancelled"), Some("operator cancel"), &Value::Null)
    );
}

#[tokio::test]
async fn browser_stream_token() {
    let s = Server::start(&[]).await;
    let run = s.start_run("echo-upper", json!({})).await;
    s.wait_status(&run, "completed").await;
    let (st, t) = s
        .post(&format!("/api/gateway/runs/{run}/stream_token"), json!({}))
        .await;
    assert_eq!(st, 200);
    let token = t["token"].as_str().unwrap();
    assert!(t["expires_at"].as_str().unwrap().ends_with("+00:00"));
    let url = s.url(&format!(
        "/api/gateway/runs/{run}/ledger/stream?stream_token={token}"
    ));
    let r = s.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let mut sse = binary::SseReader::new(r);
    assert_eq!(sse.next_event(T).await.unwrap().id.as_deref(), Some("1"));
    let other = s.start_run("echo-upper", json!({})).await;
    let r = s
        .client
        .get(s.url(&format!(
            "/api/gateway/runs/{other}/ledger/stream?stream_token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "bound to its run");
    let r = s
        .client
        .get(s.url(&format!(
            "/api/gateway/runs/{run}/ledger?stream_token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "only the stream route accepts it");
}

/// Streams of one run share the frames of its new records; streams at every position (from the start, mid-way,
/// at the head, reconnecting ahead of the others) each get their records in order, without gap or repeat, then
/// `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_at_different_positions_of_one_run_each_get_their_records_once() {
    let s = Server::start(&[]).await;
    let run = s.start_run("ask-user", json!({"name": "Ann"})).await;
    s.wait_status(&run, "waiting").await;
    let mut streams = Vec::new();
    for (i, after) in [0u64, 1, 2, 2, 2, 1, 0, 2].into_iter().enumerate() {
        let last = (i == 7).then(|| after.to_string());
        let q = format!("?after={after}&heartbeat_s=30");
        streams.push((after, open_stream(&s, &run, &q, last.as_deref()).await));
    }
    s.command(
        "r-many",
        &run,
        "resume",
        json!({"payload": {"response": "red"}}),
    )
    .await;
    for (after, mut sse) in streams {
        let mut ids = Vec::new();
        loop {
            let ev = sse.next_event(T).await.expect("an event before the end");
            if ev.event.as_deref() == Some("done") {
                break;
            }
            ids.push(ev.id.expect("a step id").parse::<u64>().expect("seq"));
        }
        assert_eq!(ids, ((after + 1)..=5).collect::<Vec<_>>(), "after {after}");
        assert!(sse.next_event(T).await.is_none());
    }
}

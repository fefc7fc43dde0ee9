//! One event to many SSE subscribers, measured by a client that is not the bottleneck: every stream is a raw
//! tokio TCP connection (1,000 by default) on one ask-user run; the client resumes the run and times, per stream,
//! the interval from sending the command to seeing its `event: step`. `first` is the earliest stream (the
//! command's own cost: HTTP, the durable commit, the runner), p50 and p99 are over the streams; each over
//! `--trials` runs, reported as medians. It talks HTTP only, so it measures the seed the same way.
//!
//! ```text
//! cargo bench -p abstractgateway --bench sse_fanout -- --url http://127.0.0.1:8080 --token T [--subscribers 1000] [--trials 5]
//! ```
//! The server needs `ABSTRACTGATEWAY_MAX_SSE` and `ABSTRACTGATEWAY_MAX_CONCURRENCY` above the subscriber count
//! and the `ask-user` bundle (`bundles/`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    url: String,
    token: String,
    subscribers: usize,
    trials: usize,
}

fn args() -> Option<Args> {
    let mut a = Args {
        url: String::new(),
        token: String::new(),
        subscribers: 1000,
        trials: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--url" => a.url = it.next()?,
            "--token" => a.token = it.next()?,
            "--subscribers" => a.subscribers = it.next()?.parse().ok()?,
            "--trials" => a.trials = it.next()?.parse().ok()?,
            _ => {} // `cargo bench` adds `--bench`.
        }
    }
    (!a.url.is_empty()).then_some(a)
}

fn pct(xs: &[f64], p: f64) -> f64 {
    let i = ((xs.len() as f64 * p / 100.0).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

async fn call(
    c: &reqwest::Client,
    a: &Args,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let url = format!("{}{path}", a.url);
    let mut r = match method {
        "POST" => c.post(url),
        _ => c.get(url),
    }
    .bearer_auth(&a.token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request");
    assert!(
        resp.status().is_success(),
        "{method} {path}: {}",
        resp.status()
    );
    resp.json().await.expect("JSON")
}

/// One stream: connects, checks the 200, then reads until `event: step`; the instant it saw it.
async fn stream(
    addr: String,
    request: String,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Option<Instant> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.set_nodelay(true).ok()?;
    s.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 200"), "stream refused");
            buf.drain(..i + 4);
            break;
        }
    }
    ready.send(()).await.ok()?;
    loop {
        if buf.windows(11).any(|w| w == b"event: step") {
            return Some(Instant::now());
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn trial(c: &reqwest::Client, a: &Args) -> (f64, f64, f64) {
    let run = call(
        c,
        a,
        "POST",
        "/api/gateway/runs/start",
        Some(json!({"bundle_id": "ask-user", "input_data": {"name": "Fan"}})),
    )
    .await;
    let run_id = run["run_id"].as_str().expect("run id").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = call(c, a, "GET", &format!("/api/gateway/runs/{run_id}"), None).await;
        if v["status"] == "waiting" {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not wait");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let page = call(
        c,
        a,
        "GET",
        &format!("/api/gateway/runs/{run_id}/ledger?limit=2000"),
        None,
    )
    .await;
    let after = page["next_after"].as_u64().unwrap_or(0);
    let addr = a
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let request = format!(
        "GET /api/gateway/runs/{run_id}/ledger/stream?after={after}&heartbeat_s=30 HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        a.token
    );
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(a.subscribers);
    let tasks: Vec<_> = (0..a.subscribers)
        .map(|_| tokio::spawn(stream(addr.clone(), request.clone(), ready_tx.clone())))
        .collect();
    drop(ready_tx);
    for _ in 0..a.subscribers {
        ready_rx.recv().await.expect("every stream connects");
    }
    // Let the streams settle into waiting (their first reads of the head) before the event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    call(
        c,
        a,
        "POST",
        "/api/gateway/commands",
        Some(
            json!({"command_id": format!("fan-{run_id}"), "run_id": run_id, "type": "resume",
                    "payload": {"payload": {"response": "go"}}}),
        ),
    )
    .await;
    let mut xs = Vec::with_capacity(a.subscribers);
    for t in tasks {
        let seen = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("a stream got the event in time")
            .expect("stream task")
            .expect("a stream got the event");
        xs.push(seen.saturating_duration_since(t0).as_secs_f64() * 1000.0);
    }
    xs.sort_by(f64::total_cmp);
    (xs[0], pct(&xs, 50.0), pct(&xs, 99.0))
}

fn main() {
    let Some(a) = args() else {
        eprintln!(
            "usage: sse_fanout --url http://HOST:PORT --token TOKEN [--subscribers N] [--trials K]"
        );
        return;
    };
    // One thread: on a small machine the client must leave the server its cores.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut firsts = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for i in 0..a.trials {
            let (first, p50, p99) = trial(&c, &a).await;
            eprintln!("trial {i}: first {first:.1} p50 {p50:.1} p99 {p99:.1} ms");
            firsts.push(first);
            p50s.push(p50);
            p99s.push(p99);
        }
        println!(
            "{}",
            json!({"subscribers": a.subscribers, "trials": a.trials, "first_ms": median(firsts),
                   "p50_ms": median(p50s), "p99_ms": median(p99s)})
        );
    });
}

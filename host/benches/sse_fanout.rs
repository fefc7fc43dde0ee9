//! One event to many SSE subscribers, measured by a client that is not the bottleneck: every stream is a plain
//! socket on one `epoll` in one thread (1,000 by default) on one ask-user run; the client resumes the run and times, per stream,
//! the interval from sending the command to seeing its `event: step`. `first` is the earliest stream (the
//! command's own cost: HTTP, the durable commit, the runner), p50 and p99 are over the streams; each over
//! `--trials` runs, reported as medians. It talks HTTP only, so it measures the seed the same way.
//!
//! ```text
//! cargo bench -p abstractgateway --bench sse_fanout -- --url http://127.0.0.1:8080 --token T [--subscribers 1000] [--trials 5]
//! ```
//! The server needs `ABSTRACTGATEWAY_MAX_SSE` and `ABSTRACTGATEWAY_MAX_CONCURRENCY` above the subscriber count
//! and the `ask-user` bundle (`bundles/`).
//!
//! `--floor [--writers W]` measures the machine instead of a server: W threads (2 by default, the server's
//! workers on this machine) write one frame of an `event: step`'s size to every stream as soon as a trigger
//! byte arrives, with nothing else in between. No server can fan out faster than that on the same machine
//! with the same client.

use std::time::{Duration, Instant};

use std::io::{Read, Write};

use serde_json::{Value, json};

struct Args {
    url: String,
    token: String,
    subscribers: usize,
    trials: usize,
    /// Threads writing the frames in `--floor` mode; 0 means talk to a server.
    floor_writers: usize,
}

fn args() -> Option<Args> {
    let mut a = Args {
        url: String::new(),
        token: String::new(),
        subscribers: 1000,
        trials: 5,
        floor_writers: 0,
    };
    let mut floor = false;
    let mut writers = 2;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--floor" => floor = true,
            "--writers" => writers = it.next()?.parse().ok()?,
            "--url" => a.url = it.next()?,
            "--token" => a.token = it.next()?,
            "--subscribers" => a.subscribers = it.next()?.parse().ok()?,
            "--trials" => a.trials = it.next()?.parse().ok()?,
            _ => {} // `cargo bench` adds `--bench`.
        }
    }
    if floor {
        a.floor_writers = writers.max(1);
        return Some(a);
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

/// One stream, connected and past its response head: the bytes seen since, and when it saw `event: step`.
struct Stream {
    sock: mio::net::TcpStream,
    buf: Vec<u8>,
    seen: Option<Instant>,
}

/// Opens one stream with a blocking connect and reads its response head, then hands it to the poller.
fn open(addr: &str, request: &str) -> Stream {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(request.as_bytes()).expect("send the request");
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("read the response head");
        assert!(n > 0, "the server closed a stream");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 200"), "stream refused");
            buf.drain(..i + 4);
            break;
        }
    }
    s.set_nonblocking(true).expect("nonblocking");
    Stream {
        sock: mio::net::TcpStream::from_std(s),
        buf,
        seen: None,
    }
}

/// Reads what a stream has (edge-triggered: until it would block) and notes when `event: step` first shows.
fn drain(st: &mut Stream, chunk: &mut [u8], now: Instant) {
    loop {
        match st.sock.read(chunk) {
            Ok(0) => return,
            Ok(n) => {
                if st.seen.is_none() {
                    // Only the tail can complete the marker: search from 10 bytes before the new data.
                    let from = st.buf.len().saturating_sub(10);
                    st.buf.extend_from_slice(&chunk[..n]);
                    if st.buf[from..].windows(11).any(|w| w == b"event: step") {
                        st.seen = Some(now);
                        st.buf = Vec::new();
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("stream read: {e}"),
        }
    }
}

/// One trial on a fresh ask-user run: the streams are plain sockets on one `epoll` (no task per stream), so the
/// client's cost per stream is a read or two.
fn trial(rt: &tokio::runtime::Runtime, c: &reqwest::Client, a: &Args) -> (f64, f64, f64) {
    let (run_id, after) = rt.block_on(async {
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
        (run_id, page["next_after"].as_u64().unwrap_or(0))
    });
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
    let streams: Vec<Stream> = (0..a.subscribers).map(|_| open(&addr, &request)).collect();
    let body = json!({"command_id": format!("fan-{run_id}"), "run_id": run_id, "type": "resume",
                      "payload": {"payload": {"response": "go"}}})
    .to_string();
    let command = format!(
        "POST /api/gateway/commands HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        a.token,
        body.len()
    );
    let mut cmd = std::net::TcpStream::connect(&addr).expect("connect");
    cmd.set_nodelay(true).expect("nodelay");
    let times = fan_out(streams, &mut cmd, command.as_bytes());
    let mut answer = String::new();
    cmd.read_to_string(&mut answer)
        .expect("the command's answer");
    assert!(
        answer.starts_with("HTTP/1.1 2"),
        "command refused: {answer}"
    );
    times
}

/// Sends `trigger` on `cmd` and times every stream until it shows `event: step`: (first, p50, p99) in ms.
fn fan_out(
    mut streams: Vec<Stream>,
    cmd: &mut std::net::TcpStream,
    trigger: &[u8],
) -> (f64, f64, f64) {
    let mut poll = mio::Poll::new().expect("epoll");
    for (i, st) in streams.iter_mut().enumerate() {
        poll.registry()
            .register(&mut st.sock, mio::Token(i), mio::Interest::READABLE)
            .expect("register");
    }
    // Let the streams settle into waiting (their first reads of the head) and take what they sent so far (the
    // `retry:` hint).
    std::thread::sleep(Duration::from_millis(500));
    let mut chunk = vec![0u8; 16 << 10];
    for st in &mut streams {
        drain(st, &mut chunk, Instant::now());
        assert!(st.seen.is_none(), "a stream saw a step before the command");
    }
    let mut events = mio::Events::with_capacity(1024);
    let t0 = Instant::now();
    cmd.write_all(trigger).expect("send the command");
    let deadline = t0 + Duration::from_secs(60);
    let mut left = streams.len();
    while left > 0 {
        assert!(
            Instant::now() < deadline,
            "{left} streams did not get the event in time"
        );
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll");
        let now = Instant::now();
        for ev in &events {
            let st = &mut streams[ev.token().0];
            if st.seen.is_none() {
                drain(st, &mut chunk, now);
                if st.seen.is_some() {
                    left -= 1;
                }
            }
        }
    }
    let mut xs: Vec<f64> = streams
        .iter()
        .filter_map(|s| s.seen)
        .map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1000.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    (xs[0], pct(&xs, 50.0), pct(&xs, 99.0))
}

/// One `--floor` trial: a listener on a loopback port whose writer threads send one frame to every accepted
/// stream when the trigger byte arrives, timed by the same client as a server.
fn floor_trial(a: &Args) -> (f64, f64, f64) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    // The size of the frame ours sends to each stream in a server trial (748 bytes: `id:`, `event: step` and
    // the JSON of the resumed ask-user run's step record, as `strace` showed it).
    let mut frame = String::from("id: 3\nevent: step\ndata: {\"cursor\": 3, \"record\": \"");
    frame.push_str(&"x".repeat(748 - frame.len() - 4));
    frame.push_str("\"}\n\n");
    assert_eq!(frame.len(), 748);
    let (n, writers) = (a.subscribers, a.floor_writers);
    let server = std::thread::spawn(move || {
        let mut socks = Vec::with_capacity(n);
        for _ in 0..n {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_nodelay(true).expect("nodelay");
            // The response head the client waits for.
            s.write_all(b"HTTP/1.1 200 OK\r\n\r\nretry: 3000\n\n")
                .expect("head");
            socks.push(s);
        }
        let (mut trigger, _) = listener.accept().expect("accept the trigger");
        let per = n.div_ceil(writers);
        let groups: Vec<Vec<std::net::TcpStream>> = {
            let mut it = socks.into_iter();
            (0..writers)
                .map(|_| it.by_ref().take(per).collect())
                .collect()
        };
        let go = std::sync::Arc::new(std::sync::Barrier::new(writers + 1));
        let handles: Vec<_> = groups
            .into_iter()
            .map(|mut group| {
                let (go, frame) = (go.clone(), frame.clone());
                std::thread::spawn(move || {
                    go.wait();
                    for s in &mut group {
                        s.write_all(frame.as_bytes()).expect("write a frame");
                    }
                    group
                })
            })
            .collect();
        let mut byte = [0u8; 1];
        trigger.read_exact(&mut byte).expect("the trigger");
        go.wait();
        // Keep the streams open until the client has read them all.
        let kept: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect();
        trigger.read_exact(&mut byte).ok();
        drop(kept);
    });
    let request = "GET / HTTP/1.1\r\n\r\n";
    let streams: Vec<Stream> = (0..n).map(|_| open(&addr, request)).collect();
    let mut cmd = std::net::TcpStream::connect(&addr).expect("connect");
    cmd.set_nodelay(true).expect("nodelay");
    let times = fan_out(streams, &mut cmd, b"!");
    cmd.write_all(b"!").ok();
    server.join().expect("the floor server");
    times
}

fn main() {
    let Some(a) = args() else {
        eprintln!(
            "usage: sse_fanout --url http://HOST:PORT --token TOKEN [--subscribers N] [--trials K]\n       \
             sse_fanout --floor [--writers W] [--subscribers N] [--trials K]"
        );
        return;
    };
    // One thread: on a small machine the client must leave the server its cores.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A fresh connection per set-up call: a server may close an idle one (the seed's uvicorn does after 5 s, longer
    // than one of its trials) just as a pooled one is reused, which fails the request.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut firsts = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for i in 0..a.trials {
        let (first, p50, p99) = if a.floor_writers > 0 {
            floor_trial(&a)
        } else {
            trial(&rt, &c, &a)
        };
        eprintln!("trial {i}: first {first:.1} p50 {p50:.1} p99 {p99:.1} ms");
        firsts.push(first);
        p50s.push(p50);
        p99s.push(p99);
    }
    println!(
        "{}",
        json!({"subscribers": a.subscribers, "trials": a.trials, "floor_writers": a.floor_writers,
               "first_ms": median(firsts),
               "p50_ms": median(p50s), "p99_ms": median(p99s)})
    );
}

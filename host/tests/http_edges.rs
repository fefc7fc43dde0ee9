//! The HTTP edge, attacked over the real binary: heads and bodies that trickle in, heads and URIs that are too
//! large, JSON nested beyond reason, hostile uploads, odd bytes in path parameters and the concurrency cap of
//! ordinary requests. Each answer is a clear 4xx (with `{"detail"}` where the API answers), nothing lands where
//! it should not, and the server goes on serving.

mod binary;
mod in_process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use binary::{Server, TOKEN, zip_of};
use in_process::flowgen::{diamonds_flow, edge, node};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than any cut-off below: reaching it means the server never cut the client off.
const DEADLINE: Duration = Duration::from_secs(15);

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes (or `DEADLINE` passes, which fails the test); returns what it sent.
async fn read_until_closed(sock: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open; got so far: {}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `head` (and `body`) on a fresh connection while reading the answer until the server closes.
async fn exchange(s: &Server, head: &str, body: &[u8]) -> String {
    let sock = TcpStream::connect(addr(s)).await.expect("connect");
    let (mut rd, mut wr) = sock.into_split();
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    // Written alongside the read: the server may answer and close before it has read everything.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        wr
    });
    let out = read_until_closed(&mut rd).await;
    writer.abort();
    out
}

/// A head the server refused for its size: 431 (or `also`), or a reset when the server closed with part of
/// the head still unread (the kernel then discards the answer in flight).
fn assert_head_refused(raw: &str, also: u16) {
    let st = status_of(raw);
    assert!(
        st == 431 || st == also || raw.is_empty(),
        "an oversized head was not refused: {raw}"
    );
}

/// The status code of a raw HTTP/1.1 answer (0 when there is none).
fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The JSON body of a raw answer.
fn body_of(raw: &str) -> Value {
    raw.split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

async fn assert_healthy(s: &Server) {
    assert_eq!(
        s.get("/api/gateway/bundles").await.0,
        200,
        "server still serves"
    );
}

/// A request's answer: status, headers and JSON body (Null when not JSON).
async fn send(r: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = r.send().await.expect("request");
    let st = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    (st, h, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A clear client error: a 4xx whose body is `{"detail": <non-empty>}`.
fn assert_detail_4xx(what: &str, st: u16, v: &Value) {
    assert!((400..500).contains(&st), "{what}: status {st}, body {v}");
    let detail_ok = match &v["detail"] {
        Value::String(d) => !d.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    };
    assert!(detail_ok, "{what}: no detail in {v}");
}

#[tokio::test]
async fn heads_and_bodies_that_trickle_in_are_cut_off() {
    let s = Server::start(&[
        ("ABSTRACTGATEWAY_HTTP_HEADER_TIMEOUT_S", "1"),
        ("ABSTRACTGATEWAY_HTTP_BODY_TIMEOUT_S", "1"),
    ])
    .await;

    // Headers one byte every 200 ms: without a header timeout this would go on for a minute.
    let mut sock = TcpStream::connect(addr(&s)).await.expect("connect");
    sock.write_all(b"GET /api/gateway/bundles HTTP/1.1\r\nHost: a\r\n")
        .await
        .expect("write");
    let (mut rd, mut wr) = sock.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..300 {
            if wr.write_all(b"X").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    });
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(DEADLINE, rd.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a head trickling in was never cut off ({:?})",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || status_of(&text) == 408,
        "a cut-off head gets no answer or a 408: {text}"
    );
    trickle.abort();

    // A body that stops arriving: 408 with a detail, once the body timeout passes.
    let body = json!({"bundle_id": "echo-upper", "input_data": {}}).to_string();
    let mut sock = TcpStream::connect(addr(&s)).await.expect("connect");
    let head = format!(
        "POST /api/gateway/runs/start HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len() + 100
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    sock.write_all(body.as_bytes())
        .await
        .expect("part of the body");
    let raw = read_until_closed(&mut sock).await;
    assert_eq!(status_of(&raw), 408, "{raw}");
    assert!(
        body_of(&raw)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("body")),
        "{raw}"
    );
    // Nothing was started by the half body.
    let (_, runs) = s.get("/api/gateway/runs").await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(0), "{runs}");
    assert_healthy(&s).await;
}

#[tokio::test]
async fn heads_and_uris_beyond_their_caps_are_refused() {
    let s = Server::start(&[]).await;
    let a = addr(&s);

    // One header of 100 KiB, then 300 small headers: 431 from the connection layer.
    let big = format!(
        "GET /api/gateway/bundles HTTP/1.1\r\nHost: {a}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    assert_head_refused(&exchange(&s, &big, b"").await, 431);
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!(
        "GET /api/gateway/bundles HTTP/1.1\r\nHost: {a}\r\n{many}Connection: close\r\n\r\n"
    );
    assert_eq!(status_of(&exchange(&s, &many, b"").await), 431);

    // A 20 KiB URI: 414 with a detail, before authentication.
    let long = format!(
        "GET /api/gateway/runs?x={} HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n",
        "q".repeat(20 * 1024)
    );
    let raw = exchange(&s, &long, b"").await;
    assert_eq!(status_of(&raw), 414, "{raw}");
    assert!(
        body_of(&raw)["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("URI Too Long")),
        "{raw}"
    );
    // Past the head's buffer the connection layer answers first.
    let longer = format!(
        "GET /api/gateway/runs?x={} HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n",
        "q".repeat(200 * 1024)
    );
    assert_head_refused(&exchange(&s, &longer, b"").await, 414);
    assert_healthy(&s).await;
}

#[tokio::test]
async fn json_nested_beyond_reason_gets_a_clear_4xx() {
    let s = Server::start(&[]).await;
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let cases = [
        (
            "/api/gateway/runs/start",
            format!(
                r#"{{"bundle_id": "echo-upper", "input_data": {{"x": {}}}}}"#,
                nested(100_000)
            ),
        ),
        (
            "/api/gateway/commands",
            format!(
                r#"{{"command_id": "c1", "run_id": "r", "type": "emit_event", "payload": {{"name": "e", "payload": {}}}}}"#,
                nested(100_000)
            ),
        ),
        (
            "/api/gateway/runs/ledger/batch",
            format!(r#"{{"runs": {}}}"#, nested(100_000)),
        ),
        ("/api/gateway/runs/schedule", nested(100_000)),
        // Under the parser's limit, over a run's: refused before anything is stored.
        (
            "/api/gateway/runs/start",
            format!(
                r#"{{"bundle_id": "echo-upper", "input_data": {{"x": {}}}}}"#,
                nested(100)
            ),
        ),
    ];
    for (path, body) in cases {
        let (st, _, v) = send(
            s.client
                .post(s.url(path))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_detail_4xx(path, st, &v);
    }
    let (_, runs) = s.get("/api/gateway/runs").await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(0), "{runs}");
    assert_healthy(&s).await;
}

/// The files of a small valid bundle `id` (one flow that ends at once).
fn bundle_entries(id: &str) -> Vec<(&'static str, Vec<u8>)> {
    let flow = json!({"id": "main", "name": "main", "entryNode": "s", "nodes": [
        {"id": "s", "type": "on_flow_start", "data": {"nodeType": "on_flow_start", "inputs": [],
            "outputs": [{"id": "exec-out", "label": "", "type": "execution"}]}},
        {"id": "e", "type": "on_flow_end", "data": {"nodeType": "on_flow_end",
            "inputs": [{"id": "exec-in", "label": "", "type": "execution"}], "outputs": []}}],
        "edges": [{"id": "x", "source": "s", "sourceHandle": "exec-out", "target": "e", "targetHandle": "exec-in"}]});
    let manifest = json!({"bundle_format_version": "1", "bundle_id": id, "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main",
        "flows": {"main": "flows/main.json"}});
    vec![
        ("manifest.json", manifest.to_string().into_bytes()),
        ("flows/main.json", flow.to_string().into_bytes()),
    ]
}

const BOUNDARY: &str = "----agedgeboundary7";

/// A multipart body with one `file` part named `filename`.
fn multipart(filename: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_raw(s: &Server, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let (st, _, v) = send(
        s.client
            .post(s.url("/api/gateway/bundles/upload"))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body),
    )
    .await;
    (st, v)
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn hostile_uploads_are_refused_and_leave_nothing_behind() {
    let s = Server::start(&[]).await;
    let before = files_under(&s.dir);
    let mp = format!("multipart/form-data; boundary={BOUNDARY}");

    // A zip bomb: 64 MiB of zeros deflate to about 64 KiB.
    let mut bomb = bundle_entries("bomb");
    bomb.push(("assets/zeros.bin", vec![0u8; 64 << 20]));
    // An entry that climbs out of the bundle, and one with an absolute path.
    let mut climb = bundle_entries("climb");
    climb.push(("../../escaped.json", b"{}".to_vec()));
    let mut absolute = bundle_entries("absolute");
    absolute.push(("/tmp/escaped.json", b"{}".to_vec()));
    // A manifest whose id is a path.
    let mut id_path = bundle_entries("x");
    id_path[0].1 = json!({"bundle_format_version": "1", "bundle_id": "../../escaped", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "main"}], "default_entrypoint": "main", "flows": {"main": "flows/main.json"}})
    .to_string()
    .into_bytes();
    for (what, zip) in [
        ("zip bomb", zip_of(&bomb)),
        ("entry with ..", zip_of(&climb)),
        ("absolute entry", zip_of(&absolute)),
        ("bundle id with ..", zip_of(&id_path)),
        ("not a zip", b"PK\x03\x04 but nothing else".to_vec()),
    ] {
        let (st, v) = upload_raw(&s, &mp, multipart("b.flow", &zip)).await;
        assert_eq!(st, 400, "{what}: {v}");
        assert_detail_4xx(what, st, &v);
    }

    // A truncated stream: the file part never ends.
    let whole = multipart("b.flow", &zip_of(&bundle_entries("truncated")));
    let (st, v) = upload_raw(&s, &mp, whole[..whole.len() / 2].to_vec()).await;
    assert_detail_4xx("truncated multipart", st, &v);
    // The wrong content types.
    let (st, v) = upload_raw(&s, "application/json", br#"{"file": "x"}"#.to_vec()).await;
    assert_detail_4xx("json body", st, &v);
    let (st, v) = upload_raw(&s, "multipart/form-data", whole.clone()).await;
    assert_detail_4xx("no boundary", st, &v);
    let (st, v) = upload_raw(&s, "text/plain", whole.clone()).await;
    assert_detail_4xx("text body", st, &v);

    assert_eq!(
        files_under(&s.dir)
            .into_iter()
            .filter(|p| !p.starts_with("data"))
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|p| !p.starts_with("data"))
            .cloned()
            .collect::<Vec<_>>(),
        "a refused upload leaves no file"
    );
    assert!(
        !s.dir.join("escaped.json").exists()
            && !s
                .dir
                .parent()
                .expect("parent")
                .join("escaped.json")
                .exists()
    );

    // A client's file name is never a path: the bundle is stored under its own id, inside the flows dir.
    let (st, v) = upload_raw(
        &s,
        &mp,
        multipart("../../escaped.flow", &zip_of(&bundle_entries("named"))),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let added: Vec<PathBuf> = files_under(&s.dir)
        .into_iter()
        .filter(|p| !p.starts_with("data") && !before.contains(p))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(added[0].starts_with("flows"), "{added:?}");
    assert!(!added[0].to_string_lossy().contains("escaped"), "{added:?}");
    assert_healthy(&s).await;
}

#[tokio::test]
async fn odd_bytes_in_path_parameters_are_client_errors() {
    let s = Server::start(&[]).await;
    let run = s.start_run("echo-upper", json!({"text": "hi"})).await;
    s.wait_done(&run, 20).await;
    let (_, bundles_before) = s.get("/api/gateway/bundles").await;
    let flows_before = files_under(&s.dir.join("flows"));
    let ids = [
        "..",
        ".",
        "..%2F..%2Fdata",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%5C..%5Cdata",
        "%00",
        "a%00b",
        "%FF%FE",
        "a%0d%0aX-Injected:%201",
        "%E2%80%AEfdp.exe",
        "~root",
        "C:%5Cwindows",
        "no-such@..%2F..",
        "%25%32%65%25%32%65",
    ];
    let long = "x".repeat(4000);
    for id in ids.iter().copied().chain([long.as_str()]) {
        let gets = [
            format!("/api/gateway/bundles/{id}"),
            format!("/api/gateway/bundles/{id}/flows/{id}"),
            format!("/api/gateway/bundles/echo-upper/flows/{id}"),
            format!("/api/gateway/workflows/{id}/flow"),
            format!("/api/gateway/runs/{id}"),
            format!("/api/gateway/runs/{id}/input_data"),
            format!("/api/gateway/runs/{id}/ledger"),
            format!("/api/gateway/runs/{id}/history_bundle"),
            format!("/api/gateway/runs/{id}/artifacts"),
            format!("/api/gateway/runs/{run}/artifacts/{id}"),
            format!("/api/gateway/runs/{run}/artifacts/{id}/content"),
            format!("/api/gateway/runs/{id}/artifacts/{id}/content"),
            format!("/api/gateway/commands/{id}"),
        ];
        for path in gets {
            let (st, h, v) = send(s.client.get(s.url(&path)).bearer_auth(TOKEN)).await;
            assert_detail_4xx(&path, st, &v);
            assert!(!h.contains_key("x-injected"), "{path}");
        }
        let writes = [
            s.client
                .delete(s.url(&format!("/api/gateway/bundles/{id}"))),
            s.client
                .post(s.url(&format!("/api/gateway/bundles/{id}/deprecate")))
                .json(&json!({})),
        ];
        for w in writes {
            let (st, _, v) = send(w.bearer_auth(TOKEN)).await;
            assert_detail_4xx(id, st, &v);
        }
        // As on the seed, undeprecating what is not deprecated is a no-op that succeeds.
        let (st, _, v) = send(
            s.client
                .post(s.url(&format!("/api/gateway/bundles/{id}/undeprecate")))
                .bearer_auth(TOKEN)
                .json(&json!({})),
        )
        .await;
        if st == 200 {
            assert_eq!(v["removed"], json!(false), "{id}: {v}");
        } else {
            assert_detail_4xx(id, st, &v);
        }
    }
    // HTTP clients resolve `..` and `%2e%2e` segments before sending; a hostile one does not.
    let a = addr(&s);
    for (method, path) in [
        ("GET", "/api/gateway/bundles/.."),
        ("GET", "/api/gateway/bundles/../../../etc/passwd"),
        ("DELETE", "/api/gateway/bundles/.."),
        ("DELETE", "/api/gateway/bundles/%2e%2e"),
        ("GET", "/api/gateway/runs/%2e%2e/ledger"),
        (
            "GET",
            "/api/gateway/bundles/echo-upper/flows/..%2f..%2f..%2fdata",
        ),
        (
            "GET",
            &format!("/api/gateway/runs/{run}/artifacts/../../../data/content"),
        ),
        (
            "GET",
            &format!("/api/gateway/runs/{run}/artifacts/%2e%2e%2f%2e%2e/content"),
        ),
    ] {
        let raw = exchange(
            &s,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {a}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
            ),
            b"",
        )
        .await;
        assert_detail_4xx(path, status_of(&raw), &body_of(&raw));
    }
    // Nothing was deleted or deprecated, and the run is intact.
    assert_eq!(s.get("/api/gateway/bundles").await.1, bundles_before);
    assert_eq!(files_under(&s.dir.join("flows")), flows_before);
    assert_eq!(
        s.get(&format!("/api/gateway/runs/{run}")).await.1["status"],
        "completed"
    );
    assert_healthy(&s).await;
}

/// The Python component in a plugins dir of `dir`, with the compiled-component cache the in-process tests
/// share (so the server does not compile CPython again).
fn with_python(dir: &Path) {
    let built = abstractgateway_testkit::repo_root().join("target/plugins");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir plugins");
    for f in ["python_code.wasm", "python_code.grants.json"] {
        std::fs::copy(built.join(f), plugins.join(f)).unwrap_or_else(|e| {
            panic!("{f} is missing ({e}): build it with scripts/build-python-plugin.sh")
        });
    }
    let cache = abstractgateway_testkit::repo_root().join("target/python-plugin/server-test-cache");
    std::fs::create_dir_all(&cache).expect("mkdir cache");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir data");
    std::os::unix::fs::symlink(&cache, dir.join("data/components")).expect("link cache");
}

#[tokio::test]
async fn max_concurrency_caps_ordinary_requests() {
    let tmp = tempfile::tempdir().expect("tmp");
    binary::copy_bundles(&tmp.path().join("flows"));
    with_python(tmp.path());
    let plugins = tmp.path().join("plugins");
    let s = Server::start_in(
        tmp.path(),
        &[
            ("ABSTRACTGATEWAY_MAX_CONCURRENCY", "1"),
            (
                "ABSTRACTGATEWAY_PLUGINS_DIR",
                plugins.to_str().expect("utf-8 path"),
            ),
        ],
    )
    .await;

    // An upload whose flow function never finishes defining itself holds the one slot while it is checked
    // (until the component's CPU limit).
    let mut entries = bundle_entries("endless");
    let mut flow: Value = serde_json::from_slice(&entries[1].1).expect("flow");
    flow["functions"] =
        json!([{"name": "f", "code": "def f(x, y=any(iter(int, 1))):\n    return x\n"}]);
    entries[1].1 = flow.to_string().into_bytes();
    let body = multipart("endless.flow", &zip_of(&entries));
    let url = s.url("/api/gateway/bundles/upload");
    let client = s.client.clone();
    let upload = tokio::spawn(async move {
        send(
            client
                .post(url)
                .bearer_auth(TOKEN)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await
    });

    let deadline = Instant::now() + DEADLINE;
    let refused = loop {
        assert!(
            !upload.is_finished(),
            "the upload ended before any request was refused"
        );
        assert!(Instant::now() < deadline, "no request was ever refused");
        let (st, h, v) = send(
            s.client
                .get(s.url("/api/gateway/bundles"))
                .bearer_auth(TOKEN),
        )
        .await;
        if st == 429 {
            break (h, v);
        }
        assert_eq!(st, 200, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.0["retry-after"], "1");
    assert_eq!(
        refused.1,
        json!({"detail": "Too Many Requests (concurrency limit)"})
    );
    // Outside the API the cap does not apply.
    assert_eq!(
        s.client
            .get(s.url("/api/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );

    let (st, _, v) = tokio::time::timeout(DEADLINE, upload)
        .await
        .expect("the upload ends at the CPU limit")
        .expect("upload task");
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("CPU time limit")),
        "{v}"
    );
    assert_healthy(&s).await;
}

#[tokio::test]
async fn a_ledger_batch_answers_each_run_once_and_refuses_too_many() {
    let s = Server::start(&[]).await;
    let run = s.start_run("echo-upper", json!({"name": "x"})).await;
    s.wait_done(&run, 20).await;
    // The same run 500 times (the most a batch takes): one answer, at its last cursor.
    let mut runs: Vec<Value> = (0..499)
        .map(|_| json!({"run_id": run, "after": 0}))
        .collect();
    runs.push(json!({"run_id": run, "after": 1}));
    let (st, v) = s
        .post("/api/gateway/runs/ledger/batch", json!({"runs": runs}))
        .await;
    assert_eq!(st, 200, "{v}");
    let answered = v["runs"].as_object().expect("runs");
    assert_eq!(answered.len(), 1, "{v}");
    assert_eq!(answered[&run]["next_after"], 2);
    assert_eq!(answered[&run]["items"].as_array().map(Vec::len), Some(1));
    // One more id than a batch takes: a validation error naming the limit.
    let runs: Vec<Value> = (0..501)
        .map(|i| json!({"run_id": format!("r{i}")}))
        .collect();
    let (st, v) = s
        .post("/api/gateway/runs/ledger/batch", json!({"runs": runs}))
        .await;
    assert_detail_4xx("501 run ids", st, &v);
    assert!(v.to_string().contains("at most 500"), "{v}");
}

/// A client that hangs up while its start is being committed does not leave a durable run behind that the runner
/// never hears of: the commit and the hand-over finish without the client (a load generator that stops mid-request
/// left runs `running` forever).
#[tokio::test]
async fn a_start_whose_client_hangs_up_is_still_stepped() {
    let s = Server::start(&[]).await;
    let a = addr(&s);
    // A flow that needs the runner (a timer): a self-contained one would be finished by its start's commit.
    let body = json!({"bundle_id": "delay", "input_data": {"seconds": 0.05}}).to_string();
    let head = format!(
        "POST /api/gateway/runs/start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Many at once, each connection closed right after its request is written: some are dropped before their
    // commit (no run), others while it is in flight.
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (a, head) = (a.clone(), head.clone());
        tasks.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(&a).await.expect("connect");
            sock.write_all(head.as_bytes()).await.expect("write");
            drop(sock);
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    // The clients are gone before the server has read every request, so a start may still commit after any
    // given listing: poll the whole listing until every run in it has completed, then once more after a pause so
    // that late commits are looked at too. A committed start that is never stepped stays `running` and fails here.
    let deadline = Instant::now() + DEADLINE;
    let mut settled = 0;
    while settled < 2 {
        let (st, v) = s.get("/api/gateway/runs?limit=500").await;
        assert_eq!(st, 200, "{v}");
        let runs = v["items"].as_array().expect("items");
        if runs.iter().all(|r| r["status"] == "completed") {
            settled += 1;
        } else {
            settled = 0;
            assert!(
                Instant::now() < deadline,
                "every stored run completes (a start was committed but never stepped): {v}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Hostile pure graphs over the real binary. A bundle uploaded over HTTP holds forty chained diamonds (2^40 pure
/// evaluations if a pull had no bound) and a `while` whose condition never turns false; both are started eight
/// at a time while another client checks health. A pure flow takes its first round on the starting request, so
/// an unbounded pull would hold an HTTP worker for hours: every start must answer, health must keep answering,
/// the diamond runs must end with the pull budget's error and the loops at the seed's loop cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pure_graphs_started_over_http_end_and_the_gateway_keeps_answering() {
    let s = Server::start(&[]).await;
    let forever = json!({"id": "forever", "entryNode": "s", "nodes": [
        node("s", "on_flow_start", false, &["exec-out"], &[], &[], json!({})),
        node("w", "while", true, &["loop", "done"], &["condition"], &[], json!({"pinDefaults": {"condition": true}})),
        node("inc", "set_var", true, &["exec-out"], &["name", "value"], &["value"], json!({"pinDefaults": {"name": "k", "value": 1}})),
        node("e", "on_flow_end", true, &[], &[], &[], json!({}))],
      "edges": [edge("s", "exec-out", "w", "exec-in"), edge("w", "loop", "inc", "exec-in"),
                edge("w", "done", "e", "exec-in")]});
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "hostile-pure", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "diamonds"}, {"flow_id": "forever"}], "default_entrypoint": "diamonds",
        "flows": {"diamonds": "flows/diamonds.json", "forever": "flows/forever.json"}});
    let bundle = zip_of(&[
        ("manifest.json", manifest.to_string().into_bytes()),
        (
            "flows/diamonds.json",
            diamonds_flow(40).to_string().into_bytes(),
        ),
        ("flows/forever.json", forever.to_string().into_bytes()),
    ]);
    let (st, v) = s.upload("hostile-pure@1.0.0.flow", &bundle, None).await;
    assert_eq!(st, 200, "{v}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (url, stop) = (s.url("/api/health"), stop.clone());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        tokio::spawn(async move {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.get(&url).send().await.expect("health answers");
                assert_eq!(r.status(), 200);
                answered += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered
        })
    };
    let starts = (0..16).map(|i| {
        let flow = if i % 2 == 0 { "diamonds" } else { "forever" };
        let body = json!({"bundle_id": "hostile-pure", "flow_id": flow, "input_data": {}});
        let s = &s;
        async move { (flow, s.post("/api/gateway/runs/start", body).await) }
    });
    let started = futures::future::join_all(starts).await;
    for (flow, (st, v)) in &started {
        assert_eq!(*st, 200, "{flow}: {v}");
    }
    for (flow, (_, v)) in &started {
        let done = s
            .wait_done(v["run_id"].as_str().expect("run id"), 120)
            .await;
        if *flow == "diamonds" {
            assert_eq!(done["status"], "completed", "{done}");
            assert_eq!(done["output"]["success"], false, "{done}");
            let error = done["output"]["error"].as_str().unwrap_or_default();
            assert!(error.contains("more than 10000 pure nodes"), "{done}");
        } else {
            // The seed's cap on one loop, 10,000 passes (several rounds later): a node error, which ends the
            // run with `success: false` as the diamonds' does.
            assert_eq!(done["status"], "completed", "{done}");
            assert_eq!(done["output"]["success"], false, "{done}");
            let error = done["output"]["error"].as_str().unwrap_or_default();
            assert!(error.contains("max_iterations=10000"), "{done}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = checker.await.expect("health checker");
    assert!(answered > 0);
    // And the gateway still runs ordinary work.
    let run = s.start_run("echo-upper", json!({})).await;
    assert_eq!(s.wait_done(&run, 10).await["status"], "completed");
}

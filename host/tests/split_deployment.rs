//! Split deployment: `abstractgateway runner` owns the data dir, `serve --no-runner` is the public
//! front. Uploads, runs, commands and SSE through the front reach the runner; a second owner is
//! refused loudly; a front without a runner answers 503 with the reason.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "split-token-0123456789abcdef";

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ABSTRACTGATEWAY_FLOWS_DIR", dir.join("flows"))
        .env("ABSTRACTGATEWAY_DATA_DIR", dir.join("data"))
        .env("ABSTRACTGATEWAY_AUTH_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Reads the front's `listening on http://...` line (30 s at most: a front that never listens fails the test).
fn front_addr(child: &mut Child) -> String {
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(err).lines().map_while(Result::ok);
        for line in lines.by_ref() {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(',')
                    .to_string();
                let _ = tx.send(addr);
                break;
            }
        }
        // Keep draining so the front never blocks on a full pipe.
        for _ in lines {}
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the front never said where it listens")
}

fn wait_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn upload_body(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----splitboundary42";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.flow\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn front_forwards_everything_to_the_one_runner() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let bundles = &abstractgateway_testkit::repo_root().join("bundles");
    std::fs::create_dir_all(dir.join("flows")).expect("mkdir");
    // The runner starts without echo-upper: it arrives by upload through the front.
    for name in ["ask-user@1.0.0.flow", "chain@1.0.0.flow"] {
        std::fs::copy(bundles.join(name), dir.join("flows").join(name)).expect("copy");
    }
    let mut front = spawn(
        dir,
        &["serve", "--host", "127.0.0.1", "--port", "0", "--no-runner"],
    );
    let base = front_addr(&mut front);
    let c = reqwest::Client::new();
    // No runner yet: a clear 503, not a silently idle API.
    let r = c
        .get(format!("{base}/api/gateway/bundles"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("abstractgateway runner"),
        "{v}"
    );

    let mut runner = spawn(dir, &["runner"]);
    wait_file(&dir.join("data/runner.addr"));
    // A second owner of the data dir is refused with the reason.
    let out = Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
        .arg("runner")
        .env("ABSTRACTGATEWAY_FLOWS_DIR", dir.join("flows"))
        .env("ABSTRACTGATEWAY_DATA_DIR", dir.join("data"))
        .env("ABSTRACTGATEWAY_AUTH_TOKEN", TOKEN)
        .output()
        .expect("second runner");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another abstractgateway process")
    );

    let (ct, body) =
        upload_body(&std::fs::read(bundles.join("echo-upper@1.0.0.flow")).expect("read"));
    let r = c
        .post(format!("{base}/api/gateway/bundles/upload"))
        .bearer_auth(TOKEN)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = c
        .post(format!("{base}/api/gateway/runs/start"))
        .bearer_auth(TOKEN)
        .json(&json!({"bundle_id": "echo-upper", "input_data": {"name": "split"}}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    let run = r.json::<Value>().await.expect("json")["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The SSE stream passes through the front and ends with `done`.
    let r = c
        .get(format!("{base}/api/gateway/runs/{run}/ledger/stream"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sse");
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream; charset=utf-8")
    );
    let text = tokio::time::timeout(Duration::from_secs(30), r.text())
        .await
        .expect("stream ends")
        .expect("body");
    assert!(text.contains("event: done"), "{text}");
    assert!(text.contains("HELLO,  SPLIT"), "{text}");
    // Auth still applies behind the front.
    let r = c
        .get(format!("{base}/api/gateway/runs/{run}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);

    let _ = runner.kill();
    let _ = runner.wait();
    let r = c
        .get(format!("{base}/api/gateway/runs/{run}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    let _ = front.kill();
    let _ = front.wait();
}

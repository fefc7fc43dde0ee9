//! SIGKILL of the server binary under load, then a restart on the same data dir: every run and command the
//! server acknowledged is still there and finishes.

mod binary;

use std::sync::Arc;
use std::time::Duration;

use binary::Server;
use serde_json::json;
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let mut s = Server::start(&[("ABSTRACTGATEWAY_TICK_MAX_STEPS", "1")]).await;
    let mut asks = Vec::new();
    for _ in 0..10 {
        asks.push(s.start_run("ask-user", json!({"name": "A"})).await);
    }
    for a in &asks {
        s.wait_status(a, "waiting").await;
    }
    let base = s.base.clone();
    let acked_runs = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked_cmds = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (base, acked, stop) = (base.clone(), acked_runs.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = binary::client();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bundle = if (w + i) % 2 == 0 {
                    "echo-upper"
                } else {
                    "chain"
                };
                let r = c
                    .post(format!("{base}/api/gateway/runs/start"))
                    .bearer_auth(binary::TOKEN)
                    .json(&json!({"bundle_id": bundle}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        if let Ok(v) = r.json::<serde_json::Value>().await {
                            acked
                                .lock()
                                .await
                                .push(v["run_id"].as_str().unwrap_or_default().to_string());
                        }
                    }
                    _ => break,
                }
                i += 1;
            }
        }));
    }
    {
        let (base, acked) = (base.clone(), acked_cmds.clone());
        let asks = asks.clone();
        tasks.push(tokio::spawn(async move {
            let c = binary::client();
            for (i, a) in asks.iter().enumerate() {
                let id = format!("resume-{i}");
                let r = c.post(format!("{base}/api/gateway/commands")).bearer_auth(binary::TOKEN)
                    .json(&json!({"command_id": id, "run_id": a, "type": "resume", "payload": {"payload": {"response": "x"}}})).send().await;
                if matches!(r, Ok(ref r) if r.status() == 200) {
                    acked.lock().await.push((id, a.clone()));
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let runs = acked_runs.lock().await.clone();
    let cmds = acked_cmds.lock().await.clone();
    assert!(runs.len() > 5, "load too small: {}", runs.len());
    s.restart().await;
    for r in &runs {
        s.wait_status(r, "completed").await;
    }
    for (id, run) in &cmds {
        let (st, c) = s.get(&format!("/api/gateway/commands/{id}")).await;
        assert_eq!(st, 200, "acknowledged command {id} lost");
        assert_eq!(c["command"]["run_id"], run.as_str());
        s.wait_status(run, "completed").await;
    }
    // Each completed run has exactly one completion record.
    for r in runs.iter().take(50) {
        let (_, l) = s
            .get(&format!("/api/gateway/runs/{r}/ledger?limit=2000"))
            .await;
        let n = l["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| {
                x["idempotency_key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("system:completion:"))
            })
            .count();
        assert_eq!(n, 1, "run {r}: {l}");
    }
}

#[tokio::test]
async fn a_second_process_on_the_data_dir_is_refused_loudly() {
    let s = Server::start(&[]).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
        .arg("runner")
        .env("ABSTRACTGATEWAY_FLOWS_DIR", s.dir.join("flows"))
        .env("ABSTRACTGATEWAY_DATA_DIR", s.dir.join("data"))
        .env("ABSTRACTGATEWAY_AUTH_TOKEN", binary::TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another abstractgateway process"),
        "{err}"
    );
    // The first process is unaffected.
    let run = s.start_run("echo-upper", json!({})).await;
    s.wait_status(&run, "completed").await;
}

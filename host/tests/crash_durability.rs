//! Crash safety of the engine with the real binary: hundreds of runs and commands in flight, SIGKILL,
//! restart on the same data dir. Every acknowledged run and command is there, every run ends with the
//! output it would have had without the crash, and every ledger is the exact sequence the seed writes:
//! no record duplicated, torn, reordered or missing.

mod binary;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use binary::Server;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// What a run was started as, to know its output and ledger without a crash.
#[derive(Clone, Debug)]
enum Kind {
    Echo(String),
    Chain(String),
    Delay,
    Ask(String),
}

fn expected_output(k: &Kind, answer: Option<&str>) -> Value {
    match k {
        Kind::Echo(n) => {
            let s = format!("Hello,  {n}").to_uppercase();
            json!({"response": s, "length": s.chars().count(), "success": true})
        }
        Kind::Chain(n) => json!({"response": n, "success": true}),
        Kind::Delay => json!({"response": "done", "success": true}),
        Kind::Ask(n) => {
            json!({"response": format!("{n}  answered:  {}", answer.unwrap_or_default()), "success": true})
        }
    }
}

fn expected_ledger(k: &Kind) -> Vec<&'static str> {
    match k {
        Kind::Echo(_) | Kind::Chain(_) => vec!["end/completed/-", "end/completed/emit_event"],
        Kind::Delay => vec![
            "delay/started/wait_until",
            "delay/waiting/wait_until",
            "end/completed/-",
            "end/completed/emit_event",
        ],
        Kind::Ask(_) => vec![
            "ask/started/ask_user",
            "ask/waiting/ask_user",
            "ask/completed/resume",
            "end/completed/-",
            "end/completed/emit_event",
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_and_repeats_nothing() {
    // One step per turn keeps many chains mid-graph when the process dies.
    let mut s = Server::start(&[("ABSTRACTGATEWAY_TICK_MAX_STEPS", "1")]).await;
    let acked: Arc<Mutex<Vec<(String, Kind)>>> = Arc::default();
    let answers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let asks: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (base, acked, asks, stop) = (s.base.clone(), acked.clone(), asks.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = binary::client();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("w{w}n{i}");
                let (bundle, input, kind) = match i % 4 {
                    0 => (
                        "echo-upper",
                        json!({"name": name}),
                        Kind::Echo(name.clone()),
                    ),
                    1 => ("chain", json!({"name": name}), Kind::Chain(name.clone())),
                    2 => ("delay", json!({"seconds": 0.2}), Kind::Delay),
                    _ => ("ask-user", json!({"name": name}), Kind::Ask(name.clone())),
                };
                let r = c
                    .post(format!("{base}/api/gateway/runs/start"))
                    .bearer_auth(binary::TOKEN)
                    .json(&json!({"bundle_id": bundle, "input_data": input}))
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if r.status() != 200 {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else {
                    break;
                };
                let id = v["run_id"].as_str().unwrap_or_default().to_string();
                if matches!(kind, Kind::Ask(_)) {
                    asks.lock().await.push(id.clone());
                }
                acked.lock().await.push((id, kind));
                i += 1;
            }
        }));
    }
    {
        // Answers every ask-user run as soon as it is known; an answer counts once it is acknowledged.
        let (base, asks, answers, stop) =
            (s.base.clone(), asks.clone(), answers.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = binary::client();
            let mut done = HashSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let pending: Vec<String> = asks.lock().await.iter().filter(|a| !done.contains(*a)).cloned().collect();
                for a in pending {
                    let answer = format!("colour-{}", &a[..8]);
                    let r = c
                        .post(format!("{base}/api/gateway/commands"))
                        .bearer_auth(binary::TOKEN)
                        .json(&json!({"command_id": format!("answer-{a}"), "run_id": a, "type": "resume",
                                      "payload": {"payload": {"response": answer}}}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            answers.lock().await.insert(a.clone(), answer);
                            done.insert(a);
                        }
                        // 409/404 before the run is waiting: retry on the next pass.
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // Let the load build up, then kill the server in the middle of it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().await.len() < 300 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The kill must land while runs are mid-graph, or it proves nothing.
    let in_flight = s.runs_in_flight().await;
    s.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        in_flight > 0,
        "no run was in flight when the process was killed"
    );
    println!("{in_flight} runs in flight at the kill");
    for t in tasks {
        let _ = t.await;
    }
    let runs = acked.lock().await.clone();
    let answers = answers.lock().await.clone();
    assert!(runs.len() >= 100, "load too small: {}", runs.len());
    // What the crash interrupted, read from disk before the restart finishes anything.
    println!(
        "acknowledged: {} runs, {} answers",
        runs.len(),
        answers.len()
    );

    s.restart().await;
    let (_, running) = s.get("/api/gateway/runs?status=running&limit=500").await;
    let (_, waiting) = s.get("/api/gateway/runs?status=waiting&limit=500").await;
    println!(
        "after restart: {} running, {} waiting",
        running["items"].as_array().map_or(0, Vec::len),
        waiting["items"].as_array().map_or(0, Vec::len)
    );
    // An answer whose acknowledgement the crash swallowed may or may not have been applied (the
    // client cannot know); a waiting run gets a late answer, as a retrying client would send.
    let mut answers = answers;
    for (id, k) in &runs {
        if matches!(k, Kind::Ask(_)) && !answers.contains_key(id) {
            let v = s
                .wait_run(id, |v| {
                    v["status"] == "waiting" || v["status"] == "completed"
                })
                .await;
            if v["status"] == "waiting" {
                let (st, v) = s
                    .command(
                        &format!("late-{id}"),
                        id,
                        "resume",
                        json!({"payload": {"response": "late"}}),
                    )
                    .await;
                assert_eq!(st, 200, "{v}");
                answers.insert(id.clone(), "late".into());
            } else {
                answers.insert(id.clone(), format!("colour-{}", &id[..8]));
            }
        }
    }
    let mut completions = 0;
    for (id, k) in &runs {
        let answer = answers.get(id).map(String::as_str);
        let v = s
            .wait_run(id, |v| {
                v["status"] == "completed" || v["status"] == "failed"
            })
            .await;
        assert_eq!(v["status"], "completed", "run {id} ({k:?}): {v}");
        assert_eq!(v["output"], expected_output(k, answer), "run {id} ({k:?})");
        let (_, page) = s
            .get(&format!("/api/gateway/runs/{id}/ledger?limit=2000"))
            .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let seq: Vec<String> = items
            .iter()
            .map(|r| {
                format!(
                    "{}/{}/{}",
                    r["node_id"].as_str().unwrap_or(""),
                    r["status"].as_str().unwrap_or(""),
                    r["effect"]["type"].as_str().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(seq, expected_ledger(k), "run {id} ({k:?}) ledger");
        assert!(
            items
                .iter()
                .all(|r| r.as_object().is_some_and(|o| o.len() == 16)),
            "torn record in {id}"
        );
        let steps: HashSet<(String, String)> = items
            .iter()
            .map(|r| {
                (
                    r["step_id"].as_str().unwrap_or("").to_string(),
                    r["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(steps.len(), items.len(), "duplicate record in {id}");
        assert_eq!(page["next_after"], items.len());
        completions += 1;
    }
    assert_eq!(completions, runs.len());
    // Every acknowledged command is in the inbox with an outcome, applied exactly once.
    for (id, answer) in &answers {
        let cid = if answer == "late" {
            format!("late-{id}")
        } else {
            format!("answer-{id}")
        };
        let (st, c) = s.get(&format!("/api/gateway/commands/{cid}")).await;
        assert_eq!(st, 200, "acknowledged command for {id} lost");
        let outcome = s.wait_outcome(&cid).await;
        assert_eq!(outcome["status"], "applied", "{c}");
    }
}

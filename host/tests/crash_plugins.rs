//! kill -9 at random points of a load of plugin runs, ten times over, restarting on the same data dir each
//! time. The load mixes a bundle component that makes HTTP calls to a stand-in and writes kv, logs and an
//! artifact, `llm_call` (`basic-llm-test`) and `agent` (`basic-agent`) against the fixtures' deterministic
//! LLM stand-in. Afterwards every acknowledged run completed with the output of an uninterrupted run, its
//! ledger is that run's ledger record for record (none duplicated, torn, reordered or missing), and each
//! stand-in saw each request at most once more per kill than the ledger records.

mod binary;
mod in_process;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use binary::Server;
use in_process::fake_llm::FakeLlm;
use in_process::loads::{normalized, shape, write_steps_bundle};
use in_process::shared;
use in_process::standin::StepServer;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Kills (and restarts) in one test.
const KILLS: usize = 10;
/// Concurrent clients starting runs.
const CLIENTS: usize = 3;
/// Every wait of the test ends by this deadline: a bug fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(180);

/// What a run was started as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// `steps`: three HTTP calls, each journalled to kv and the log, then an artifact.
    Steps,
    /// `basic-llm-test`: one `llm_call`.
    Llm,
    /// `basic-agent`: an agent (a child run) asking the model.
    Agent,
}

const KINDS: [Kind; 3] = [Kind::Steps, Kind::Llm, Kind::Agent];

impl Kind {
    fn bundle(self) -> &'static str {
        match self {
            Kind::Steps => "steps",
            Kind::Llm => "basic-llm-test",
            Kind::Agent => "basic-agent",
        }
    }

    /// The run's input; `tag` makes its requests to the stand-ins recognisable.
    fn input(self, tag: &str, steps_url: &str) -> Value {
        match self {
            Kind::Steps => {
                json!({"base_url": format!("{steps_url}/{tag}"), "count": 3, "journal": "journal"})
            }
            Kind::Llm => {
                json!({"use_context": true, "context": {"messages": []}, "system": "hello world",
                                "prompt": format!("say {tag}"), "tools": [], "max_iterations": 3})
            }
            Kind::Agent => {
                json!({"use_context": false, "context": {"messages": []}, "provider": "lmstudio",
                                  "model": "fake-model", "system": "hello world", "prompt": format!("say {tag}"),
                                  "tools": [], "max_iterations": 3, "temperature": 0.0, "seed": 7})
            }
        }
    }
}

/// An acknowledged run: its id, kind, tag and the kills that happened while it was not finished.
#[derive(Clone, Debug)]
struct Acked {
    id: String,
    kind: Kind,
    tag: String,
}

/// The run's ledger, every page of it.
async fn full_ledger(s: &Server, run: &str) -> Vec<Value> {
    let (st, page) = s
        .get(&format!("/api/gateway/runs/{run}/ledger?limit=1000"))
        .await;
    assert_eq!(st, 200, "{page}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        page["next_after"],
        items.len(),
        "ledger of {run} is one page"
    );
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_points_of_a_plugin_load() {
    let steps = StepServer::start_with_delay(Duration::from_millis(40));
    let tmp = tempfile::tempdir().expect("tmp");
    let llm = FakeLlm::start();
    write_steps_bundle(tmp.path(), &steps.url);
    for b in ["basic-llm-test@0.0.0.flow", "basic-agent@0.0.1.flow"] {
        std::fs::copy(
            shared().join("fixtures/bundles/seed").join(b),
            tmp.path().join("flows").join(b),
        )
        .expect("copy bundle");
    }
    let base_url = llm.base_url();
    let env = [
        ("ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1"),
        ("LMSTUDIO_BASE_URL", base_url.as_str()),
        ("OPENAI_BASE_URL", base_url.as_str()),
        ("OPENAI_API_KEY", "sk-fake"),
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "fake-model"),
        ("ABSTRACTGATEWAY_TOOL_MODE", "local"),
        // One step per turn keeps runs mid-graph when the process dies.
        ("ABSTRACTGATEWAY_TICK_MAX_STEPS", "1"),
    ];
    let mut s = Server::start_in(tmp.path(), &env).await;

    // Reference runs, uninterrupted: the output and ledger every run of the same kind must end with.
    let mut reference: HashMap<Kind, (Value, Vec<String>, usize)> = HashMap::new();
    for kind in KINDS {
        let tag = format!("ref{kind:?}").to_lowercase();
        let id = s
            .start_run(kind.bundle(), kind.input(&tag, &steps.url))
            .await;
        let done = s.wait_done(&id, DEADLINE.as_secs()).await;
        assert_eq!(done["status"], "completed", "{kind:?}: {done}");
        let ledger = full_ledger(&s, &id).await;
        let calls = match kind {
            Kind::Steps => 3,
            _ => llm.completions_mentioning(&tag),
        };
        assert!(calls >= 1, "{kind:?} made no call");
        reference.insert(
            kind,
            (normalized(&done["output"], &tag), shape(&ledger), calls),
        );
    }
    assert!(
        reference[&Kind::Steps]
            .1
            .iter()
            .any(|r| r.ends_with("kv.set"))
            && reference[&Kind::Steps]
                .1
                .iter()
                .any(|r| r.contains("artifacts."))
            && reference[&Kind::Steps]
                .1
                .iter()
                .any(|r| r.contains("http.")),
        "the steps node records every kind of host call: {:?}",
        reference[&Kind::Steps].1
    );

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut kills_seen_by: HashMap<String, usize> = HashMap::new();
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    let mut next_rand = move |n: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % n
    };
    for kill in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (base, acked, stop, steps_url) = (
                s.base.clone(),
                acked.clone(),
                stop.clone(),
                steps.url.clone(),
            );
            clients.push(tokio::spawn(async move {
                let http = binary::client();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let kind = KINDS[(c + i) % KINDS.len()];
                    let tag = format!("k{kill}c{c}n{i}x");
                    i += 1;
                    let r = http
                        .post(format!("{base}/api/gateway/runs/start"))
                        .bearer_auth(binary::TOKEN)
                        .json(&json!({"bundle_id": kind.bundle(), "input_data": kind.input(&tag, &steps_url)}))
                        .send()
                        .await;
                    let Ok(r) = r else { break };
                    let status = r.status().as_u16();
                    if (400..500).contains(&status) {
                        panic!("{kind:?} start refused: {}", r.text().await.unwrap_or_default());
                    }
                    if status != 200 {
                        break;
                    }
                    let Ok(v) = r.json::<Value>().await else {
                        break;
                    };
                    let id = v["run_id"].as_str().unwrap_or_default().to_string();
                    acked.lock().await.push(Acked { id, kind, tag });
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }));
        }
        // Kill at a random point between 0.3 and 2 s into the load.
        tokio::time::sleep(Duration::from_millis(300 + next_rand(1700))).await;
        let flying = s.runs_in_flight().await;
        s.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            tokio::time::timeout(DEADLINE, c)
                .await
                .expect("client ends")
                .expect("client ran");
        }
        assert!(
            flying > 0,
            "kill {kill} found no run in flight ({} acknowledged so far)",
            acked.lock().await.len()
        );
        println!("kill {kill}: {flying} runs in flight");
        // Every run acknowledged so far and not known finished may have been interrupted by this kill.
        for a in acked.lock().await.iter() {
            *kills_seen_by.entry(a.id.clone()).or_default() += 1;
        }
        s.restart().await;
    }

    let runs = acked.lock().await.clone();
    assert!(
        runs.len() >= 3 * KILLS,
        "load too small: {} runs",
        runs.len()
    );
    let mut per_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    // Requests made again after a kill (the kill landed inside them, or before their record was durable).
    let mut repeated = 0;
    for a in &runs {
        let done = s.wait_done(&a.id, DEADLINE.as_secs()).await;
        assert_eq!(done["status"], "completed", "{a:?}: {done}");
        let (out, ledger_shape, calls) = &reference[&a.kind];
        assert_eq!(&normalized(&done["output"], &a.tag), out, "{a:?} output");
        let ledger = full_ledger(&s, &a.id).await;
        assert_eq!(&shape(&ledger), ledger_shape, "{a:?} ledger");
        // Record for record the uninterrupted run's ledger (above) and no record twice: the ledger's cursor
        // counts exactly these records.
        let distinct: std::collections::HashSet<(String, String)> = ledger
            .iter()
            .map(|r| (r["step_id"].to_string(), r["status"].to_string()))
            .collect();
        assert_eq!(distinct.len(), ledger.len(), "duplicate record in {a:?}");
        assert!(
            ledger
                .iter()
                .all(|r| r.as_object().is_some_and(|o| o.len() == 16)),
            "torn record in {a:?}"
        );
        // Each request reached the stand-in once, plus at most once again per kill the run lived through.
        let kills = kills_seen_by.get(&a.id).copied().unwrap_or(0);
        match a.kind {
            Kind::Steps => {
                let by_path = steps.hits_by_path();
                for i in 0..3 {
                    let hits = by_path
                        .get(&format!("/{}/step/{i}", a.tag))
                        .copied()
                        .unwrap_or(0);
                    assert!(
                        (1..=1 + kills).contains(&hits),
                        "{a:?} step {i}: {hits} requests for one recorded call ({kills} kills)"
                    );
                    repeated += hits - 1;
                }
                let artifact = done["output"]["artifact_id"].as_str().expect("artifact id");
                let r = s
                    .client
                    .get(s.url(&format!(
                        "/api/gateway/runs/{}/artifacts/{artifact}/content",
                        a.id
                    )))
                    .bearer_auth(binary::TOKEN)
                    .send()
                    .await
                    .expect("artifact");
                assert_eq!(r.status(), 200);
                let body: Value = r.json().await.expect("artifact json");
                assert_eq!(
                    body,
                    json!(["step-0", "step-1", "step-2"]),
                    "{a:?} artifact"
                );
            }
            Kind::Llm | Kind::Agent => {
                let hits = llm.completions_mentioning(&a.tag);
                assert!(
                    (*calls..=*calls + kills).contains(&hits),
                    "{a:?}: {hits} model requests for {calls} recorded calls ({kills} kills)"
                );
                repeated += hits - calls;
            }
        }
        *per_kind.entry(a.kind).or_default() += 1;
    }
    println!(
        "checked {} runs: {per_kind:?}; {repeated} requests repeated after {KILLS} kills",
        runs.len()
    );
}

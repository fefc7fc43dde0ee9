//! Cluster mode with real processes: three nats-server 2.15 in cluster mode with JetStream R3, two API nodes
//! (`serve --no-runner --store nats://…`) and two runners (`runner --store nats://…`) of the real binary, each with
//! its own data dir; plugin nodes call an HTTP stand-in and the LLM stand-in; runs are spread over the cluster's
//! four shards, and the two runners step two each; schedules made on any API node fire on whichever runner holds
//! their shard. Clients talk to either API node and cannot tell them apart; a runner that is killed, paused past
//! its lease or loses a nats-server costs nothing acknowledged and repeats no recorded call: its shards move to
//! the other runner.
//!
//! nats-server comes from `ABSTRACTGATEWAY_TEST_NATS` (`scripts/install-nats.sh` installs it; `scripts/test.sh`
//! sets it). Without a server of version 2.12 or later these tests fail: they never skip.

mod binary;
mod in_process;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use std::time::{Duration, Instant};

use abstractgateway_testkit::nats::NatsCluster;
use binary::{Server, copy_bundles, open_stream, record};
use in_process::fake_llm::FakeLlm;
use in_process::loads::{normalized, shape, write_steps_bundle};
use in_process::shared;
use in_process::standin::StepServer;
use serde_json::{Value, json};

/// Runs in the mixed load of the equality test.
const MIXED_RUNS: usize = 1000;
/// Concurrent clients of a load.
const CLIENTS: usize = 16;
/// The shards of every test cluster (the default count).
const SHARDS: u32 = 4;

/// One gateway process of the cluster and its name.
struct Node {
    server: Server,
}

/// Three nats-servers and the gateway processes on them.
struct Deployment {
    nats: NatsCluster,
    root: tempfile::TempDir,
    apis: Vec<Node>,
    runners: Vec<Node>,
}

impl Deployment {
    /// `apis` API nodes and `runners` runner candidates, started in that order; `lease` in seconds; the HTTP
    /// bundle calls `origin`; with `llm`, LLM nodes talk to that stand-in.
    async fn start(
        apis: usize,
        runners: usize,
        lease: &str,
        origin: Option<&str>,
        llm: Option<&str>,
    ) -> Deployment {
        let nats = NatsCluster::start(3);
        let root = tempfile::tempdir().expect("tmp");
        let mut d = Deployment {
            nats,
            root,
            apis: Vec::new(),
            runners: Vec::new(),
        };
        for i in 0..apis {
            let node = d.node(&format!("api-{i}"), lease, origin, llm, false).await;
            d.apis.push(node);
        }
        for i in 0..runners {
            let node = d.node(&format!("run-{i}"), lease, origin, llm, true).await;
            d.runners.push(node);
        }
        d
    }

    async fn node(
        &self,
        id: &str,
        lease: &str,
        origin: Option<&str>,
        llm: Option<&str>,
        runner: bool,
    ) -> Node {
        let dir = self.root.path().join(id);
        prepare(&dir, origin, llm.is_some());
        let url = self.nats.url();
        let mut env = vec![
            ("ABSTRACTGATEWAY_STORE", url.as_str()),
            ("ABSTRACTGATEWAY_NODE_ID", id),
            ("ABSTRACTGATEWAY_CLUSTER_LEASE_S", lease),
        ];
        env.extend(load_env(llm));
        let args: &[&str] = if runner {
            &["runner", "--host", "127.0.0.1", "--port", "0"]
        } else {
            &["serve", "--host", "127.0.0.1", "--port", "0", "--no-runner"]
        };
        Node {
            server: Server::start_cmd(&dir, &env, args).await,
        }
    }

    /// The shards runner `i` steps now, from what it printed (none once it was killed).
    fn shards_of(&self, i: usize) -> BTreeSet<u32> {
        let s = &self.runners[i].server;
        let mut held = BTreeSet::new();
        if s.child.is_none() {
            return held;
        }
        let lines = s.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        let number = |rest: &str| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<u32>().ok())
        };
        for line in lines {
            if let Some(n) = line
                .strip_prefix("abstractgateway runner active on shard ")
                .and_then(number)
            {
                held.insert(n);
            } else if let Some(n) = line
                .strip_prefix("abstractgateway runner handed shard ")
                .and_then(number)
            {
                held.remove(&n);
            }
        }
        held
    }

    /// Waits until `done` holds of the shards each runner steps (60 s at most); returns them.
    async fn shards_until(
        &self,
        what: &str,
        done: impl Fn(&[BTreeSet<u32>]) -> bool,
    ) -> Vec<BTreeSet<u32>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let held: Vec<BTreeSet<u32>> =
                (0..self.runners.len()).map(|i| self.shards_of(i)).collect();
            if done(&held) {
                return held;
            }
            assert!(Instant::now() < deadline, "{what}: {held:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every shard is stepped, each by one runner.
    async fn settled(&self) -> Vec<BTreeSet<u32>> {
        self.shards_until("not every shard found a runner", |held| {
            let all: Vec<u32> = held.iter().flatten().copied().collect();
            all.len() == SHARDS as usize
                && all.iter().collect::<BTreeSet<_>>().len() == SHARDS as usize
        })
        .await
    }

    /// Waits until the shards are spread over every live runner (each steps SHARDS / runners of them).
    async fn balanced(&self) -> Vec<BTreeSet<u32>> {
        let live = (0..self.runners.len())
            .filter(|i| self.runners[*i].server.child.is_some())
            .count();
        let share = (SHARDS as usize).div_ceil(live);
        self.shards_until("the runners did not share the shards", |held| {
            let all: BTreeSet<u32> = held.iter().flatten().copied().collect();
            all.len() == SHARDS as usize
                && held
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.runners[*i].server.child.is_some())
                    .all(|(_, h)| h.len() == share)
        })
        .await
    }

    /// Waits until runner `i` steps every shard; returns how long that took.
    async fn all_shards_on(&self, i: usize) -> Duration {
        let started = Instant::now();
        self.shards_until("the shards did not move", |held| {
            held[i].len() == SHARDS as usize
        })
        .await;
        started.elapsed()
    }

    fn api(&self, n: usize) -> &Server {
        &self.apis[n % self.apis.len()].server
    }
}

impl Drop for Deployment {
    /// A failing test shows what every process of the deployment said last: a stall in a cluster is
    /// otherwise invisible once the temp dirs are gone (which node stopped stepping, which lease did not move).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (kind, nodes) in [("api", &self.apis), ("runner", &self.runners)] {
            for (i, node) in nodes.iter().enumerate() {
                eprintln!(
                    "---- {kind} {i}: last lines of its stderr ----\n{}",
                    node.server.stderr_tail(80)
                );
            }
        }
        for i in 0..self.nats.len() {
            let log = std::fs::read_to_string(self.nats.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "---- nats-server {i}: last lines of its log ----\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
    }
}

/// The shard of a root run.
fn shard_of(run_id: &str) -> u32 {
    abstractgateway::runner::shard::of_root(run_id, SHARDS)
}

/// A node's directory: the fixture bundles, the HTTP bundle calling `origin`, the seed's LLM bundles.
fn prepare(dir: &Path, origin: Option<&str>, llm: bool) {
    copy_bundles(&dir.join("flows"));
    if let Some(origin) = origin {
        write_steps_bundle(dir, origin);
    }
    if llm {
        std::fs::copy(
            shared().join("fixtures/bundles/seed/basic-llm-test@0.0.0.flow"),
            dir.join("flows/basic-llm-test@0.0.0.flow"),
        )
        .expect("copy bundle");
    }
}

/// The environment of a node (embedded or not) for the stand-ins: loopback HTTP allowed, the LLM stand-in.
fn load_env(llm: Option<&str>) -> Vec<(&str, &str)> {
    let mut env = vec![("ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")];
    if let Some(url) = llm {
        env.extend([
            ("LMSTUDIO_BASE_URL", url),
            ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
            ("ABSTRACTGATEWAY_MODEL", "fake-model"),
        ]);
    }
    env
}

/// What a client starts, and what it does to finish it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Echo,
    Chain,
    Ask,
    Event,
    Delay,
    /// The plugin node calling the HTTP stand-in.
    Steps,
    /// `llm_call` against the LLM stand-in.
    Llm,
}

const KINDS: [Kind; 7] = [
    Kind::Echo,
    Kind::Chain,
    Kind::Ask,
    Kind::Event,
    Kind::Delay,
    Kind::Steps,
    Kind::Llm,
];

impl Kind {
    fn bundle(self) -> &'static str {
        match self {
            Kind::Echo => "echo-upper",
            Kind::Chain => "chain",
            Kind::Ask => "ask-user",
            Kind::Event => "wait-event",
            Kind::Delay => "delay",
            Kind::Steps => "steps",
            Kind::Llm => "basic-llm-test",
        }
    }

    fn input(self, n: usize, steps_url: &str) -> Value {
        match self {
            Kind::Echo | Kind::Chain | Kind::Ask => json!({"name": format!("n{n}")}),
            Kind::Event => json!({}),
            Kind::Delay => json!({"seconds": 1}),
            Kind::Steps => {
                json!({"base_url": format!("{steps_url}/m{n}"), "count": 2, "journal": "journal"})
            }
            Kind::Llm => {
                json!({"use_context": true, "context": {"messages": []}, "system": "hello world",
                                "prompt": format!("say n{n}"), "tools": [], "max_iterations": 3})
            }
        }
    }
}

/// Starts one run of `kind` on API node `start`, drives it to the end through API node `other`, and returns its
/// output and ledger shape as `other` serves them.
async fn drive(
    start: &Server,
    other: &Server,
    kind: Kind,
    n: usize,
    steps_url: &str,
) -> (String, Value, Vec<String>) {
    let run = start
        .start_run(kind.bundle(), kind.input(n, steps_url))
        .await;
    match kind {
        Kind::Ask => {
            wait_for(other, &run, |v| v["status"] == "waiting").await;
            let (st, v) = other
                .command(
                    &format!("answer-{run}"),
                    &run,
                    "resume",
                    json!({"payload": {"response": format!("c{n}")}}),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        }
        Kind::Event => {
            // Another client's global event may have finished it already.
            let now = wait_for(other, &run, |v| {
                v["status"] == "waiting" || v["status"] == "completed"
            })
            .await;
            // A global event from the other API node: it reaches every waiter, whoever started it.
            if now["status"] == "waiting" {
                let (st, v) = other
                    .command(
                        &format!("go-{run}"),
                        "any",
                        "emit_event",
                        json!({"name": "go", "scope": "global", "payload": {"text": "hi"}}),
                    )
                    .await;
                assert_eq!(st, 200, "{v}");
            }
        }
        _ => {}
    }
    let done = wait_for(other, &run, |v| {
        matches!(
            v["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    })
    .await;
    assert_eq!(done["status"], "completed", "{kind:?} {done}");
    let ledger = other.ledger(&run).await;
    assert_contiguous(&run, &ledger);
    (run, done["output"].clone(), shape(&ledger))
}

/// Polls a run on `s` until `pred` holds (120 s at most: loads share two cores with seven processes).
async fn wait_for(s: &Server, run: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (st, v) = s.get(&format!("/api/gateway/runs/{run}")).await;
        if st == 200 && pred(&v) {
            return v;
        }
        assert!(
            st == 200 || st == 404,
            "run {run}: unexpected answer {st} {v}"
        );
        assert!(Instant::now() < deadline, "run {run} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A ledger served by the API: whole records (the seed's 16 keys), none twice (a step is recorded at most once
/// per status).
fn assert_contiguous(run: &str, ledger: &[Value]) {
    let mut steps = HashSet::new();
    for rec in ledger {
        assert!(
            rec.as_object().is_some_and(|o| o.len() == 16),
            "run {run}: torn record {rec}"
        );
        let key = (rec["step_id"].to_string(), rec["status"].to_string());
        assert!(steps.insert(key.clone()), "run {run}: record {key:?} twice");
    }
}

/// The output without ids and clocks.
fn normalized_output(output: &Value) -> String {
    normalized(output, "\u{0}").to_string()
}

/// The mixed load: `MIXED_RUNS` runs from `CLIENTS` clients, each started on one API node and finished and read
/// on the other; returns every run's kind, normalized output and ledger shape by its number.
async fn mixed_load(
    a: &Server,
    b: &Server,
    steps_url: &str,
) -> BTreeMap<usize, (Kind, String, Vec<String>)> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let next = next.clone();
        let (a, b) = (
            Server::attach(&a.base, &a.dir),
            Server::attach(&b.base, &b.dir),
        );
        let steps_url = steps_url.to_string();
        clients.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= MIXED_RUNS {
                    return out;
                }
                let kind = KINDS[n % KINDS.len()];
                let (start, other) = if n.is_multiple_of(2) {
                    (&a, &b)
                } else {
                    (&b, &a)
                };
                let (_, output, shape) = drive(start, other, kind, n, &steps_url).await;
                out.push((n, (kind, normalized_output(&output), shape)));
            }
        }));
    }
    let mut results = BTreeMap::new();
    for c in clients {
        results.extend(c.await.expect("client"));
    }
    assert_eq!(results.len(), MIXED_RUNS);
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_mixed_runs_through_two_api_nodes_end_as_on_the_embedded_store() {
    let steps = StepServer::start();
    let llm = FakeLlm::start();
    let llm_url = llm.base_url();
    // The reference: the same load on the embedded store.
    let tmp = tempfile::tempdir().expect("tmp");
    prepare(tmp.path(), Some(&steps.url), true);
    let embedded = Server::start_cmd(tmp.path(), &load_env(Some(&llm_url)), &[]).await;
    let started = Instant::now();
    let expected = mixed_load(&embedded, &embedded, &steps.url).await;
    eprintln!(
        "{MIXED_RUNS} mixed runs on the embedded store in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(embedded);

    let d = Deployment::start(2, 2, "10", Some(&steps.url), Some(&llm_url)).await;
    d.settled().await;
    let started = Instant::now();
    let results = mixed_load(d.api(0), d.api(1), &steps.url).await;
    eprintln!(
        "{MIXED_RUNS} mixed runs through 2 API nodes and 2 runners in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (n, got) in &results {
        assert_eq!(got, &expected[n], "run {n}");
    }
    // Both API nodes list the same runs, newest first (500 is the largest page).
    let (_, a) = d.api(0).get("/api/gateway/runs?limit=500").await;
    let (_, b) = d.api(1).get("/api/gateway/runs?limit=500").await;
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["run_id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a).len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sse_client_follows_a_run_across_api_nodes_with_last_event_id() {
    let d = Deployment::start(2, 1, "10", None, None).await;
    d.settled().await;
    let (a, b) = (d.api(0), d.api(1));
    let run = a.start_run("ask-user", json!({"name": "Ada"})).await;
    // On A: every record up to the question.
    let mut seen = Vec::new();
    let mut stream = open_stream(a, &run, "", None).await;
    loop {
        let ev = stream
            .next_event(Duration::from_secs(60))
            .await
            .expect("event");
        assert_eq!(ev.event.as_deref(), Some("step"), "{ev:?}");
        let id: u64 = ev.id.as_deref().expect("id").parse().expect("numeric id");
        seen.push(id);
        if record(&ev)["status"] == "waiting" {
            break;
        }
    }
    drop(stream);
    let last = *seen.last().expect("records");
    // Answered through B, then followed on B from where A's stream stopped.
    let (st, v) = b
        .command(
            "answer",
            &run,
            "resume",
            json!({"payload": {"response": "blue"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let mut stream = open_stream(b, &run, "", Some(&last.to_string())).await;
    loop {
        let ev = stream
            .next_event(Duration::from_secs(60))
            .await
            .expect("event");
        match ev.event.as_deref() {
            Some("step") => seen.push(ev.id.as_deref().expect("id").parse().expect("id")),
            Some("done") => break,
            other => panic!("unexpected event {other:?}"),
        }
    }
    let want: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, want, "no gap and no repeat across the reconnect");
    assert_eq!(b.ledger(&run).await.len(), seen.len());
    // A stream token from A opens the stream on B: both sign with the cluster's key.
    let (st, tok) = a
        .post(&format!("/api/gateway/runs/{run}/stream_token"), json!({}))
        .await;
    assert_eq!(st, 200, "{tok}");
    let token = tok["token"].as_str().expect("token");
    let r = b
        .client
        .get(b.url(&format!(
            "/api/gateway/runs/{run}/ledger/stream?stream_token={token}"
        )))
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), 200);
}

/// Starts `count` runs of the HTTP-calling bundle through the API nodes; returns their ids.
async fn start_steps(d: &Deployment, steps_url: &str, count: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let run = d
            .api(n)
            .start_run(
                "steps",
                json!({"base_url": format!("{steps_url}/{tag}{n}"), "count": 3, "journal": "journal"}),
            )
            .await;
        ids.push(run);
    }
    ids
}

/// The artifact a steps run stored (its bodies, as JSON) is listed and served by every API node, whichever runner
/// stored it.
async fn assert_artifact_everywhere(d: &Deployment, run: &str, output: &Value) {
    let id = output["artifact_id"].as_str().expect("an artifact id");
    let want = serde_json::to_vec(&output["bodies"]).expect("bodies");
    for api in &d.apis {
        let s = &api.server;
        let (st, list) = s.get(&format!("/api/gateway/runs/{run}/artifacts")).await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(list["items"][0]["artifact_id"], id, "{list}");
        assert_eq!(
            list["items"][0]["tags"]["filename"], "bodies.json",
            "{list}"
        );
        let r = s
            .client
            .get(s.url(&format!("/api/gateway/runs/{run}/artifacts/{id}/content")))
            .bearer_auth(binary::TOKEN)
            .send()
            .await
            .expect("artifact content");
        assert_eq!(r.status(), 200, "{run}/{id}");
        assert_eq!(r.bytes().await.expect("bytes").as_ref(), want.as_slice());
    }
}

/// Every run completed with three calls in its ledger, and the stand-in saw each call at most `extra` more times
/// than the ledger holds (a call in flight when its runner died may be made again: its record was not durable).
async fn check_steps(d: &Deployment, steps: &StepServer, runs: &[String], extra: usize) {
    let mut repeated = 0;
    for run in runs {
        let done = wait_for(d.api(1), run, |v| {
            matches!(
                v["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
        .await;
        assert_eq!(done["status"], "completed", "{run}: {done}");
        assert_artifact_everywhere(d, run, &done["output"]).await;
        let ledger = d.api(0).ledger(run).await;
        assert_contiguous(run, &ledger);
        let calls = ledger
            .iter()
            .filter(|r| {
                r["effect"]["payload"]["interface"] == "http"
                    && r["effect"]["payload"]["function"] == "fetch"
            })
            .count();
        assert_eq!(calls, 3, "{run}: {:?}", shape(&ledger));
    }
    let hits = steps.hits_by_path();
    for n in hits.values() {
        repeated += n.saturating_sub(1);
    }
    eprintln!(
        "{} runs: {} calls made, {repeated} of them repeats",
        runs.len(),
        hits.values().sum::<usize>()
    );
    assert!(
        repeated <= extra,
        "{repeated} calls were repeated; at most {extra} may be (one per run in flight at the failure)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_runner_hands_its_runs_over_within_the_bound_and_repeats_nothing_recorded() {
    // Slow calls, so that runs are in the middle of their calls when the runner dies.
    let steps = StepServer::start_with_delay(Duration::from_millis(400));
    let mut d = Deployment::start(2, 2, "10", Some(&steps.url), None).await;
    // Both runners step half of the shards: the kill takes away runs in flight on two of them.
    let held = d.balanced().await;
    eprintln!("shards before the kill: {held:?}");
    let (victim, survivor) = (1, 0);
    let runs = start_steps(&d, &steps.url, 40, "k").await;
    let in_flight = d.apis[0].server.runs_in_flight().await;
    eprintln!("runs in flight at the kill: {in_flight}");
    assert!(in_flight > 0, "the kill must hit runs in flight");
    let killed_at = Instant::now();
    d.runners[victim].server.kill();
    d.all_shards_on(survivor).await;
    let takeover = killed_at.elapsed();
    eprintln!("takeover after SIGKILL: {:.2} s", takeover.as_secs_f64());
    assert!(
        takeover <= Duration::from_secs(15),
        "takeover took {takeover:?}, over the documented 15 s"
    );
    let later = start_steps(&d, &steps.url, 10, "after").await;
    let all: Vec<String> = runs.into_iter().chain(later).collect();
    check_steps(&d, &steps, &all, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_paused_past_its_lease_cannot_write_after_the_takeover() {
    let steps = StepServer::start_with_delay(Duration::from_millis(400));
    let mut d = Deployment::start(2, 2, "3", Some(&steps.url), None).await;
    d.balanced().await;
    let (owner, successor) = (1, 0);
    let runs = start_steps(&d, &steps.url, 20, "p").await;
    let in_flight = d.apis[0].server.runs_in_flight().await;
    assert!(in_flight > 0, "the pause must hit runs in flight");
    let pid = d.runners[owner].server.child.as_ref().expect("child").id();
    signal(pid, "STOP");
    // The stopped runner's shards move to the other one while it sleeps.
    d.all_shards_on(successor).await;
    signal(pid, "CONT");
    // The woken runner finds its lease gone (or its next write refused) and exits instead of writing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let child = d.runners[owner].server.child.as_mut().expect("child");
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "the stale runner kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !status.success(),
        "the stale runner must stop with an error: {status:?}"
    );
    assert!(
        d.runners[owner].server.said("lost the lease") || d.runners[owner].server.said("fenced"),
        "{:?}",
        d.runners[owner]
            .server
            .stderr
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    );
    d.runners[owner].server.child = None;
    check_steps(&d, &steps, &runs, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_one_nats_server_does_not_stop_the_load() {
    let steps = StepServer::start_with_delay(Duration::from_millis(100));
    // Two runners: if a failover outlasts the lease on a loaded machine, the runner that cannot renew stops and the
    // other takes over; the load goes on either way.
    let mut d = Deployment::start(2, 2, "10", Some(&steps.url), None).await;
    d.settled().await;
    let first = start_steps(&d, &steps.url, 20, "a").await;
    assert!(d.apis[0].server.runs_in_flight().await > 0);
    d.nats.kill(0);
    // Starts and commands keep being acknowledged with one server of three gone (R3 keeps a quorum).
    let second = start_steps(&d, &steps.url, 20, "b").await;
    let all: Vec<String> = first.into_iter().chain(second).collect();
    // A call is repeated only if a runner stopped while the call was in flight (at most one per run).
    check_steps(&d, &steps, &all, all.len()).await;
    d.nats.start_again(0);
    let third = start_steps(&d, &steps.url, 5, "c").await;
    check_steps(&d, &steps, &third, all.len()).await;
}

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bundle_uploaded_on_one_api_node_is_served_and_run_by_every_node() {
    let steps = StepServer::start();
    let d = Deployment::start(2, 1, "10", None, None).await;
    d.settled().await;
    // A bundle no node has: packed here, uploaded through A.
    let src = tempfile::tempdir().expect("tmp");
    write_steps_bundle(src.path(), &steps.url);
    let bytes = std::fs::read(src.path().join("flows/steps.flow")).expect("bundle");
    let (st, v) = d.api(0).upload("steps.flow", &bytes, None).await;
    assert_eq!(st, 200, "{v}");
    assert!(v.get("cluster_sync_error").is_none(), "{v}");
    // B lists it and starts it; the runner (which never saw the upload) runs it.
    let listed = |v: &Value| {
        v["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["bundle_id"] == "steps"))
    };
    // Installing means compiling the bundle's component on B: allow for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, v) = d.api(1).get("/api/gateway/bundles").await;
        if listed(&v) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never listed the upload: {v}\nB said:\n{}",
            d.api(1).stderr_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let (st, v) = d
            .api(1)
            .post(
                "/api/gateway/runs/start",
                json!({"bundle_id": "steps", "input_data": {"base_url": format!("{}/u", steps.url), "count": 1, "journal": "journal"}}),
            )
            .await;
        if st == 200 {
            break v["run_id"].as_str().expect("run id").to_string();
        }
        assert!(
            Instant::now() < deadline,
            "B cannot start the upload: {st} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let done = wait_for(d.api(0), &run, |v| {
        matches!(
            v["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    })
    .await;
    // Loopback is refused to the component unless allowed: completing or failing on that rule both prove the
    // runner loaded the bundle; a missing bundle would fail with "not found".
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        done["status"] == "completed" || error.contains("access-denied"),
        "{done}"
    );
    // An attachment uploaded through A (an API node, not the runner) is served by B.
    let (st, up) = d
        .api(0)
        .upload_attachment(
            &[("session_id", "cluster-s")],
            Some(("note.txt", "text/plain", b"from node A")),
        )
        .await;
    assert_eq!(st, 200, "{up}");
    let id = up["attachment"]["$artifact"].as_str().expect("artifact id");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = d
            .api(1)
            .client
            .get(d.api(1).url(&format!(
                "/api/gateway/runs/session_memory_cluster-s/artifacts/{id}/content"
            )))
            .bearer_auth(binary::TOKEN)
            .send()
            .await
            .expect("content");
        if r.status() == 200 {
            assert_eq!(r.bytes().await.expect("bytes").as_ref(), b"from node A");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never served A's attachment: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Deleted through B: gone from A too.
    let r = d
        .api(1)
        .client
        .delete(d.api(1).url("/api/gateway/bundles/steps"))
        .bearer_auth(binary::TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = d.api(0).get("/api/gateway/bundles").await;
        if !listed(&v) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still lists the deleted bundle: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_stopped_cleanly_hands_over_without_waiting_for_its_lease() {
    let mut d = Deployment::start(1, 2, "10", None, None).await;
    let held = d.balanced().await;
    let (owner, other) = (1, 0);
    // Readiness: every node is connected; a runner says which shards it steps, an API node none.
    let (st, v) = d.api(0).get("/api/ready").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["ready"], &v["store"], &v["shard_count"], &v["shards"]),
        (&json!(true), &json!("cluster"), &json!(SHARDS), &json!([]))
    );
    let (st, v) = d.runners[owner].server.get("/api/ready").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["shards"], json!(held[owner]), "{v}");
    // Waiting runs until one is on a shard of the runner that stops.
    let waiting = loop {
        let run = d.api(0).start_run("ask-user", json!({"name": "T"})).await;
        wait_for(d.api(0), &run, |v| v["status"] == "waiting").await;
        if d.shards_of(owner).contains(&shard_of(&run)) {
            break run;
        }
    };
    let pid = d.runners[owner].server.child.as_ref().expect("child").id();
    let stopped_at = Instant::now();
    signal(pid, "TERM");
    d.all_shards_on(other).await;
    let handover = stopped_at.elapsed();
    eprintln!("handover after SIGTERM: {:.2} s", handover.as_secs_f64());
    // Released, not expired: well under the 10 s lease.
    assert!(handover < Duration::from_secs(5), "{handover:?}");
    let status = d.runners[owner]
        .server
        .child
        .as_mut()
        .expect("child")
        .wait()
        .expect("wait");
    assert!(status.success(), "a clean stop exits 0: {status:?}");
    d.runners[owner].server.child = None;
    // The successor has the waiting run and finishes it.
    let (st, v) = d
        .api(0)
        .command(
            "answer-t",
            &waiting,
            "resume",
            json!({"payload": {"response": "red"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let done = wait_for(d.api(0), &waiting, |v| v["status"] == "completed").await;
    assert!(done["output"].to_string().contains("red"), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unusable_cluster_url_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    for (url, says) in [
        ("bogus://127.0.0.1:4222", "nats://"),
        ("nats://", "empty"),
        ("nats://user:secret@127.0.0.1:4222", "server"),
        ("nats://127.0.0.1:4222/path", "server"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
            .args(["serve", "--port", "0", "--store", url])
            .env("ABSTRACTGATEWAY_DATA_DIR", dir.path().join("data"))
            .env("ABSTRACTGATEWAY_FLOWS_DIR", dir.path().join("flows"))
            .env("ABSTRACTGATEWAY_AUTH_TOKEN", binary::TOKEN)
            .output()
            .expect("binary runs");
        assert_eq!(out.status.code(), Some(2), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error:") && err.contains(says),
            "{url}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_quorum_writes_answer_503_and_reads_go_on() {
    let mut d = Deployment::start(1, 1, "10", None, None).await;
    d.settled().await;
    let run = d.api(0).start_run("echo-upper", json!({"name": "Q"})).await;
    wait_for(d.api(0), &run, |v| v["status"] == "completed").await;
    d.nats.kill(1);
    d.nats.kill(2);
    // Reads answer from the node's replica.
    let (st, v) = d.api(0).get(&format!("/api/gateway/runs/{run}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(d.api(0).ledger(&run).await.len(), 2);
    // A write cannot be made durable: refused with 503 (retry later or elsewhere), never acknowledged.
    let (st, v) = d
        .api(0)
        .post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "echo-upper", "input_data": {"name": "lost"}}),
        )
        .await;
    assert_eq!(st, 503, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("unavailable")),
        "{v}"
    );
    let (st, v) = d
        .api(0)
        .command("no-quorum", &run, "pause", json!({}))
        .await;
    assert_eq!(st, 503, "{v}");
}

/// The runs a schedule started so far (children of `parent`), as one API node lists them.
async fn scheduled_children(s: &Server, parent: &str) -> Vec<Value> {
    let (st, v) = s.get("/api/gateway/runs?limit=500").await;
    assert_eq!(st, 200, "{v}");
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["parent_run_id"] == parent)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a schedule has started `n` children (60 s at most); returns how many it has.
async fn fired(s: &Server, parent: &str, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let kids = scheduled_children(s, parent).await;
        if kids.len() >= n {
            return kids.len();
        }
        assert!(
            Instant::now() < deadline,
            "only {} children of {n}",
            kids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedules_made_on_any_api_node_run_on_whichever_runner_holds_the_lease() {
    let mut d = Deployment::start(2, 2, "5", None, None).await;
    d.balanced().await;
    // A counted schedule made through A: its generated flow is served by B, and it runs its three children.
    let (st, v) = d
        .api(0)
        .post(
            "/api/gateway/runs/schedule",
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "input_data": {"name": "tick"},
                   "interval": "0.2s", "repeat_count": 3}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let counted = v["run_id"].as_str().expect("run id").to_string();
    let done = wait_for(d.api(1), &counted, |v| v["status"] == "completed").await;
    assert_eq!(done["output"], json!({"executions": 3.0, "success": true}));
    let wf = done["workflow_id"].as_str().unwrap_or_default().to_string();
    let (st, f) = d
        .api(1)
        .get(&format!("/api/gateway/workflows/{wf}/flow"))
        .await;
    assert_eq!((st, &f["source"]), (200, &json!("dynamic")), "{f}");
    let kids = scheduled_children(d.api(1), &counted).await;
    assert_eq!(kids.len(), 3, "{kids:?}");
    for k in &kids {
        assert_eq!(k["output"]["response"], "HELLO,  TICK", "{k}");
    }

    // A recurrent schedule made through B keeps firing after its runner is killed, on the successor.
    let (st, v) = d
        .api(1)
        .post(
            "/api/gateway/runs/schedule",
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "input_data": {"name": "again"},
                   "interval": "0.5s"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let recurrent = v["run_id"].as_str().expect("run id").to_string();
    let before = fired(d.api(0), &recurrent, 2).await;
    // Killed: the runner stepping the schedule's shard; the other takes it over and the schedule goes on.
    let owner = usize::from(!d.shards_of(0).contains(&shard_of(&recurrent)));
    d.runners[owner].server.kill();
    d.all_shards_on(1 - owner).await;
    fired(d.api(0), &recurrent, before + 2).await;
    // Cancelled through A: it stops firing.
    let (st, v) = d
        .api(0)
        .command(
            &format!("stop-{recurrent}"),
            &recurrent,
            "cancel",
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    wait_for(d.api(1), &recurrent, |v| v["status"] == "cancelled").await;
    let settled = scheduled_children(d.api(0), &recurrent).await.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kids = scheduled_children(d.api(1), &recurrent).await;
    assert_eq!(kids.len(), settled, "a cancelled schedule fired again");
    // Every child ran once to the end; none is left behind by the takeover.
    for k in &kids {
        let run = k["run_id"].as_str().expect("run id");
        let v = wait_for(d.api(1), run, |v| {
            matches!(v["status"].as_str(), Some("completed" | "cancelled"))
        })
        .await;
        if v["status"] == "completed" {
            assert_eq!(v["output"]["response"], "HELLO,  AGAIN", "{v}");
        }
        assert_contiguous(run, &d.api(0).ledger(run).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joins_servers_that_require_mutual_tls_and_a_password() {
    let certs = tempfile::tempdir().expect("tmp");
    let files = abstractgateway_testkit::nats::TlsFiles::make(certs.path());
    let nats = NatsCluster::start_with(
        1,
        &format!(
            "{}authorization {{\n  users = [ {{ user: \"ag\", password: \"pw-right-9\" }} ]\n}}\n",
            files.server_block(true)
        ),
    );
    let url = nats.url().replacen("nats://", "tls://", 1);
    let root = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = (
        files.ca.to_string_lossy().into_owned(),
        files.client_cert.to_string_lossy().into_owned(),
        files.client_key.to_string_lossy().into_owned(),
    );
    let env = |password: &'static str| {
        vec![
            ("ABSTRACTGATEWAY_STORE", url.clone()),
            ("ABSTRACTGATEWAY_NATS_USER", "ag".to_string()),
            ("ABSTRACTGATEWAY_NATS_PASSWORD", password.to_string()),
            ("ABSTRACTGATEWAY_NATS_TLS_CA", ca.clone()),
            ("ABSTRACTGATEWAY_NATS_TLS_CERT", cert.clone()),
            ("ABSTRACTGATEWAY_NATS_TLS_KEY", key.clone()),
        ]
    };
    // The right secrets: one node (API and runner) serves and runs.
    let dir = root.path().join("node");
    prepare(&dir, None, false);
    let good = env("pw-right-9");
    let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_cmd(
        &dir,
        &pairs,
        &["serve", "--host", "127.0.0.1", "--port", "0"],
    )
    .await;
    let run = server.start_run("echo-upper", json!({"name": "tls"})).await;
    let done = server.wait_done(&run, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    // A wrong password, or a half setting, is refused at start with a clear message and no secret shown.
    let wrong = env("pw-wrong-8");
    let mut half = env("pw-right-9");
    half.retain(|(k, _)| *k != "ABSTRACTGATEWAY_NATS_TLS_KEY");
    for (vars, says) in [
        (wrong, "cannot join"),
        (half, "ABSTRACTGATEWAY_NATS_TLS_KEY"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
            .args(["serve", "--port", "0"])
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .env("ABSTRACTGATEWAY_DATA_DIR", root.path().join("refused/data"))
            .env(
                "ABSTRACTGATEWAY_FLOWS_DIR",
                root.path().join("refused/flows"),
            )
            .env("ABSTRACTGATEWAY_AUTH_TOKEN", binary::TOKEN)
            .output()
            .expect("binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("error:") && err.contains(says), "{err}");
        assert!(
            !err.contains("pw-wrong-8") && !err.contains("pw-right-9"),
            "{err}"
        );
    }
}

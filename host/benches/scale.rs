//! Costs that should not grow with what the store holds, measured at growing sizes (a table per operation):
//!
//! - reading one page (200 records) at the start, middle and end of a ledger of 10k, 100k and 1M records;
//! - starting a run (durable create) with 1k, 10k and 100k runs in the store;
//! - the newest page of runs (`GET /runs?limit=50`'s store read), unfiltered, for one session and for one
//!   workflow, with 1k, 10k and 100k runs;
//! - recovery after a restart with 100, 1k and 10k waiting runs: opening the store and the gateway until the runner
//!   has recovered them and completed a new run (per waiting run, it should stay flat).
//!
//! ```text
//! cargo bench -p abstractgateway --bench scale            # AG_SCALE_QUICK=1: the two smaller sizes only
//! ```
//! Each figure is the median of several repetitions on a store in a temp dir of the target dir's disk.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abstractgateway::bundle::{Limits, read_bundle};
use abstractgateway::engine::NodeRegistry;
use abstractgateway::run::{Obj, RunState, RunStatus};
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use abstractgateway::store::{Batch, RunQuery, Store};
use serde_json::Value;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn quick() -> bool {
    std::env::var_os("AG_SCALE_QUICK").is_some()
}

fn sizes(all: &[u64]) -> Vec<u64> {
    if quick() {
        all[..all.len() - 1].to_vec()
    } else {
        all.to_vec()
    }
}

fn tmp() -> tempfile::TempDir {
    let root = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&root).expect("tmp root");
    tempfile::tempdir_in(root).expect("tmp")
}

/// The waiting ask-user run the seed wrote (its shape is a real run's), as a template.
fn template() -> RunState {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed-data-dir/run_73463121-9ff0-4530-8aaa-926f2922c479.json");
    let mut r: RunState =
        serde_json::from_slice(&std::fs::read(path).expect("fixture run")).expect("a run");
    r.workspace = None;
    r.ledger_len = 0;
    r
}

fn run_like(t: &RunState, i: u64, status: RunStatus, session: &str) -> RunState {
    let mut r = t.clone();
    r.run_id = format!("00000000-0000-4000-8000-{i:012}");
    r.session_id = Some(session.to_string());
    r.created_at = format!("2026-01-01T00:00:00.{i:06}+00:00");
    r.updated_at = r.created_at.clone();
    if status.is_terminal() {
        r.status = status;
        r.waiting = None;
        r.current_node = None;
    }
    r
}

fn ledger_pages() {
    println!("\n### Page of 200 records in a ledger of N records (ms, median of 20)\n");
    println!("| records | build (s) | first page | middle page | last page |");
    println!("|---|---|---|---|---|");
    for n in sizes(&[10_000, 100_000, 1_000_000]) {
        let dir = tmp();
        let store = Store::open(dir.path()).expect("store");
        let (_, build) = timed(|| {
            let mut seq = 1;
            while seq <= n {
                let mut b = Batch::new();
                let end = (seq + 20_000).min(n + 1);
                for s in seq..end {
                    b.append_ledger_json(
                        "big",
                        s,
                        format!(
                            r#"{{"run_id":"big","seq":{s},"node_id":"n","status":"completed"}}"#
                        )
                        .into_bytes(),
                    );
                }
                store.commit(b).expect("commit");
                seq = end;
            }
        });
        let page = |after: u64| {
            median(
                (0..20)
                    .map(|_| {
                        let (p, d) = timed(|| store.ledger_after("big", after, 200).expect("page"));
                        assert!(!p.is_empty());
                        d
                    })
                    .collect(),
            )
        };
        println!(
            "| {n} | {:.1} | {} | {} | {} |",
            build.as_secs_f64(),
            ms(page(0)),
            ms(page(n / 2)),
            ms(page(n - 200))
        );
    }
}

fn fill_runs(store: &Store, n: u64, t: &RunState) {
    let mut i = 0;
    while i < n {
        let mut b = Batch::new();
        for j in i..(i + 5_000).min(n) {
            // Every 1,000th run is in the session (and of the workflow) a filtered listing asks for.
            let rare = j % 1_000 == 0;
            let mut r = run_like(
                t,
                j,
                RunStatus::Completed,
                if rare { "wanted" } else { "other" },
            );
            if rare {
                r.workflow_id = "rare@1.0.0:main".into();
            }
            b.put_run(&r);
        }
        store.commit(b).expect("commit");
        i += 5_000;
    }
}

fn echo_gateway(dir: &Path, store: Store) -> Arc<Gateway> {
    let bundles = ["echo-upper@1.0.0.flow", "ask-user@1.0.0.flow"]
        .iter()
        .map(|f| {
            let p = abstractgateway_testkit::repo_root().join("bundles").join(f);
            Arc::new(read_bundle(&p, &Limits::default()).expect("bundle"))
        })
        .collect();
    let (flows, _, problems) = catalog::build(bundles, &NodeRegistry::new());
    assert!(problems.is_empty());
    let opts = GatewayOptions {
        data_dir: dir.to_path_buf(),
        runner: true,
        max_steps: 10_000,
        executor: None,
    };
    Gateway::open_on(opts, flows, store).expect("gateway")
}

fn wait_done(gw: &Gateway, run_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if gw
            .store()
            .get_run(run_id)
            .expect("run")
            .is_some_and(|r| r.status.is_terminal())
        {
            return;
        }
        assert!(Instant::now() < deadline, "run {run_id} did not finish");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn echo(name: &str) -> StartRequest {
    let mut input = Obj::new();
    input.insert("name".into(), Value::from(name));
    StartRequest {
        workflow_id: "echo-upper@1.0.0:echo".into(),
        input,
        session_id: None,
        bundle_sha256: None,
        idempotency_key: None,
    }
}

fn runs_in_store() {
    let t = template();
    println!("\n### With N runs in the store (ms, median)\n");
    println!(
        "| runs | start a run (durable create, of 30) | newest 50 runs (of 20) | newest 50 of one session (of 20) \
         | newest 50 of one workflow (of 20) |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes(&[1_000, 10_000, 100_000]) {
        let dir = tmp();
        let store = Store::open(dir.path()).expect("store");
        fill_runs(&store, n, &t);
        let list = |q: RunQuery| {
            median(
                (0..20)
                    .map(|_| timed(|| store.list_runs(&q).expect("list")).1)
                    .collect(),
            )
        };
        let newest = list(RunQuery::default());
        let session = list(RunQuery {
            session_id: Some("wanted".into()),
            ..Default::default()
        });
        let workflow = list(RunQuery {
            workflow_id: Some("rare@1.0.0:main".into()),
            ..Default::default()
        });
        let gw = echo_gateway(dir.path(), store.clone());
        gw.start_runner().expect("runner");
        let starts = (0..30)
            .map(|i| {
                let (r, d) = timed(|| gw.start_run(echo(&format!("n{i}"))).expect("start"));
                wait_done(&gw, &r.run_id);
                d
            })
            .collect();
        println!(
            "| {n} | {} | {} | {} | {} |",
            ms(median(starts)),
            ms(newest),
            ms(session),
            ms(workflow)
        );
    }
}

fn recovery() {
    let t = template();
    println!("\n### Restart with N waiting runs (median of 3)\n");
    println!("| waiting runs | open → runner served a new run (ms) | per waiting run (µs) |");
    println!("|---|---|---|");
    for n in sizes(&[100, 1_000, 10_000]) {
        let dir = tmp();
        {
            let store = Store::open(dir.path()).expect("store");
            let mut i = 0;
            while i < n {
                let mut b = Batch::new();
                for j in i..(i + 2_000).min(n) {
                    b.put_run(&run_like(&t, j, RunStatus::Waiting, "s"));
                }
                store.commit(b).expect("commit");
                i += 2_000;
            }
        }
        let times = (0..3)
            .map(|k| {
                let (_, d) = timed(|| {
                    let store = Store::open(dir.path()).expect("store");
                    let gw = echo_gateway(dir.path(), store);
                    gw.start_runner().expect("runner");
                    let r = gw.start_run(echo(&format!("r{k}"))).expect("start");
                    wait_done(&gw, &r.run_id);
                    drop(gw);
                });
                // The store's lock is released when its last handle (the runner thread's) is gone.
                std::thread::sleep(Duration::from_millis(200));
                d
            })
            .collect();
        let m = median(times);
        println!(
            "| {n} | {} | {:.1} |",
            ms(m),
            m.as_secs_f64() * 1e6 / n as f64
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    ledger_pages();
    runs_in_store();
    recovery();
}

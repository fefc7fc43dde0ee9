//! Engine benchmarks on the real fixture bundles: pure engine time, one run start → completed
//! through the runner and store, and throughput of many runs started at once. An fsync on the
//! same disk is measured alongside so the durable latencies can be read against it.
//!
//! Run: `cargo bench -p abstractgateway --bench engine`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abstractgateway::bundle::{Bundle, Limits, read_bundle};
use abstractgateway::engine::{ChildStartError, Host, NodeRegistry, advance};
use abstractgateway::flow::CompiledFlow;
use abstractgateway::run::new_run_state;
use abstractgateway::run::{Obj, RunState, RunStatus, StepRecord};
use abstractgateway::runner::{Gateway, GatewayOptions, StartRequest, catalog};
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use serde_json::{Value, json};

/// The seed's steps per tick; the runner yields a run to the others after this many.
const MAX_STEPS: usize = 100;
/// Runs started per throughput iteration.
const BURST_RUNS: usize = 500;
/// Threads starting them.
const BURST_THREADS: usize = 8;

/// A fixture bundle, its one flow compiled, and the input that drives it to completion.
struct Fixture {
    bundle: Arc<Bundle>,
    flow_id: &'static str,
    input: Value,
}

impl Fixture {
    fn load(file: &str, flow_id: &'static str, input: Value) -> Fixture {
        let path = bundles_dir().join(file);
        let bundle = read_bundle(&path, &Limits::default())
            .unwrap_or_else(|e| panic!("bundle {} does not load: {e}", path.display()));
        Fixture {
            bundle: Arc::new(bundle),
            flow_id,
            input,
        }
    }

    fn workflow_id(&self) -> String {
        self.bundle.workflow_id(self.flow_id)
    }

    fn input(&self) -> Obj {
        self.input.as_object().cloned().unwrap_or_default()
    }

    fn compiled(&self) -> CompiledFlow {
        let flows =
            catalog::compile_bundle(&self.bundle, &NodeRegistry::new()).expect("fixture compiles");
        let wf = self.workflow_id();
        flows
            .into_iter()
            .find(|f| f.workflow_id == wf)
            .unwrap_or_else(|| panic!("bundle has no flow {wf}"))
    }
}

/// The repository's `bundles/` directory (the same `.flow` files the seed was observed running).
fn bundles_dir() -> PathBuf {
    abstractgateway_testkit::repo_root().join("bundles")
}

fn echo_upper() -> Fixture {
    Fixture::load("echo-upper@1.0.0.flow", "echo", json!({"name": "Alice"}))
}

fn chain() -> Fixture {
    Fixture::load("chain@1.0.0.flow", "chain", json!({"name": "c"}))
}

/// The fixtures start no children and emit to nobody: a host that refuses children is enough.
struct NoHost;

impl Host for NoHost {
    fn start_child(
        &mut self,
        _: &RunState,
        workflow_id: &str,
        _: Obj,
        _: Option<String>,
    ) -> Result<String, ChildStartError> {
        Err(ChildStartError::NotFound(format!(
            "no child runs in this bench ({workflow_id})"
        )))
    }
    fn emit_event(&mut self, _: &RunState, _: &[String], _: &Value) -> Vec<String> {
        Vec::new()
    }
}

/// One run from a fresh RunState to its end, in memory; returns the records it wrote.
fn run_in_memory(flow: &CompiledFlow, workflow_id: &str, input: &Obj) -> Vec<StepRecord> {
    let mut run = new_run_state(workflow_id, &flow.entry, input.clone(), None, None, None);
    let mut records = Vec::new();
    while run.status == RunStatus::Running {
        advance(&mut run, flow, &mut NoHost, MAX_STEPS, &mut records);
    }
    assert_eq!(
        run.status,
        RunStatus::Completed,
        "run ended {:?}: {:?}",
        run.status,
        run.error
    );
    records
}

fn engine_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    for fx in [echo_upper(), chain()] {
        let flow = fx.compiled();
        let wf = fx.workflow_id();
        let input = fx.input();
        let records = run_in_memory(&flow, &wf, &input);
        assert_eq!(
            records.len(),
            2,
            "both fixtures write a completion and its event record"
        );
        group.bench_function(format!("advance_to_completion/{}", fx.flow_id), |b| {
            b.iter(|| run_in_memory(&flow, &wf, &input))
        });
    }
    group.finish();
}

fn open_gateway(dir: &Path, fx: &Fixture) -> Arc<Gateway> {
    let (flows, _, problems) = catalog::build(vec![fx.bundle.clone()], &NodeRegistry::new());
    assert!(problems.is_empty(), "bundle does not load: {problems:?}");
    let opts = GatewayOptions {
        data_dir: dir.to_path_buf(),
        runner: true,
        max_steps: MAX_STEPS,
        executor: None,
    };
    Gateway::open(opts, flows).expect("gateway opens")
}

fn start(gw: &Gateway, fx: &Fixture) -> String {
    let req = StartRequest {
        workflow_id: fx.workflow_id(),
        input: fx.input(),
        ..Default::default()
    };
    gw.start_run(req).expect("run starts").run_id
}

/// Waits until the run's durable status is terminal, and checks it completed.
async fn until_terminal(gw: &Gateway, run_id: &str) {
    let mut rx = gw.store().watch_run(run_id);
    let head = *rx
        .wait_for(|h| h.status.is_some_and(RunStatus::is_terminal))
        .await
        .expect("store alive");
    assert_eq!(head.status, Some(RunStatus::Completed), "run {run_id}");
}

fn durable_group(c: &mut Criterion) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group("gateway");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group
}

fn start_to_completed(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = durable_group(c);
    for fx in [echo_upper(), chain()] {
        let dir = tempfile::tempdir().expect("temp dir");
        let gw = open_gateway(dir.path(), &fx);
        group.bench_function(format!("start_to_completed/{}", fx.flow_id), |b| {
            b.iter(|| {
                let run_id = start(&gw, &fx);
                rt.block_on(until_terminal(&gw, &run_id));
            })
        });
        gw.shutdown();
    }
    group.finish();
}

fn burst_throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let fx = echo_upper();
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = open_gateway(dir.path(), &fx);
    let mut group = durable_group(c);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BURST_RUNS as u64));
    group.bench_function(
        format!("burst_{BURST_RUNS}_runs_{BURST_THREADS}_threads/echo"),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    let run_ids: Vec<String> = std::thread::scope(|s| {
                        let workers: Vec<_> = (0..BURST_THREADS)
                            .map(|t| {
                                let (gw, fx) = (&gw, &fx);
                                let share = (t..BURST_RUNS).step_by(BURST_THREADS).count();
                                s.spawn(move || {
                                    (0..share).map(|_| start(gw, fx)).collect::<Vec<_>>()
                                })
                            })
                            .collect();
                        workers
                            .into_iter()
                            .flat_map(|w| w.join().expect("starter thread"))
                            .collect()
                    });
                    assert_eq!(run_ids.len(), BURST_RUNS);
                    rt.block_on(async {
                        for id in &run_ids {
                            until_terminal(&gw, id).await;
                        }
                    });
                    total += t0.elapsed();
                }
                total
            })
        },
    );
    group.finish();
    gw.shutdown();
}

/// Appends 4 KiB and waits for it to reach the disk, as a journal commit does.
fn append_and_sync(file: &mut File, block: &[u8]) {
    file.write_all(block).expect("write");
    file.sync_data().expect("sync_data");
}

fn fsync(c: &mut Criterion) {
    // Same file system as the gateway data dirs above (both are temp dirs).
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("journal"))
        .expect("open journal");
    let block = vec![0x5a_u8; 4096];
    let mut group = c.benchmark_group("disk");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function("append_4k_sync_data", |b| {
        b.iter(|| append_and_sync(&mut file, &block))
    });
    group.finish();
}

criterion_group!(
    benches,
    fsync,
    engine_only,
    start_to_completed,
    burst_throughput
);
criterion_main!(benches);

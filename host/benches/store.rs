//! Store benchmarks: durable append throughput (group commit vs. one committer) and ledger paging by cursor.
//!
//! Run: `cargo bench -p abstractgateway --bench store`.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use abstractgateway::run::StepRecord;
use abstractgateway::store::{Batch, Store};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const THREADS: usize = 8;
const BIG_LEDGER: u64 = 100_000;
const PAGE: usize = 200;

/// A record shaped like the seed's completion record (about 450 bytes of JSON).
fn record(run_id: &str, seq: u64) -> StepRecord {
    StepRecord {
        run_id: run_id.to_string(),
        step_id: format!("0839c3b5-5d5e-4f0e-9a7e-{seq:012}"),
        node_id: "end".to_string(),
        status: "completed".to_string(),
        effect: None,
        result: Some(
            json!({"completed": true, "output": {"response": "HELLO,  ALICE", "length": 13, "success": true}}),
        ),
        error: None,
        started_at: "2026-11-28T12:05:16.075990+00:00".to_string(),
        ended_at: Some("2026-11-28T12:05:16.076009+00:00".to_string()),
        actor_id: Some("gateway".to_string()),
        session_id: Some(run_id.to_string()),
        attempt: 1,
        idempotency_key: Some("system:completion:end".to_string()),
        prev_hash: None,
        record_hash: None,
        signature: None,
    }
}

fn one_record(run_id: &str, seq: u64) -> Batch {
    let mut b = Batch::new();
    b.append_ledger(run_id, seq, &record(run_id, seq));
    b
}

fn durable_appends(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let mut group = c.benchmark_group("durable_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));

    // Each thread appends to its own run; its next seq carries over between criterion's rounds.
    let next: Vec<AtomicU64> = (0..THREADS).map(|_| AtomicU64::new(1)).collect();
    group.throughput(Throughput::Elements(THREADS as u64));
    group.bench_function("group_commit_8_threads_1_record_each", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for (t, next) in next.iter().enumerate() {
                    let store = store.clone();
                    s.spawn(move || {
                        let run_id = format!("thread-{t}");
                        for _ in 0..iters {
                            let seq = next.fetch_add(1, Ordering::Relaxed);
                            store.commit(one_record(&run_id, seq)).expect("commit");
                        }
                    });
                }
            });
            start.elapsed()
        })
    });

    let mut seq = 0;
    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential_1_thread_1_record", |b| {
        b.iter(|| {
            seq += 1;
            store.commit(one_record("sequential", seq)).expect("commit");
        })
    });

    // The floor of the commit above, in the same run and on the same file system: the same bytes (the record,
    // plus its key and the journal's framing) appended to a plain file and `sync_data`ed.
    let bytes = serde_json::to_vec(&record("sequential", 1))
        .expect("encode")
        .len()
        + 64;
    let block = vec![0x5a_u8; bytes];
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw-journal"))
        .expect("open raw journal");
    group.bench_function("raw_append_same_bytes_sync_data", |b| {
        b.iter(|| {
            file.write_all(&block).expect("write");
            file.sync_data().expect("sync_data");
        })
    });
    group.finish();
}

fn ledger_reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    for chunk in 0..BIG_LEDGER / 1000 {
        let mut b = Batch::new();
        for seq in chunk * 1000 + 1..=(chunk + 1) * 1000 {
            b.append_ledger("big", seq, &record("big", seq));
        }
        store.commit(b).expect("fill ledger");
    }
    assert_eq!(store.ledger_len("big"), BIG_LEDGER);

    let mut group = c.benchmark_group("ledger_read");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BIG_LEDGER));
    group.bench_function("page_through_100k_by_200", |b| {
        b.iter(|| {
            let mut cursor = 0;
            loop {
                let page = store.ledger_after("big", cursor, PAGE).expect("page");
                let Some(last) = page.last() else { break };
                cursor = last.seq;
                black_box(&page);
            }
            assert_eq!(cursor, BIG_LEDGER);
        })
    });
    group.throughput(Throughput::Elements(PAGE as u64));
    group.bench_function("single_page_at_99800", |b| {
        b.iter(|| {
            let page = store
                .ledger_after("big", black_box(99_800), PAGE)
                .expect("page");
            assert_eq!(page.len(), PAGE);
            black_box(page)
        })
    });
    group.finish();
}

criterion_group!(benches, durable_appends, ledger_reads);
criterion_main!(benches);

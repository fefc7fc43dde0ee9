//! Ledger pages, heads and watchers.

use std::time::Duration;

use super::backend::Backend;
use crate::run::RunStatus;
use crate::store::testutil::{run_state, step};
use crate::store::{Batch, RunHead, Store};

fn fill(store: &Store, run_id: &str, n: u64) {
    let run = run_state(run_id, 1, RunStatus::Running);
    let mut b = Batch::new();
    for seq in 1..=n {
        b.append_ledger(run_id, seq, &step(&run, seq));
    }
    store.commit(b).unwrap();
}

pub fn pages_follow_the_cursor_and_stop_at_the_head(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    fill(&store, "a", 450);
    // Same byte prefix as "a": must never leak into a's pages.
    fill(&store, "ab", 7);

    let mut cursor = 0;
    let mut sizes = Vec::new();
    loop {
        let page = store.ledger_after("a", cursor, 200).unwrap();
        if page.is_empty() {
            break;
        }
        for (i, e) in page.iter().enumerate() {
            assert_eq!(e.seq, cursor + 1 + i as u64);
            let rec: serde_json::Value = serde_json::from_str(e.json.get()).unwrap();
            assert_eq!(rec["run_id"], "a");
            assert_eq!(rec["step_id"], format!("step-{}", e.seq));
        }
        sizes.push(page.len());
        cursor = page.last().unwrap().seq;
    }
    assert_eq!(sizes, [200, 200, 50]);
    assert_eq!(cursor, 450);

    let tail = store.ledger_after("a", 447, 200).unwrap();
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [448, 449, 450]
    );
    let mid = store.ledger_after("a", 100, 3).unwrap();
    assert_eq!(
        mid.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [101, 102, 103]
    );
    assert!(store.ledger_after("a", 450, 200).unwrap().is_empty());
    assert!(store.ledger_after("a", 999, 200).unwrap().is_empty());
    assert!(store.ledger_after("a", 0, 0).unwrap().is_empty());
    assert!(
        store
            .ledger_after("a", u64::MAX - 1, usize::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.ledger_after("a", 440, usize::MAX).unwrap().len(), 10);
    assert_eq!(store.ledger_after("ab", 0, 200).unwrap().len(), 7);

    assert!(store.ledger_after("unknown", 0, 200).unwrap().is_empty());
    assert_eq!(store.ledger_len("unknown"), 0);
    assert!(store.ledger_after("", 0, 200).unwrap().is_empty());
    assert_eq!(store.ledger_len("a"), 450);
}

pub fn records_keep_the_seed_key_order(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    fill(&store, "r", 1);
    let e = &store.ledger_after("r", 0, 1).unwrap()[0];
    let rec: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(e.json.get()).unwrap();
    let keys: Vec<&str> = rec.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "run_id",
            "step_id",
            "node_id",
            "status",
            "effect",
            "result",
            "error",
            "started_at",
            "ended_at",
            "actor_id",
            "session_id",
            "attempt",
            "idempotency_key",
            "prev_hash",
            "record_hash",
            "signature"
        ]
    );
}

pub fn heads_are_recovered_from_disk_after_reopen(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = backend.open(dir.path());
        fill(&store, "r", 12);
        let mut b = Batch::new();
        b.put_run(&run_state("r", 1, RunStatus::Completed));
        store.commit(b).unwrap();
    }
    let store = backend.open(dir.path());
    assert_eq!(store.ledger_len("r"), 12);
    assert_eq!(
        *store.watch_run("r").borrow(),
        RunHead {
            ledger_len: 12,
            status: Some(RunStatus::Completed)
        }
    );
    // Appends continue from the recovered head.
    let run = run_state("r", 1, RunStatus::Completed);
    let mut b = Batch::new();
    b.append_ledger("r", 13, &step(&run, 13));
    store.commit(b).unwrap();
    assert_eq!(store.ledger_len("r"), 13);
}

pub async fn watch_run_wakes_after_commit(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let mut rx = store.watch_run("r");
    assert_eq!(*rx.borrow_and_update(), RunHead::default());
    // A second watcher of the same run shares the channel.
    let mut rx2 = store.watch_run("r");

    let run = run_state("r", 1, RunStatus::Running);
    let writer = store.clone();
    let waiter = tokio::spawn(async move {
        rx.changed().await.unwrap();
        *rx.borrow_and_update()
    });
    let mut b = Batch::new();
    b.put_run(&run);
    b.append_ledger("r", 1, &step(&run, 1));
    b.append_ledger("r", 2, &step(&run, 2));
    tokio::task::spawn_blocking(move || writer.commit(b))
        .await
        .unwrap()
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen,
        RunHead {
            ledger_len: 2,
            status: Some(RunStatus::Running)
        }
    );

    // A status change alone also wakes watchers.
    rx2.borrow_and_update();
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    let mut b = Batch::new();
    b.put_run(&done);
    store.commit_async(b).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), rx2.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rx2.borrow().status, Some(RunStatus::Completed));
    assert_eq!(rx2.borrow().ledger_len, 2);
}

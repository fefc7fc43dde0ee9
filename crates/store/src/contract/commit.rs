//! Atomic, ordered, durable commits.

use std::time::Duration;

use super::backend::Backend;
use crate::run::RunStatus;
use crate::store::testutil::{run_state, step};
use crate::store::{Batch, StoreError};

pub fn batch_lands_atomically_and_survives_reopen(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = run_state("r1", 1, RunStatus::Running);
    {
        let store = backend.open(dir.path());
        let mut b = Batch::new();
        run.ledger_len = 3;
        b.put_run(&run);
        for seq in 1..=3 {
            b.append_ledger("r1", seq, &step(&run, seq));
        }
        store.commit(b).unwrap();

        // A batch whose ledger append does not continue the ledger is refused as a whole: its run state too.
        let mut bad = Batch::new();
        let mut changed = run.clone();
        changed.status = RunStatus::Completed;
        changed.ledger_len = 5;
        bad.put_run(&changed);
        bad.append_ledger("r1", 4, &step(&run, 4));
        bad.append_ledger("r1", 6, &step(&run, 6));
        let err = store.commit(bad).unwrap_err();
        assert_eq!(
            err,
            StoreError::LedgerSeq {
                run_id: "r1".into(),
                expected: 5,
                got: 6
            }
        );
        assert_eq!(store.get_run("r1").unwrap(), Some(run.clone()));
        assert_eq!(store.ledger_len("r1"), 3);

        // The refused batch did not disturb the next one.
        let mut next = Batch::new();
        next.append_ledger("r1", 4, &step(&run, 4));
        store.commit(next).unwrap();
    }
    let store = backend.open(dir.path());
    assert_eq!(store.get_run("r1").unwrap(), Some(run.clone()));
    assert_eq!(store.ledger_len("r1"), 4);
    let entries = store.ledger_after("r1", 0, 10).unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(
        entries[3].json.get(),
        serde_json::to_string(&step(&run, 4)).unwrap()
    );
}

pub fn duplicate_ledger_seq_is_refused_instead_of_overwriting(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let run = run_state("r1", 1, RunStatus::Running);
    let mut b = Batch::new();
    b.append_ledger("r1", 1, &step(&run, 1));
    store.commit(b).unwrap();
    let mut again = Batch::new();
    again.append_ledger("r1", 1, &step(&run, 99));
    assert!(matches!(
        store.commit(again),
        Err(StoreError::LedgerSeq {
            expected: 2,
            got: 1,
            ..
        })
    ));
    let first = store.ledger_after("r1", 0, 1).unwrap();
    assert!(first[0].json.get().contains("\"step-1\""));
}

pub fn invalid_ids_refuse_the_whole_batch(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let mut b = Batch::new();
    b.put_meta("kept-out", b"x");
    b.put_run(&run_state("bad\0id", 1, RunStatus::Running));
    assert!(!b.is_empty());
    assert!(matches!(store.commit(b), Err(StoreError::Invalid(_))));
    assert_eq!(store.get_meta("kept-out").unwrap(), None);
}

pub fn meta_round_trip_and_empty_batch(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    assert!(Batch::new().is_empty());
    store.commit(Batch::new()).unwrap();
    let mut b = Batch::new();
    b.put_meta("idem:abc", b"{\"run_id\":\"r1\"}");
    store.commit(b).unwrap();
    assert_eq!(
        store.get_meta("idem:abc").unwrap().as_deref(),
        Some(&b"{\"run_id\":\"r1\"}"[..])
    );
    assert_eq!(store.get_meta("idem:other").unwrap(), None);
    assert_eq!(store.get_meta("").unwrap(), None);
}

pub fn submitted_batches_apply_in_submission_order(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let run = run_state("r1", 1, RunStatus::Running);
    // Each batch is only valid after all earlier ones (seq = previous length + 1), so any reordering would fail.
    let tickets: Vec<_> = (1..=300)
        .map(|seq| {
            let mut b = Batch::new();
            b.append_ledger("r1", seq, &step(&run, seq));
            store.submit(b)
        })
        .collect();
    for t in tickets {
        t.wait().unwrap();
    }
    assert_eq!(store.ledger_len("r1"), 300);
}

// The embedded committer folds a group into one fsync, a replica's into one log entry; what both must do is land
// every concurrent commit.
pub fn concurrent_committers_share_fsyncs_and_all_land(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    std::thread::scope(|s| {
        for t in 0..8 {
            let store = store.clone();
            s.spawn(move || {
                let run = run_state(&format!("run-{t}"), t, RunStatus::Running);
                for seq in 1..=40 {
                    let mut b = Batch::new();
                    b.append_ledger(&run.run_id, seq, &step(&run, seq));
                    store.commit(b).unwrap();
                }
            });
        }
    });
    for t in 0..8 {
        assert_eq!(store.ledger_len(&format!("run-{t}")), 40);
    }
}

pub async fn commit_async_does_not_need_a_blocking_thread(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let run = run_state("r1", 1, RunStatus::Waiting);
    let mut b = Batch::new();
    b.put_run(&run);
    b.append_ledger("r1", 1, &step(&run, 1));
    tokio::time::timeout(Duration::from_secs(60), store.commit_async(b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.get_run("r1").unwrap().map(|r| r.status),
        Some(RunStatus::Waiting)
    );
    assert_eq!(store.ledger_len("r1"), 1);
}

pub fn a_guarded_batch_is_dropped_whole_once_its_key_exists(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let guarded = |value: &[u8]| {
        let mut b = Batch::new();
        b.put_meta("idem/k", value);
        b.put_meta(&format!("other/{}", value[0]), value);
        b.only_if_absent("idem/k");
        b
    };
    // Two in one group (submitted back to back) and one after: only the first lands.
    let first = store.submit(guarded(b"1"));
    let second = store.submit(guarded(b"2"));
    first.wait().unwrap();
    second.wait().unwrap();
    store.commit(guarded(b"3")).unwrap();
    assert_eq!(store.get_meta("idem/k").unwrap().unwrap(), b"1");
    assert_eq!(store.meta_keys("other/", 10).unwrap(), vec!["other/49"]);
}

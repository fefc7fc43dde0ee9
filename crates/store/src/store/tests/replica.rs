//! Replicas of one log (the in-process log with JetStream's rules): what one node writes, every node reads, in one
//! order; intake from any node; owner writes fenced after a takeover; restarts resume after the applied position.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::run::RunStatus;
use crate::store::replica::memlog::{MemLog, MemLogWriter, MemTailer};
use crate::store::replica::{EntryKind, IntakeEvent};
use crate::store::testutil::{command, run_state, step};
use crate::store::{Appended, Batch, Store, StoreError};

struct Node {
    store: Store,
    writer: Arc<MemLogWriter>,
    _tailer: MemTailer,
}

fn node(log: &Arc<MemLog>, dir: &std::path::Path) -> Node {
    let writer = log.writer();
    let store = Store::open_replica(dir, writer.clone()).unwrap();
    let tailer = log.tail(store.applier().unwrap());
    Node {
        store,
        writer,
        _tailer: tailer,
    }
}

/// Waits (10 s at most) until the listener has heard an event `want` matches: the applier wakes `wait_applied`
/// callers before it calls the listener, so the event may arrive just after the position is reached.
fn heard(seen: &Mutex<Vec<IntakeEvent>>, what: &str, want: impl Fn(&IntakeEvent) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.lock().iter().any(&want) {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn what_one_node_writes_every_node_reads() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = MemLog::new();
    let a = node(&log, da.path());
    let b = node(&log, db.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    a.store
        .set_intake_listener(Arc::new(move |_: &Store, e: IntakeEvent| {
            sink.lock().push(e)
        }));
    a.writer.take_over();

    // An API node (b) creates a run: intake, no ownership needed.
    let run = run_state("r1", 1, RunStatus::Running);
    let mut batch = Batch::new();
    batch.put_run(&run);
    batch.set_intake();
    b.store.commit(batch).unwrap();
    assert!(b.store.get_run("r1").unwrap().is_some(), "read your writes");
    a.store.wait_applied(log.len()).unwrap();
    assert!(a.store.get_run("r1").unwrap().is_some());
    heard(
        &seen,
        "the owner hears of the new run",
        |e| matches!(e, IntakeEvent::Runs(r) if r[0].run_id == "r1"),
    );

    // The owner (a) steps it: ledger and state, read back on b.
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    let mut batch = Batch::new();
    batch.append_ledger("r1", 1, &step(&run, 1));
    batch.put_run(&done);
    a.store.commit(batch).unwrap();
    b.store.wait_applied(log.len()).unwrap();
    assert_eq!(b.store.ledger_len("r1"), 1);
    assert_eq!(
        b.store.get_run("r1").unwrap().unwrap().status,
        RunStatus::Completed
    );
    assert!(b.store.active_runs().unwrap().0.is_empty());

    // Commands from either node: the log position is the seq, and the id decides duplicates across nodes.
    let first = b.store.append_command(command("c1", "r1")).unwrap();
    assert!(!first.duplicate);
    let again = a.store.append_command(command("c1", "r1")).unwrap();
    assert_eq!(
        again,
        Appended {
            seq: first.seq,
            duplicate: true
        }
    );
    a.store.wait_applied(log.len()).unwrap();
    assert_eq!(a.store.commands_after(0, 10).unwrap().len(), 1);
    heard(&seen, "the owner hears of the command", |e| {
        matches!(e, IntakeEvent::Command)
    });
    // A ledger append that does not continue is refused before it reaches the log.
    let before = log.len();
    let mut gap = Batch::new();
    gap.append_ledger("r1", 3, &step(&run, 3));
    assert!(matches!(
        a.store.commit(gap),
        Err(StoreError::LedgerSeq { expected: 2, .. })
    ));
    assert_eq!(log.len(), before);
}

#[test]
fn a_guarded_batch_lands_once_whichever_node_sends_it() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = MemLog::new();
    let a = node(&log, da.path());
    let b = node(&log, db.path());
    for (n, (store, id)) in [(&a.store, "ra"), (&b.store, "rb")].into_iter().enumerate() {
        let mut batch = Batch::new();
        batch.put_run(&run_state(id, n as u32, RunStatus::Running));
        batch.put_meta("idem/k", id.as_bytes());
        batch.only_if_absent("idem/k");
        store.commit(batch).unwrap();
    }
    a.store.wait_applied(log.len()).unwrap();
    for store in [&a.store, &b.store] {
        assert_eq!(store.get_meta("idem/k").unwrap().unwrap(), b"ra");
        assert!(store.get_run("ra").unwrap().is_some());
        assert!(
            store.get_run("rb").unwrap().is_none(),
            "the loser's run is dropped whole"
        );
    }
}

#[test]
fn after_a_takeover_the_old_owner_cannot_write() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = MemLog::new();
    let a = node(&log, da.path());
    let b = node(&log, db.path());
    a.writer.take_over();
    let mut batch = Batch::new();
    batch.put_run(&run_state("r1", 1, RunStatus::Running));
    a.store.commit(batch).unwrap();
    // An empty batch needs nothing durable, so no ownership either.
    b.store.commit(Batch::new()).unwrap();
    // Before a takeover an API node cannot write as an owner either.
    let mut batch = Batch::new();
    batch.put_meta("x", b"1");
    assert_eq!(b.store.commit(batch), Err(StoreError::Fenced));

    let marker = b.writer.take_over();
    b.store.wait_applied(marker).unwrap();
    let mut stale = Batch::new();
    stale.put_run(&run_state("r1", 2, RunStatus::Failed));
    assert_eq!(a.store.commit(stale), Err(StoreError::Fenced));
    // Fenced for good: no later owner write is acknowledged, while intake still works.
    let mut later = Batch::new();
    later.put_meta("y", b"1");
    assert_eq!(a.store.commit(later), Err(StoreError::Fenced));
    let mut intake = Batch::new();
    intake.put_run(&run_state("r2", 3, RunStatus::Running));
    intake.set_intake();
    a.store.commit(intake).unwrap();

    let mut batch = Batch::new();
    batch.put_run(&run_state("r1", 4, RunStatus::Completed));
    b.store.commit(batch).unwrap();
    a.store.wait_applied(log.len()).unwrap();
    assert_eq!(
        a.store.get_run("r1").unwrap().unwrap().status,
        RunStatus::Completed
    );
}

#[test]
fn a_restarted_replica_resumes_after_what_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let log = MemLog::new();
    {
        let a = node(&log, dir.path());
        a.writer.take_over();
        let run = run_state("r1", 1, RunStatus::Running);
        let mut batch = Batch::new();
        batch.put_run(&run);
        batch.append_ledger("r1", 1, &step(&run, 1));
        a.store.commit(batch).unwrap();
    }
    // Entries written while it was down are applied when it comes back; earlier ones are not applied twice.
    let other = tempfile::tempdir().unwrap();
    let b = node(&log, other.path());
    // A new owner writes only once its replica holds everything before its marker (the lease waits for that).
    let marker = b.writer.take_over();
    b.store.wait_applied(marker).unwrap();
    let run = run_state("r1", 1, RunStatus::Running);
    let mut batch = Batch::new();
    batch.append_ledger("r1", 2, &step(&run, 2));
    b.store.commit(batch).unwrap();
    let a = node(&log, dir.path());
    a.store.wait_applied(log.len()).unwrap();
    assert_eq!(a.store.ledger_len("r1"), 2);
    assert_eq!(a.store.ledger_after("r1", 0, 10).unwrap().len(), 2);
}

#[test]
fn a_hostile_entry_is_refused_and_leaves_the_replica_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = MemLog::new();
    let store = Store::open_replica(dir.path(), log.writer()).unwrap();
    let applier = store.applier().unwrap();
    for (kind, bytes) in [
        (EntryKind::Owned, b"AGL1\xff\xff\xff\xff".to_vec()),
        (EntryKind::Intake, b"garbage".to_vec()),
        (EntryKind::Intake, b"AGL1\x02\x00\x00\x00\x02{}".to_vec()),
    ] {
        assert!(applier.apply(1, kind, &bytes).is_err());
        assert_eq!(applier.applied(), 0);
    }
    assert!(applier.apply(1, EntryKind::Marker, &[]).is_ok());
    assert_eq!(applier.applied(), 1);
    // Delivered twice: ignored.
    assert!(applier.apply(1, EntryKind::Intake, b"garbage").is_ok());
}

#[test]
fn one_command_id_twice_in_one_group_is_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let log = MemLog::new();
    let a = node(&log, dir.path());
    let store = a.store.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..8 {
        let (store, tx) = (store.clone(), tx.clone());
        std::thread::spawn(move || tx.send(store.append_command(command("same", "r1"))));
    }
    drop(tx);
    let answers: Vec<Appended> = rx.iter().map(|r| r.unwrap()).collect();
    assert_eq!(answers.len(), 8);
    assert_eq!(
        answers.iter().filter(|a| !a.duplicate).count(),
        1,
        "{answers:?}"
    );
    assert!(answers.iter().all(|a| a.seq == answers[0].seq));
    assert_eq!(store.commands_after(0, 10).unwrap().len(), 1);
}

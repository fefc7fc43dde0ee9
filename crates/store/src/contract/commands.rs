//! Command inbox: idempotency, seq allocation, cursor and outcomes.

use std::collections::BTreeSet;
use std::time::Duration;

use super::backend::Backend;
use crate::run::CommandOutcome;
use crate::store::testutil::command;
use crate::store::{Appended, Batch, StoreError};

pub fn same_command_id_twice_returns_the_original_seq(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let first = store.append_command(command("c1", "r1")).unwrap();
    assert!(!first.duplicate);
    // Even with a different run and type, the id decides.
    let mut other = command("c1", "r2");
    other.kind = "cancel".into();
    assert_eq!(
        store.append_command(other).unwrap(),
        Appended {
            seq: first.seq,
            duplicate: true
        }
    );
    let mut with_ts = command("c2", "r1");
    with_ts.ts = Some("2026-11-28T12:00:00+00:00".into());
    let second = store.append_command(with_ts).unwrap();
    assert!(!second.duplicate);
    assert!(second.seq > first.seq);
    // The embedded inbox numbers commands 1, 2, 3, … without gaps. In a replica a command's seq is its log
    // position: unique and increasing, not gapless (the takeover marker took position 1).
    if backend.is_embedded() {
        assert_eq!((first.seq, second.seq), (1, 2));
    }

    let all = store.commands_after(0, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].command_id, "c1");
    assert_eq!(all[0].run_id, "r1");
    assert_eq!(all[0].kind, "pause");
    assert_eq!(all[0].seq, first.seq);
    assert_eq!(all[1].seq, second.seq);
    assert_eq!(all[0].client_id.as_deref(), Some("tests"));
    assert!(
        crate::time::parse_iso(&all[0].ts).is_some(),
        "server ts: {}",
        all[0].ts
    );
    assert_eq!(all[1].ts, "2026-11-28T12:00:00+00:00");
    assert_eq!(store.commands_after(first.seq, 10).unwrap().len(), 1);
    assert_eq!(store.commands_after(0, 1).unwrap().len(), 1);
    assert!(store.commands_after(second.seq, 10).unwrap().is_empty());
    assert!(store.commands_after(u64::MAX, 10).unwrap().is_empty());
}

pub fn concurrent_appends_get_distinct_gapless_seqs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let results: Vec<Vec<Appended>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                s.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..25 {
                        got.push(
                            store
                                .append_command(command(&format!("t{t}-{i}"), "r"))
                                .unwrap(),
                        );
                        if i == 10 {
                            got.push(store.append_command(command("shared", "r")).unwrap());
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for got in &results {
        let own: Vec<u64> = got.iter().filter(|a| !a.duplicate).map(|a| a.seq).collect();
        assert!(
            own.windows(2).all(|w| w[0] < w[1]),
            "one thread's appends get increasing seqs: {own:?}"
        );
    }
    let all: Vec<Appended> = results.into_iter().flatten().collect();
    let fresh: BTreeSet<u64> = all.iter().filter(|a| !a.duplicate).map(|a| a.seq).collect();
    assert_eq!(all.iter().filter(|a| !a.duplicate).count(), 201);
    assert_eq!(fresh.len(), 201, "distinct seqs");
    // Gapless in the embedded inbox. In a replica a command's seq is its log position: unique and increasing, not
    // 1, 2, 3 without gaps (the takeover marker took position 1).
    if backend.is_embedded() {
        assert_eq!(fresh, (1..=201).collect());
    }
    let shared: BTreeSet<u64> = all.iter().filter(|a| a.duplicate).map(|a| a.seq).collect();
    assert_eq!(
        shared.len(),
        1,
        "every duplicate of 'shared' reports the one original seq"
    );
    let listed: Vec<u64> = store
        .commands_after(0, 1000)
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(listed, fresh.iter().copied().collect::<Vec<_>>());
    if backend.is_embedded() {
        assert_eq!(listed, (1..=201).collect::<Vec<_>>());
    }
}

pub fn seq_survives_reopen(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let seqs: Vec<u64> = {
        let store = backend.open(dir.path());
        ["a", "b", "c"]
            .into_iter()
            .map(|id| store.append_command(command(id, "r")).unwrap().seq)
            .collect()
    };
    // Gapless in the embedded inbox; in a replica a command's seq is its log position (unique and increasing, not
    // 1, 2, 3: the takeover marker took position 1, and reopening takes over again, at a new position).
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    if backend.is_embedded() {
        assert_eq!(seqs, [1, 2, 3]);
    }
    let store = backend.open(dir.path());
    assert_eq!(*store.watch_commands().borrow(), seqs[2]);
    assert_eq!(
        store.append_command(command("b", "r")).unwrap(),
        Appended {
            seq: seqs[1],
            duplicate: true
        }
    );
    let d = store.append_command(command("d", "r")).unwrap();
    assert!(!d.duplicate);
    assert!(d.seq > seqs[2]);
    if backend.is_embedded() {
        assert_eq!(d.seq, 4);
    }
}

pub fn missing_fields_are_refused_or_filled(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    assert!(matches!(
        store.append_command(command("x", "")),
        Err(StoreError::Invalid(_))
    ));
    let mut no_type = command("x", "r");
    no_type.kind.clear();
    assert!(matches!(
        store.append_command(no_type),
        Err(StoreError::Invalid(_))
    ));
    // The seed assigns an id when none is given.
    let appended = store.append_command(command("", "r")).unwrap();
    assert!(!appended.duplicate);
    // The first command: seq 1 in the embedded inbox; in a replica its log position (the takeover marker took 1).
    if backend.is_embedded() {
        assert_eq!(appended.seq, 1);
    }
    let rec = &store.commands_after(0, 1).unwrap()[0];
    assert_eq!(rec.seq, appended.seq);
    assert_eq!(rec.command_id.len(), 32);
}

pub fn outcome_and_cursor_round_trip(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let outcome = {
        let store = backend.open(dir.path());
        let seq = store.append_command(command("c1", "r1")).unwrap().seq;
        // The first command: seq 1 in the embedded inbox; in a replica its log position (the takeover marker took 1).
        if backend.is_embedded() {
            assert_eq!(seq, 1);
        }
        assert_eq!(store.command_cursor().unwrap(), 0);
        let (rec, none) = store.get_command("c1").unwrap().unwrap();
        assert_eq!(rec.seq, seq);
        assert_eq!(none, None);

        let outcome = CommandOutcome {
            command_id: "c1".into(),
            seq,
            status: "rejected".into(),
            reason: Some("Run is paused".into()),
            runs: vec!["r1".into(), "r1-child".into()],
            applied_at: "2026-11-28T12:00:01.000000+00:00".into(),
        };
        let mut b = Batch::new();
        b.put_outcome(&outcome);
        b.set_command_cursor(seq);
        store.commit(b).unwrap();
        outcome
    };
    let store = backend.open(dir.path());
    assert_eq!(store.command_cursor().unwrap(), outcome.seq);
    let (rec, got) = store.get_command("c1").unwrap().unwrap();
    assert_eq!(rec.command_id, "c1");
    assert_eq!(got, Some(outcome));
    assert_eq!(store.get_command("nope").unwrap(), None);
}

pub async fn watch_commands_wakes_on_append(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let mut rx = store.watch_commands();
    assert_eq!(*rx.borrow_and_update(), 0);
    let appended = store
        .append_command_async(command("c1", "r"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*rx.borrow(), appended.seq);
    // The woken reader sees the command.
    assert_eq!(store.commands_after(0, 10).unwrap().len(), 1);
}

pub async fn watch_outcomes_wakes_when_an_outcome_is_durable(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let seq = store.append_command(command("c1", "r1")).unwrap().seq;
    let mut rx = store.watch_outcomes();
    rx.borrow_and_update();
    // A batch without outcomes does not wake it.
    let mut b = Batch::new();
    b.put_meta("k", b"v");
    store.commit(b).unwrap();
    assert!(!rx.has_changed().unwrap());
    let mut b = Batch::new();
    b.put_outcome(&CommandOutcome {
        command_id: "c1".into(),
        seq,
        status: "applied".into(),
        reason: None,
        runs: vec![],
        applied_at: "2026-11-28T12:00:01.000000+00:00".into(),
    });
    b.set_command_cursor(seq);
    store.commit_async(b).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), rx.changed())
        .await
        .unwrap()
        .unwrap();
    // The woken reader sees the outcome.
    let (_, outcome) = store.get_command("c1").unwrap().unwrap();
    assert_eq!(outcome.unwrap().status, "applied");
}

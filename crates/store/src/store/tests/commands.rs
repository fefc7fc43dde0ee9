//! Command inbox: idempotency, seq allocation, cursor and outcomes.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::run::CommandOutcome;
use crate::store::testutil::command;
use crate::store::{Appended, Batch, Store, StoreError};

#[test]
fn same_command_id_twice_returns_the_original_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = store.append_command(command("c1", "r1")).unwrap();
    assert_eq!(
        first,
        Appended {
            seq: 1,
            duplicate: false
        }
    );
    // Even with a different run and type, the id decides.
    let mut other = command("c1", "r2");
    other.kind = "cancel".into();
    assert_eq!(
        store.append_command(other).unwrap(),
        Appended {
            seq: 1,
            duplicate: true
        }
    );
    let mut with_ts = command("c2", "r1");
    with_ts.ts = Some("2026-11-28T12:00:00+00:00".into());
    assert_eq!(
        store.append_command(with_ts).unwrap(),
        Appended {
            seq: 2,
            duplicate: false
        }
    );

    let all = store.commands_after(0, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].command_id, "c1");
    assert_eq!(all[0].run_id, "r1");
    assert_eq!(all[0].kind, "pause");
    assert_eq!(all[0].seq, 1);
    assert_eq!(all[0].client_id.as_deref(), Some("tests"));
    assert!(
        crate::time::parse_iso(&all[0].ts).is_some(),
        "server ts: {}",
        all[0].ts
    );
    assert_eq!(all[1].ts, "2026-11-28T12:00:00+00:00");
    assert_eq!(store.commands_after(1, 10).unwrap().len(), 1);
    assert_eq!(store.commands_after(0, 1).unwrap().len(), 1);
    assert!(store.commands_after(2, 10).unwrap().is_empty());
    assert!(store.commands_after(u64::MAX, 10).unwrap().is_empty());
}

#[test]
fn concurrent_appends_get_distinct_gapless_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
    let all: Vec<Appended> = results.into_iter().flatten().collect();
    let fresh: BTreeSet<u64> = all.iter().filter(|a| !a.duplicate).map(|a| a.seq).collect();
    assert_eq!(all.iter().filter(|a| !a.duplicate).count(), 201);
    assert_eq!(fresh, (1..=201).collect());
    let shared: BTreeSet<u64> = all.iter().filter(|a| a.duplicate).map(|a| a.seq).collect();
    assert_eq!(
        shared.len(),
        1,
        "every duplicate of 'shared' reports the one original seq"
    );
    let listed = store.commands_after(0, 1000).unwrap();
    assert_eq!(
        listed.iter().map(|c| c.seq).collect::<Vec<_>>(),
        (1..=201).collect::<Vec<_>>()
    );
}

#[test]
fn seq_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        for id in ["a", "b", "c"] {
            store.append_command(command(id, "r")).unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(*store.watch_commands().borrow(), 3);
    assert_eq!(
        store.append_command(command("b", "r")).unwrap(),
        Appended {
            seq: 2,
            duplicate: true
        }
    );
    assert_eq!(
        store.append_command(command("d", "r")).unwrap(),
        Appended {
            seq: 4,
            duplicate: false
        }
    );
}

#[test]
fn missing_fields_are_refused_or_filled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
    assert_eq!(
        appended,
        Appended {
            seq: 1,
            duplicate: false
        }
    );
    let rec = &store.commands_after(0, 1).unwrap()[0];
    assert_eq!(rec.command_id.len(), 32);
}

#[test]
fn outcome_and_cursor_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = CommandOutcome {
        command_id: "c1".into(),
        seq: 1,
        status: "rejected".into(),
        reason: Some("Run is paused".into()),
        runs: vec!["r1".into(), "r1-child".into()],
        applied_at: "2026-11-28T12:00:01.000000+00:00".into(),
    };
    {
        let store = Store::open(dir.path()).unwrap();
        store.append_command(command("c1", "r1")).unwrap();
        assert_eq!(store.command_cursor().unwrap(), 0);
        let (rec, none) = store.get_command("c1").unwrap().unwrap();
        assert_eq!(rec.seq, 1);
        assert_eq!(none, None);

        let mut b = Batch::new();
        b.put_outcome(&outcome);
        b.set_command_cursor(1);
        store.commit(b).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.command_cursor().unwrap(), 1);
    let (rec, got) = store.get_command("c1").unwrap().unwrap();
    assert_eq!(rec.command_id, "c1");
    assert_eq!(got, Some(outcome));
    assert_eq!(store.get_command("nope").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_commands_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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

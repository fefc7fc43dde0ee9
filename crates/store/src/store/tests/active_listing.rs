//! Listing running or waiting runs walks the active set, not every run: the answer is the one a walk of every run
//! gives (order, filters, limit), also for a store whose active set an older version wrote. Listings and reads
//! of run heads (what a summary shows) answer as those of full states.

use crate::run::{RunHead, RunStatus};
use crate::store::testutil::run_state;
use crate::store::{Batch, RunQuery, Store};

/// What a walk of every run answers: all runs newest first, filtered, cut at the limit.
fn by_full_walk(store: &Store, q: &RunQuery) -> Vec<String> {
    let all = store
        .list_runs(&RunQuery {
            limit: usize::MAX,
            ..RunQuery::default()
        })
        .unwrap();
    all.into_iter()
        .filter(|r| q.status.is_none_or(|s| s == r.status))
        .filter(|r| q.session_id.is_none() || r.session_id == q.session_id)
        .take(q.limit)
        .map(|r| r.run_id)
        .collect()
}

fn ids(store: &Store, q: &RunQuery) -> Vec<String> {
    store
        .list_runs(q)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect()
}

/// 60 runs, created out of id order: every 7th running, every 11th waiting, the rest ended; two sessions.
fn fill(store: &Store) {
    let mut b = Batch::new();
    for i in 0..60u32 {
        let status = match i {
            _ if i % 7 == 0 => RunStatus::Running,
            _ if i % 11 == 0 => RunStatus::Waiting,
            _ if i % 2 == 0 => RunStatus::Completed,
            _ => RunStatus::Failed,
        };
        // Created times interleave with the ids, so an order by id would be wrong.
        let mut r = run_state(&format!("run-{i:02}"), (i * 37) % 61, status);
        r.session_id = Some(format!("s{}", i % 2));
        b.put_run(&r);
    }
    store.commit(b).unwrap();
}

fn queries() -> Vec<RunQuery> {
    let mut qs = Vec::new();
    for status in [RunStatus::Running, RunStatus::Waiting] {
        for limit in [1, 3, 100] {
            for session in [None, Some("s1".to_string())] {
                qs.push(RunQuery {
                    status: Some(status),
                    limit,
                    session_id: session,
                    ..RunQuery::default()
                });
            }
        }
    }
    qs
}

#[test]
fn active_listings_answer_as_a_walk_of_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store);
    for q in queries() {
        let got = ids(&store, &q);
        assert!(!got.is_empty(), "{q:?}");
        assert_eq!(got, by_full_walk(&store, &q), "{q:?}");
    }
    // A run that ends leaves the active listing at once; one that starts waiting moves to the other.
    let mut b = Batch::new();
    b.put_run(&run_state("run-07", (7 * 37) % 61, RunStatus::Completed));
    b.put_run(&run_state("run-14", (14 * 37) % 61, RunStatus::Waiting));
    store.commit(b).unwrap();
    let running = RunQuery {
        status: Some(RunStatus::Running),
        limit: 100,
        ..RunQuery::default()
    };
    let got = ids(&store, &running);
    assert!(!got.contains(&"run-07".to_string()) && !got.contains(&"run-14".to_string()));
    assert_eq!(got, by_full_walk(&store, &running));
    let waiting = RunQuery {
        status: Some(RunStatus::Waiting),
        ..running
    };
    assert!(ids(&store, &waiting).contains(&"run-14".to_string()));
}

#[test]
fn an_active_set_written_by_an_older_version_still_lists_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store);
    // What an older version wrote: the active set's values empty.
    let shared = store.shared();
    let mut wb = shared.db.batch();
    for guard in shared.ks.active.iter() {
        wb.insert(&shared.ks.active, guard.key().unwrap(), [0u8; 0]);
    }
    wb.commit().unwrap();
    shared.db.persist(fjall::PersistMode::SyncData).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    for q in queries() {
        assert_eq!(ids(&store, &q), by_full_walk(&store, &q), "{q:?}");
    }
}

#[test]
fn heads_list_and_read_as_the_full_states_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store);
    let mut qs = queries();
    qs.push(RunQuery {
        limit: 100,
        ..RunQuery::default()
    });
    qs.push(RunQuery {
        limit: 5,
        session_id: Some("s0".to_string()),
        status: Some(RunStatus::Completed),
        ..RunQuery::default()
    });
    for q in qs {
        let full: Vec<RunHead> = store
            .list_runs(&q)
            .unwrap()
            .iter()
            .map(RunHead::of)
            .collect();
        assert!(!full.is_empty(), "{q:?}");
        assert_eq!(store.list_run_heads(&q).unwrap(), full, "{q:?}");
    }
    let run = store.get_run("run-07").unwrap().unwrap();
    assert_eq!(
        store.get_run_head("run-07").unwrap(),
        Some(RunHead::of(&run))
    );
    assert!(store.run_exists("run-07").unwrap());
    for missing in ["run-99", "", "../run-07", "a\u{0}b"] {
        assert_eq!(store.get_run_head(missing).unwrap(), None, "{missing:?}");
        assert!(!store.run_exists(missing).unwrap(), "{missing:?}");
    }
}

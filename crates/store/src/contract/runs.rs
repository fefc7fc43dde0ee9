//! Run reads and the indexes `put_run` maintains.

use super::backend::Backend;
use crate::run::{RunState, RunStatus};
use crate::store::testutil::run_state;
use crate::store::{Batch, RunQuery, Store};

fn put(store: &Store, runs: &[&RunState]) {
    let mut b = Batch::new();
    for r in runs {
        b.put_run(r);
    }
    store.commit(b).unwrap();
}

fn ids(runs: &[RunState]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

fn query(limit: usize) -> RunQuery {
    RunQuery {
        limit,
        ..RunQuery::default()
    }
}

pub fn list_runs_is_newest_first_and_filters(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let a = run_state("a", 1, RunStatus::Completed);
    let b = run_state("b", 2, RunStatus::Running);
    // Same created_at as b: the run_id breaks the tie.
    let mut c = run_state("c", 2, RunStatus::Waiting);
    c.workflow_id = "ask-user@1.0.0:ask".into();
    let mut d = run_state("d", 3, RunStatus::Running);
    d.parent_run_id = Some("b".into());
    d.session_id = Some("b".into());
    put(&store, &[&a, &b]);
    put(&store, &[&c, &d]);

    assert_eq!(
        ids(&store.list_runs(&query(50)).unwrap()),
        ["d", "c", "b", "a"]
    );
    assert_eq!(ids(&store.list_runs(&query(2)).unwrap()), ["d", "c"]);
    assert!(store.list_runs(&query(0)).unwrap().is_empty());

    let running = RunQuery {
        status: Some(RunStatus::Running),
        ..query(50)
    };
    assert_eq!(ids(&store.list_runs(&running).unwrap()), ["d", "b"]);
    let roots = RunQuery {
        root_only: true,
        ..running.clone()
    };
    assert_eq!(ids(&store.list_runs(&roots).unwrap()), ["b"]);
    let by_workflow = RunQuery {
        workflow_id: Some("ask-user@1.0.0:ask".into()),
        ..query(50)
    };
    assert_eq!(ids(&store.list_runs(&by_workflow).unwrap()), ["c"]);
    let by_session = RunQuery {
        session_id: Some("b".into()),
        ..query(50)
    };
    assert_eq!(ids(&store.list_runs(&by_session).unwrap()), ["d", "b"]);

    // A status change moves the run between filters (the index entry is rewritten with the run).
    let mut b_done = b.clone();
    b_done.status = RunStatus::Completed;
    put(&store, &[&b_done]);
    assert_eq!(ids(&store.list_runs(&running).unwrap()), ["d"]);
    assert_eq!(store.list_runs(&query(50)).unwrap()[2], b_done);
    // So does the session's own index.
    assert_eq!(ids(&store.list_runs(&by_session).unwrap()), ["d", "b"]);
    let running_in_b = RunQuery {
        status: Some(RunStatus::Running),
        ..by_session.clone()
    };
    assert_eq!(ids(&store.list_runs(&running_in_b).unwrap()), ["d"]);
    assert_eq!(store.list_runs(&by_session).unwrap()[1], b_done);
    let nobody = RunQuery {
        session_id: Some("nobody".into()),
        ..query(50)
    };
    assert!(store.list_runs(&nobody).unwrap().is_empty());
    // And the workflow's.
    let running_echo = RunQuery {
        workflow_id: Some("echo-upper@1.0.0:echo".into()),
        ..running.clone()
    };
    assert_eq!(ids(&store.list_runs(&running_echo).unwrap()), ["d"]);
    let echo = RunQuery {
        workflow_id: Some("echo-upper@1.0.0:echo".into()),
        ..query(50)
    };
    assert_eq!(ids(&store.list_runs(&echo).unwrap()), ["d", "b", "a"]);
}

pub fn list_runs_decodes_only_what_it_returns(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let runs: Vec<RunState> = (0..50)
        .map(|i| run_state(&format!("run-{i:02}"), i, RunStatus::Completed))
        .collect();
    put(&store, &runs.iter().collect::<Vec<_>>());
    // Break the oldest run's bytes: listing the newest page must not touch it.
    store.damage_run("run-00", "not json");
    // Any commit publishes a snapshot that includes the raw write (in a replica: applying its log entry does).
    let mut b = Batch::new();
    b.put_meta("touch", b"1");
    store.commit(b).unwrap();
    let page = store.list_runs(&query(5)).unwrap();
    assert_eq!(
        ids(&page),
        ["run-49", "run-48", "run-47", "run-46", "run-45"]
    );
    // A page that reaches it skips it: one bad run never fails the listing.
    let all = store.list_runs(&query(50)).unwrap();
    assert_eq!(all.len(), 49);
    assert!(!ids(&all).contains(&"run-00"));
}

pub fn a_changed_created_at_lists_the_run_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let mut r = run_state("r", 5, RunStatus::Running);
    put(&store, &[&r]);
    r.created_at = crate::store::testutil::ts(9);
    put(&store, &[&r]);
    assert_eq!(store.list_runs(&query(50)).unwrap(), [r.clone()]);
    let by_session = RunQuery {
        session_id: r.session_id.clone(),
        ..query(50)
    };
    assert_eq!(store.list_runs(&by_session).unwrap(), [r.clone()]);
    let by_workflow = RunQuery {
        workflow_id: Some(r.workflow_id.clone()),
        ..query(50)
    };
    assert_eq!(store.list_runs(&by_workflow).unwrap(), [r]);
}

pub fn active_index_follows_the_status(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut running = run_state("running", 1, RunStatus::Running);
    let waiting = run_state("waiting", 2, RunStatus::Waiting);
    let failed = run_state("failed", 3, RunStatus::Failed);
    {
        let store = backend.open(dir.path());
        put(&store, &[&running, &waiting, &failed]);
        assert_eq!(ids(&store.active_runs().unwrap().0), ["running", "waiting"]);
        running.status = RunStatus::Cancelled;
        put(&store, &[&running]);
        assert_eq!(ids(&store.active_runs().unwrap().0), ["waiting"]);
    }
    let store = backend.open(dir.path());
    assert_eq!(
        store.active_runs().unwrap().0,
        std::slice::from_ref(&waiting)
    );
    let mut again = waiting.clone();
    again.status = RunStatus::Completed;
    put(&store, &[&again]);
    assert!(store.active_runs().unwrap().0.is_empty());
}

pub fn children_index_lists_direct_children(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let root = run_state("root", 1, RunStatus::Waiting);
    let mut kids = Vec::new();
    for id in ["kid-b", "kid-a"] {
        let mut k = run_state(id, 2, RunStatus::Running);
        k.parent_run_id = Some("root".into());
        kids.push(k);
    }
    let mut grandchild = run_state("grandchild", 3, RunStatus::Running);
    grandchild.parent_run_id = Some("kid-a".into());
    // A run whose id extends the parent's must not appear as its child.
    let mut other = run_state("other", 4, RunStatus::Running);
    other.parent_run_id = Some("root2".into());
    put(&store, &[&root, &kids[0], &kids[1], &grandchild, &other]);
    assert_eq!(store.child_run_ids("root").unwrap(), ["kid-a", "kid-b"]);
    assert_eq!(store.child_run_ids("kid-a").unwrap(), ["grandchild"]);
    assert!(store.child_run_ids("grandchild").unwrap().is_empty());
    assert!(store.child_run_ids("unknown").unwrap().is_empty());
    assert_eq!(store.get_run("kid-a").unwrap().as_ref(), Some(&kids[1]));
    assert_eq!(store.get_run("nope").unwrap(), None);
}

pub fn an_undecodable_run_is_skipped_by_listing_and_reported_to_recovery(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path());
    let good = run_state("good", 1, RunStatus::Running);
    let mut bad = run_state("bad", 2, RunStatus::Running);
    bad.parent_run_id = Some("good".into());
    bad.session_id = Some("s".into());
    // Encodes, but nested past what serde_json reads back.
    let mut deep = serde_json::json!(1);
    for _ in 0..200 {
        deep = serde_json::json!([deep]);
    }
    bad.vars.insert("deep".into(), deep);
    let garbage = run_state("garbage", 3, RunStatus::Waiting);
    put(&store, &[&good, &bad, &garbage]);
    // Bytes that are not JSON at all.
    store.damage_run("garbage", "not json");
    let mut b = Batch::new();
    b.put_meta("touch", b"1");
    store.commit(b).unwrap();
    assert!(store.get_run("bad").is_err());
    assert_eq!(ids(&store.list_runs(&query(50)).unwrap()), ["good"]);
    let (active, unreadable) = store.active_runs().unwrap();
    assert_eq!(ids(&active), ["good"]);
    assert_eq!(unreadable.len(), 2);
    assert_eq!(unreadable[1].run_id, "garbage");
    assert_eq!(
        unreadable[1].created_at.as_deref(),
        Some(garbage.created_at.as_str())
    );
    let u = &unreadable[0];
    assert_eq!(u.run_id, "bad");
    assert!(u.error.contains("recursion limit"), "{}", u.error);
    assert_eq!(u.created_at.as_deref(), Some(bad.created_at.as_str()));
    assert_eq!(u.workflow_id.as_deref(), Some(bad.workflow_id.as_str()));
    assert_eq!(u.session_id.as_deref(), Some("s"));
    assert_eq!(u.parent_run_id.as_deref(), Some("good"));
}

//! The per-session and per-workflow run indexes: a store written before they existed gets them at its next open.

use crate::run::RunStatus;
use crate::store::testutil::run_state;
use crate::store::{Batch, RunQuery, Store, keys};

#[test]
fn a_store_from_before_the_scope_indexes_is_indexed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut mine = run_state("mine", 1, RunStatus::Completed);
    mine.session_id = Some("s1".into());
    let mut other = run_state("other", 2, RunStatus::Completed);
    other.session_id = Some("s2".into());
    let mut newer = run_state("newer", 3, RunStatus::Waiting);
    newer.session_id = Some("s1".into());
    newer.workflow_id = "ask-user@1.0.0:ask".into();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut b = Batch::new();
        for r in [&mine, &other, &newer] {
            b.put_run(r);
        }
        store.commit(b).unwrap();
        // What an older store holds: neither index and no marker.
        let shared = store.shared();
        let mut wb = shared.db.batch();
        for keyspace in [&shared.ks.runs_by_session, &shared.ks.runs_by_workflow] {
            for guard in keyspace.iter() {
                wb.remove(keyspace, guard.key().unwrap());
            }
        }
        wb.remove(&shared.ks.state, keys::SCOPE_INDEXES_BUILT);
        wb.commit().unwrap();
        shared.db.persist(fjall::PersistMode::SyncData).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let ids = |q: RunQuery| -> Vec<String> {
        store
            .list_runs(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect()
    };
    let by_session = RunQuery {
        session_id: Some("s1".into()),
        ..RunQuery::default()
    };
    assert_eq!(ids(by_session), ["newer", "mine"]);
    assert_eq!(store.shared().ks.runs_by_session.iter().count(), 3);
    let by_workflow = RunQuery {
        workflow_id: Some("echo-upper@1.0.0:echo".into()),
        ..RunQuery::default()
    };
    assert_eq!(ids(by_workflow), ["other", "mine"]);
}

//! The `runs_by_session` index: a store written before it existed gets it at its next open.

use crate::run::RunStatus;
use crate::store::testutil::run_state;
use crate::store::{Batch, RunQuery, Store, keys};

#[test]
fn a_store_from_before_the_session_index_is_indexed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut mine = run_state("mine", 1, RunStatus::Completed);
    mine.session_id = Some("s1".into());
    let mut other = run_state("other", 2, RunStatus::Completed);
    other.session_id = Some("s2".into());
    let mut newer = run_state("newer", 3, RunStatus::Waiting);
    newer.session_id = Some("s1".into());
    {
        let store = Store::open(dir.path()).unwrap();
        let mut b = Batch::new();
        for r in [&mine, &other, &newer] {
            b.put_run(r);
        }
        store.commit(b).unwrap();
        // What an older store holds: no session index and no marker.
        let shared = store.shared();
        let mut wb = shared.db.batch();
        for guard in shared.ks.runs_by_session.iter() {
            wb.remove(&shared.ks.runs_by_session, guard.key().unwrap());
        }
        wb.remove(&shared.ks.state, keys::SESSION_INDEX_BUILT);
        wb.commit().unwrap();
        shared.db.persist(fjall::PersistMode::SyncData).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let q = RunQuery {
        session_id: Some("s1".into()),
        ..RunQuery::default()
    };
    let ids: Vec<String> = store
        .list_runs(&q)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ids, ["newer", "mine"]);
    assert!(store.shared().ks.runs_by_session.iter().count() == 3);
}

//! Run reads: by id, listed newest first, active runs and children. All read the durable snapshot.

use fjall::{Readable, Slice, Snapshot};

use serde::de::DeserializeOwned;

use super::batch::RunIndexEntry;
use super::{RunQuery, Store, StoreError, keys};
use crate::run::{RunHead, RunState};

/// What a run read decodes: the whole state, or only the head a summary shows (which skips the variables).
pub(crate) trait RunRecord: DeserializeOwned {
    /// The run's creation time (its position in the `runs_by_created` index).
    fn created_at(&self) -> &str;
    /// Whether the run passes the listing's filters.
    fn matches(&self, q: &RunQuery) -> bool;
}

/// Both forms carry the same fields a listing filters on.
macro_rules! run_record {
    ($($t:ty),*) => {$(
        impl RunRecord for $t {
            fn created_at(&self) -> &str {
                &self.created_at
            }
            fn matches(&self, q: &RunQuery) -> bool {
                passes(
                    q,
                    self.status,
                    &self.workflow_id,
                    self.session_id.as_deref(),
                    self.parent_run_id.is_none(),
                )
            }
        }
    )*};
}

run_record!(RunState, RunHead);

/// An active run whose stored state cannot be decoded, with what its index entries still tell.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableRun {
    /// The run's id.
    pub run_id: String,
    /// Why its state cannot be decoded.
    pub error: String,
    /// Its creation time, from the `runs_by_created` index.
    pub created_at: Option<String>,
    /// Its workflow, from the same index.
    pub workflow_id: Option<String>,
    /// Its session, from the same index.
    pub session_id: Option<String>,
    /// Its parent, from the children index.
    pub parent_run_id: Option<String>,
}

impl Store {
    /// The durable state of a run.
    pub fn get_run(&self, run_id: &str) -> Result<Option<RunState>, StoreError> {
        self.get_run_as(run_id)
    }

    /// What a summary of the run shows, without decoding its variables.
    pub fn get_run_head(&self, run_id: &str) -> Result<Option<RunHead>, StoreError> {
        self.get_run_as(run_id)
    }

    /// Whether the run is stored (nothing is decoded).
    pub fn run_exists(&self, run_id: &str) -> Result<bool, StoreError> {
        if keys::check_id("run_id", run_id).is_err() {
            return Ok(false);
        }
        let view = self.shared().durable.view();
        Ok(view.contains_key(&self.shared().ks.runs, run_id.as_bytes())?)
    }

    fn get_run_as<R: RunRecord>(&self, run_id: &str) -> Result<Option<R>, StoreError> {
        if keys::check_id("run_id", run_id).is_err() {
            return Ok(None);
        }
        let view = self.shared().durable.view();
        self.read_run(&view, run_id)
    }

    /// Most recent first (by created_at, then run_id), filtered; walks the `runs_by_created` index backwards and
    /// decodes only runs whose index entry passes the filters.
    pub fn list_runs(&self, q: &RunQuery) -> Result<Vec<RunState>, StoreError> {
        self.list_runs_as(q)
    }

    /// [`Store::list_runs`], each run read only as far as its summary needs.
    pub fn list_run_heads(&self, q: &RunQuery) -> Result<Vec<RunHead>, StoreError> {
        self.list_runs_as(q)
    }

    fn list_runs_as<R: RunRecord>(&self, q: &RunQuery) -> Result<Vec<R>, StoreError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let view = self.shared().durable.view();
        let ks = &self.shared().ks;
        // One session's (or else one workflow's) runs come from its own index, so the cost of the page does not
        // grow with the others' runs; everything else walks every run, newest first.
        let scoped = [
            (&ks.runs_by_session, q.session_id.as_deref()),
            (&ks.runs_by_workflow, q.workflow_id.as_deref()),
        ]
        .into_iter()
        .find_map(|(keyspace, scope)| Some((keyspace, keys::scope_prefix(scope?)?)));
        // Running or waiting runs (of no one session or workflow, whose own index is smaller) come from the active
        // set, so the cost does not grow with the runs that ended (a client polling for what is still going, on a
        // store of a million finished runs).
        if scoped.is_none()
            && q.status.is_some_and(|s| !s.is_terminal())
            && let Some(active) = self.active_newest_first(&view)?
        {
            return self.collect_page(q, &view, 0, active.into_iter().map(Ok));
        }
        let skip = scoped.as_ref().map_or(0, |(_, p)| p.len());
        let entries: Box<dyn Iterator<Item = Result<(Slice, Slice), StoreError>>> = match &scoped {
            Some((keyspace, p)) => Box::new(
                view.prefix(*keyspace, p)
                    .rev()
                    .map(|g| g.into_inner().map_err(StoreError::from)),
            ),
            None => Box::new(
                view.iter(&ks.runs_by_created)
                    .rev()
                    .map(|g| g.into_inner().map_err(StoreError::from)),
            ),
        };
        self.collect_page(q, &view, skip, entries)
    }

    /// The `runs_by_created` entries of every active run, newest first; `None` when an active run was written by
    /// an older version, which did not keep its index key in the active set (the caller then walks every run).
    fn active_newest_first(
        &self,
        view: &Snapshot,
    ) -> Result<Option<Vec<(Slice, Slice)>>, StoreError> {
        let ks = &self.shared().ks;
        let mut found = Vec::new();
        for guard in view.iter(&ks.active) {
            let created_key = guard.value()?;
            if created_key.is_empty() {
                return Ok(None);
            }
            // Both reads are of one snapshot, where every active run has its entry; one missing is skipped.
            if let Some(entry) = view.get(&ks.runs_by_created, &created_key)? {
                found.push((created_key, entry));
            }
        }
        found.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        Ok(Some(found))
    }

    /// Up to `q.limit` runs matching `q` from index entries (`skip` bytes of scope prefix before each created key),
    /// in the order given.
    fn collect_page<R: RunRecord>(
        &self,
        q: &RunQuery,
        view: &Snapshot,
        skip: usize,
        entries: impl Iterator<Item = Result<(Slice, Slice), StoreError>>,
    ) -> Result<Vec<R>, StoreError> {
        let mut out = Vec::new();
        for item in entries {
            let (key, value) = item?;
            // One bad run never fails the listing: it is skipped, with a warning.
            let Some((created_at, run_id)) = key.get(skip..).and_then(keys::split_created_key)
            else {
                tracing::warn!("list_runs: skipping a malformed run index key");
                continue;
            };
            let entry: RunIndexEntry = match serde_json::from_slice(&value) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(
                        run_id,
                        "list_runs: skipping a run whose index entry cannot be read: {e}"
                    );
                    continue;
                }
            };
            if !passes(
                q,
                entry.status,
                &entry.workflow_id,
                entry.session_id.as_deref(),
                entry.root,
            ) {
                continue;
            }
            let run: R = match self.read_run(view, run_id) {
                Ok(Some(run)) => run,
                Ok(None) => continue,
                Err(StoreError::Corrupt(e)) => {
                    tracing::warn!(run_id, "list_runs: skipping an unreadable run: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            // An entry left behind by a run whose created_at changed is not its current position.
            if run.created_at() != created_at || !run.matches(q) {
                continue;
            }
            out.push(run);
            if out.len() >= q.limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every non-terminal run, in run_id order (startup recovery resumes these), and the active runs whose
    /// stored state cannot be decoded (recovery quarantines those).
    pub fn active_runs(&self) -> Result<(Vec<RunState>, Vec<UnreadableRun>), StoreError> {
        let view = self.shared().durable.view();
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for guard in view.iter(&self.shared().ks.active) {
            let key = guard.key()?;
            let Ok(run_id) = std::str::from_utf8(&key) else {
                tracing::warn!("active_runs: skipping an active run id that is not UTF-8");
                continue;
            };
            match self.read_run(&view, run_id) {
                Ok(Some(run)) => out.push(run),
                Ok(None) => {}
                Err(StoreError::Corrupt(error)) => unreadable.push(UnreadableRun {
                    run_id: run_id.to_string(),
                    error,
                    created_at: None,
                    workflow_id: None,
                    session_id: None,
                    parent_run_id: None,
                }),
                Err(e) => return Err(e),
            }
        }
        if !unreadable.is_empty() {
            self.describe_unreadable(&view, &mut unreadable)?;
        }
        Ok((out, unreadable))
    }

    /// Fills in what the indexes still know of unreadable runs (one walk of each index; only recovery
    /// of a damaged run pays for it).
    fn describe_unreadable(
        &self,
        view: &Snapshot,
        runs: &mut [UnreadableRun],
    ) -> Result<(), StoreError> {
        for guard in view.iter(&self.shared().ks.runs_by_created) {
            let (key, value) = guard.into_inner()?;
            let Some((created_at, run_id)) = keys::split_created_key(&key) else {
                continue;
            };
            let Some(u) = runs.iter_mut().find(|u| u.run_id == run_id) else {
                continue;
            };
            if let Ok(entry) = serde_json::from_slice::<RunIndexEntry>(&value) {
                // The newest entry is the run's current position.
                if u.created_at.as_deref().is_none_or(|c| c < created_at) {
                    u.created_at = Some(created_at.to_string());
                    u.workflow_id = Some(entry.workflow_id);
                    u.session_id = entry.session_id;
                }
            }
        }
        for guard in view.iter(&self.shared().ks.children) {
            let key = guard.key()?;
            let Some((parent, child)) = keys::split_created_key(&key) else {
                continue;
            };
            if let Some(u) = runs.iter_mut().find(|u| u.run_id == child) {
                u.parent_run_id = Some(parent.to_string());
            }
        }
        Ok(())
    }

    /// Ids of the runs whose parent is `parent`, in run_id order.
    pub fn child_run_ids(&self, parent: &str) -> Result<Vec<String>, StoreError> {
        if keys::check_id("parent_run_id", parent).is_err() {
            return Ok(Vec::new());
        }
        let view = self.shared().durable.view();
        let prefix = keys::child_prefix(parent);
        let mut out = Vec::new();
        for guard in view.prefix(&self.shared().ks.children, &prefix) {
            let key = guard.key()?;
            let child = std::str::from_utf8(&key[prefix.len()..]).map_err(|_| {
                StoreError::Corrupt(format!("a child id of run {parent} is not UTF-8"))
            })?;
            out.push(child.to_string());
        }
        Ok(out)
    }

    fn read_run<R: RunRecord>(
        &self,
        view: &Snapshot,
        run_id: &str,
    ) -> Result<Option<R>, StoreError> {
        match view.get(&self.shared().ks.runs, run_id.as_bytes())? {
            Some(bytes) => super::codec::decode_run_as(run_id, &bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// Whether a run with these fields (from its index entry or its stored state) passes the listing's filters.
fn passes(
    q: &RunQuery,
    status: crate::run::RunStatus,
    workflow_id: &str,
    session_id: Option<&str>,
    root: bool,
) -> bool {
    q.status.is_none_or(|s| s == status)
        && q.workflow_id.as_deref().is_none_or(|w| w == workflow_id)
        && q.session_id
            .as_deref()
            .is_none_or(|s| session_id == Some(s))
        && (!q.root_only || root)
}

/// Fills the per-session and per-workflow indexes from `runs_by_created` once, for a store written before they
/// existed; later every run write keeps them (see `committer::write_ops`).
pub(crate) fn build_scope_indexes(
    db: &fjall::Database,
    ks: &keys::Keyspaces,
) -> Result<(), StoreError> {
    if ks.state.get(keys::SCOPE_INDEXES_BUILT)?.is_some() {
        return Ok(());
    }
    let mut wb = db.batch();
    let mut indexed = 0usize;
    for guard in ks.runs_by_created.iter() {
        let (key, value) = guard.into_inner()?;
        if let Ok(entry) = serde_json::from_slice::<RunIndexEntry>(&value) {
            super::committer::write_scoped(ks, &mut wb, &entry, &key, &value);
            indexed += 1;
        }
    }
    wb.insert(&ks.state, keys::SCOPE_INDEXES_BUILT, [1u8]);
    wb.commit()
        .and_then(|()| db.persist(fjall::PersistMode::SyncData))
        .map_err(|e| StoreError::Db(format!("cannot build the run indexes: {e}")))?;
    if indexed > 0 {
        tracing::info!("indexed the sessions and workflows of {indexed} stored runs");
    }
    Ok(())
}

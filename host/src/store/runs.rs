//! Run reads: by id, listed newest first, active runs and children. All read the durable snapshot.

use fjall::{Readable, Snapshot};

use super::batch::RunIndexEntry;
use super::{RunQuery, Store, StoreError, keys};
use crate::run::RunState;

impl Store {
    /// The durable state of a run.
    pub fn get_run(&self, run_id: &str) -> Result<Option<RunState>, StoreError> {
        if keys::check_id("run_id", run_id).is_err() {
            return Ok(None);
        }
        let view = self.shared().durable.view();
        self.read_run(&view, run_id)
    }

    /// Most recent first (by created_at, then run_id), filtered; walks the `runs_by_created` index backwards and
    /// decodes only runs whose index entry passes the filters.
    pub fn list_runs(&self, q: &RunQuery) -> Result<Vec<RunState>, StoreError> {
        let mut out = Vec::new();
        if q.limit == 0 {
            return Ok(out);
        }
        let view = self.shared().durable.view();
        for guard in view.iter(&self.shared().ks.runs_by_created).rev() {
            let (key, value) = guard.into_inner()?;
            let (created_at, run_id) = keys::split_created_key(&key).ok_or_else(|| {
                StoreError::Corrupt("a runs_by_created key is malformed".to_string())
            })?;
            let entry: RunIndexEntry = serde_json::from_slice(&value)
                .map_err(|e| StoreError::Corrupt(format!("index entry of run {run_id}: {e}")))?;
            if !entry_matches(q, &entry) {
                continue;
            }
            let Some(run) = self.read_run(&view, run_id)? else {
                continue;
            };
            // An entry left behind by a run whose created_at changed is not its current position.
            if run.created_at != created_at || !run_matches(q, &run) {
                continue;
            }
            out.push(run);
            if out.len() >= q.limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every non-terminal run, in run_id order (startup recovery resumes these).
    pub fn active_runs(&self) -> Result<Vec<RunState>, StoreError> {
        let view = self.shared().durable.view();
        let mut out = Vec::new();
        for guard in view.iter(&self.shared().ks.active) {
            let key = guard.key()?;
            let run_id = std::str::from_utf8(&key)
                .map_err(|_| StoreError::Corrupt("an active run id is not UTF-8".to_string()))?;
            if let Some(run) = self.read_run(&view, run_id)? {
                out.push(run);
            }
        }
        Ok(out)
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

    fn read_run(&self, view: &Snapshot, run_id: &str) -> Result<Option<RunState>, StoreError> {
        match view.get(&self.shared().ks.runs, run_id.as_bytes())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("run {run_id}: {e}"))),
            None => Ok(None),
        }
    }
}

fn entry_matches(q: &RunQuery, e: &RunIndexEntry) -> bool {
    q.status.is_none_or(|s| s == e.status)
        && q.workflow_id.as_ref().is_none_or(|w| *w == e.workflow_id)
        && q.session_id
            .as_ref()
            .is_none_or(|s| e.session_id.as_ref() == Some(s))
        && (!q.root_only || e.root)
}

fn run_matches(q: &RunQuery, r: &RunState) -> bool {
    q.status.is_none_or(|s| s == r.status)
        && q.workflow_id.as_ref().is_none_or(|w| *w == r.workflow_id)
        && q.session_id
            .as_ref()
            .is_none_or(|s| r.session_id.as_ref() == Some(s))
        && (!q.root_only || r.parent_run_id.is_none())
}

//! Ledger reads: pages by cursor (a seek, never a scan), durable lengths and head watchers.

use fjall::Readable;
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::{LedgerEntry, RunHead, Store, StoreError, keys};

impl Store {
    /// Records with seq in (after, after+limit], never past the durable head; empty for an unknown run.
    pub fn ledger_after(
        &self,
        run_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        if limit == 0 || keys::check_id("run_id", run_id).is_err() {
            return Ok(Vec::new());
        }
        let shared = self.shared();
        // Head first, view second: the view is at least as new as the head, so every seq up to it is there.
        let head = shared.durable.head(&shared.ks, run_id).ledger_len;
        if after >= head {
            return Ok(Vec::new());
        }
        let last = after
            .saturating_add(u64::try_from(limit).unwrap_or(u64::MAX))
            .min(head);
        let view = shared.durable.view();
        let range = keys::ledger_key(run_id, after + 1)..=keys::ledger_key(run_id, last);
        let mut out = Vec::with_capacity(usize::try_from(last - after).unwrap_or(0));
        for guard in view.range(&shared.ks.ledger, range) {
            let (key, value) = guard.into_inner()?;
            let seq = keys::ledger_key_seq(&key).ok_or_else(|| {
                StoreError::Corrupt(format!("ledger key of run {run_id} has no seq"))
            })?;
            let text = std::str::from_utf8(&value).map_err(|_| {
                StoreError::Corrupt(format!("ledger record {seq} of run {run_id} is not UTF-8"))
            })?;
            let json = RawValue::from_string(text.to_string()).map_err(|e| {
                StoreError::Corrupt(format!("ledger record {seq} of run {run_id}: {e}"))
            })?;
            out.push(LedgerEntry { seq, json });
        }
        Ok(out)
    }

    /// Durable number of ledger records of a run (0 if unknown).
    pub fn ledger_len(&self, run_id: &str) -> u64 {
        let shared = self.shared();
        shared.durable.head(&shared.ks, run_id).ledger_len
    }

    /// Changes whenever the run's durable ledger length or status does; cheap to call many times.
    pub fn watch_run(&self, run_id: &str) -> watch::Receiver<RunHead> {
        let shared = self.shared();
        shared.durable.watch(&shared.ks, run_id)
    }
}

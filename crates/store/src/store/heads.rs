//! The durable view: the snapshot readers use and the per-run heads that watchers follow.
//!
//! Both only move after an fsync, and both move under one lock, so a head loaded lazily from the snapshot can never
//! miss (or run ahead of) a committer update.

use std::collections::HashMap;
use std::sync::Arc;

use fjall::{Readable, Snapshot};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::keys::{self, Keyspaces};
use super::{RunHead, StoreError};
use crate::run::RunStatus;

/// Heads are cached for at least this many runs before unwatched ones are dropped (they reload on demand).
const MIN_CACHED_HEADS: usize = 4096;

/// What a committed group changed, applied to the heads after its fsync.
#[derive(Default)]
pub(crate) struct Changes {
    /// run_id -> new durable ledger length.
    pub ledger: HashMap<String, u64>,
    /// run_id -> new status.
    pub status: HashMap<String, RunStatus>,
    /// Seq of the last command appended.
    pub last_command: Option<u64>,
    /// Ledger records written.
    pub ledger_records: u64,
    /// Command outcomes written.
    pub outcomes: u64,
}

struct HeadMap {
    runs: HashMap<String, watch::Sender<RunHead>>,
    sweep_at: usize,
}

/// Durable snapshot + cached run heads.
pub(crate) struct Durable {
    view: RwLock<Arc<Snapshot>>,
    heads: Mutex<HeadMap>,
}

impl Durable {
    /// Starts from a snapshot taken right after opening (everything recovered is durable).
    pub fn new(snapshot: Snapshot) -> Self {
        Durable {
            view: RwLock::new(Arc::new(snapshot)),
            heads: Mutex::new(HeadMap {
                runs: HashMap::new(),
                sweep_at: MIN_CACHED_HEADS,
            }),
        }
    }

    /// The latest durable snapshot; cheap (an `Arc` clone).
    pub fn view(&self) -> Arc<Snapshot> {
        self.view.read().clone()
    }

    /// Installs the snapshot taken after a group's fsync and wakes the watchers of what changed.
    pub fn publish(&self, snapshot: Snapshot, changes: &Changes) {
        let heads = self.heads.lock();
        *self.view.write() = Arc::new(snapshot);
        // One send per run, so a watcher never observes half of a group (new records but the old status).
        let status_only = changes
            .status
            .keys()
            .filter(|run_id| !changes.ledger.contains_key(*run_id));
        let touched = changes.ledger.keys().chain(status_only);
        for run_id in touched {
            let Some(tx) = heads.runs.get(run_id) else {
                continue;
            };
            let len = changes.ledger.get(run_id).copied();
            let status = changes.status.get(run_id).copied();
            tx.send_if_modified(|h| {
                let before = *h;
                if let Some(len) = len {
                    h.ledger_len = h.ledger_len.max(len);
                }
                if status.is_some() {
                    h.status = status;
                }
                *h != before
            });
        }
    }

    /// The durable head of a run (zero/None for an unknown run).
    pub fn head(&self, ks: &Keyspaces, run_id: &str) -> RunHead {
        let mut heads = self.heads.lock();
        if let Some(tx) = heads.runs.get(run_id) {
            return *tx.borrow();
        }
        let head = self.load(ks, run_id);
        heads.insert(run_id, watch::Sender::new(head));
        head
    }

    /// A receiver that changes whenever the run's durable head does.
    pub fn watch(&self, ks: &Keyspaces, run_id: &str) -> watch::Receiver<RunHead> {
        let mut heads = self.heads.lock();
        if let Some(tx) = heads.runs.get(run_id) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(self.load(ks, run_id));
        heads.insert(run_id, tx);
        rx
    }

    /// Reads a head from the durable snapshot; callers hold the heads lock so no publish interleaves.
    fn load(&self, ks: &Keyspaces, run_id: &str) -> RunHead {
        match load_head(&self.view(), ks, run_id) {
            Ok(head) => head,
            Err(e) => {
                tracing::warn!(run_id, error = %e, "cannot load run head; assuming an empty run");
                RunHead::default()
            }
        }
    }
}

impl HeadMap {
    fn insert(&mut self, run_id: &str, tx: watch::Sender<RunHead>) {
        if self.runs.len() >= self.sweep_at {
            self.runs.retain(|_, tx| tx.receiver_count() > 0);
            self.sweep_at = MIN_CACHED_HEADS.max(self.runs.len() * 2);
        }
        self.runs.insert(run_id.to_string(), tx);
    }
}

/// The last ledger seq and the status of a run, as of `view`.
fn load_head(view: &Snapshot, ks: &Keyspaces, run_id: &str) -> Result<RunHead, StoreError> {
    if keys::check_id("run_id", run_id).is_err() {
        return Ok(RunHead::default());
    }
    let ledger_len = match view
        .prefix(&ks.ledger, keys::ledger_prefix(run_id))
        .next_back()
    {
        Some(guard) => {
            let key = guard.key()?;
            keys::ledger_key_seq(&key).ok_or_else(|| {
                StoreError::Corrupt(format!("ledger key of run {run_id} has no seq"))
            })?
        }
        None => 0,
    };
    let status = match view.get(&ks.runs, run_id.as_bytes())? {
        Some(bytes) => Some(super::codec::decode_status(run_id, &bytes)?),
        None => None,
    };
    Ok(RunHead { ledger_len, status })
}

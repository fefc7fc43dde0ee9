//! The replicated store: the same fjall store, fed by a log instead of written by its own committer.
//!
//! In cluster mode every write goes to a replicated, totally ordered log (the JetStream backend lives in its own
//! crate and implements [`Log`]). Every node tails that log and applies each entry, in log order, to its local fjall
//! store, which is then a materialized replica: reads are local and identical to the embedded store's.
//!
//! Two kinds of writers append:
//! - the **owner** (the runner holding the lease) appends its rounds with [`Log::append_owned`], fenced: once another
//!   owner has appended (a takeover marker), every append of the stale one is refused with `StoreError::Fenced`;
//! - **intake** (any node) appends what needs no owner, with [`Log::append_intake`]: new runs, commands, create-once
//!   meta values. Intake never touches what an owner writes (existing runs, ledgers, outcomes, cursors), so the two
//!   streams of writes commute and the log's order decides everything.
//!
//! A write is acknowledged after the log acknowledged it (replicated, fsynced by a quorum) **and** the local replica
//! applied it, so a node reads its own writes.

mod apply;
pub(crate) mod committer;
pub(crate) mod entry;
#[doc(hidden)]
pub mod memlog;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::keys::{self, Keyspaces};
use super::{Store, StoreError};
use crate::run::RunState;

/// Key of the last applied log position in the `state` keyspace.
const APPLIED_KEY: &[u8] = b"log_applied";
/// How long a writer waits for its own acknowledged entry to be applied locally before reporting the replica stuck.
const APPLY_WAIT: Duration = Duration::from_secs(30);

/// What a replica tells its listener after applying an entry (so the runner and the flow registry learn of
/// changes made by other nodes).
#[derive(Debug, Clone)]
pub enum IntakeEvent {
    /// Non-terminal runs created by an intake entry, in the order they were written (listeners first).
    Runs(Vec<RunState>),
    /// A command was appended.
    Command,
    /// Meta keys written or deleted (by any writer).
    Meta(Vec<String>),
}

/// Receives [`IntakeEvent`]s, on the applying thread, after the change is readable in the store it is given.
pub type IntakeListener = Arc<dyn Fn(&Store, IntakeEvent) + Send + Sync>;

/// The replica side of a store in cluster mode.
pub(crate) struct Replica {
    log: Arc<dyn Log>,
    applied: Mutex<u64>,
    applied_cv: Condvar,
    listener: RwLock<Option<IntakeListener>>,
    /// One applier at a time (a tailer restarted by its owner must not overlap the old one).
    apply_lock: Mutex<()>,
}

impl Replica {
    pub(crate) fn new(log: Arc<dyn Log>, ks: &Keyspaces) -> Result<Self, StoreError> {
        let applied = match ks.state.get(APPLIED_KEY)? {
            Some(bytes) => keys::decode_seq(&bytes).ok_or_else(|| {
                StoreError::Corrupt("the applied log position is not 8 bytes".into())
            })?,
            None => 0,
        };
        Ok(Replica {
            log,
            applied: Mutex::new(applied),
            applied_cv: Condvar::new(),
            listener: RwLock::new(None),
            apply_lock: Mutex::new(()),
        })
    }

    /// Blocks until the entry at `seq` is applied locally.
    pub(crate) fn wait_applied(&self, seq: u64) -> Result<(), StoreError> {
        let deadline = Instant::now() + APPLY_WAIT;
        let mut applied = self.applied.lock();
        while *applied < seq {
            if self
                .applied_cv
                .wait_until(&mut applied, deadline)
                .timed_out()
            {
                return Err(StoreError::Unavailable(format!(
                    "log entry {seq} was acknowledged but not applied here within {}s (applied: {})",
                    APPLY_WAIT.as_secs(),
                    *applied
                )));
            }
        }
        Ok(())
    }
}

impl Store {
    /// Cluster mode: sets who hears of changes applied from the log (replacing any earlier listener).
    /// Without a replica this does nothing: one process makes every change itself.
    pub fn set_intake_listener(&self, listener: IntakeListener) {
        if let Some(r) = &self.shared().replica {
            *r.listener.write() = Some(listener);
        }
    }

    /// Cluster mode: this store as the target of a log tailer (`None` for an embedded store).
    pub fn applier(&self) -> Option<Arc<dyn Applier>> {
        self.shared().replica.as_ref()?;
        Some(Arc::new(self.clone()))
    }

    /// Cluster mode: blocks until every entry up to `seq` is applied here (read-your-writes across nodes).
    pub fn wait_applied(&self, seq: u64) -> Result<(), StoreError> {
        match &self.shared().replica {
            Some(r) => r.wait_applied(seq),
            None => Ok(()),
        }
    }
}

/// Where an intake entry landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The entry's log position (the original one for a duplicate).
    pub seq: u64,
    /// True when the dedup id was already in the log: nothing new was appended.
    pub duplicate: bool,
}

/// What a log entry is, as the log tells the applier (the entry bytes alone do not say it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A group of owner batches (fenced appends).
    Owned,
    /// An intake entry: new runs, a command, a create-once meta value.
    Intake,
    /// A takeover marker: no change, only a position (the new owner's first append).
    Marker,
}

/// The replicated log a clustered store writes to. Implementations block the calling thread (the store calls them
/// from its committer thread, never from an async task).
pub trait Log: Send + Sync + 'static {
    /// Appends an owner entry, fenced on the owner's last append. Returns the entry's log position once the
    /// replicas acknowledged it; `StoreError::Fenced` when another owner appended since (this process lost the
    /// shard and must stop writing; once fenced, a log stays fenced until this process takes over again),
    /// `StoreError::Unavailable` when the log cannot be reached in time.
    ///
    /// Each shard has its own journal and fence: `shard` is the shard whose owner writes (0 with one shard).
    fn append_owned(&self, shard: u32, entry: Vec<u8>) -> Result<u64, StoreError>;

    /// Appends owner entries of several shards and returns each one's result in order. A log that can have several
    /// appends in flight overrides this (the default appends one after the other), so a round that touched several
    /// shards costs one round trip. Entries of one shard keep their order.
    fn append_owned_many(&self, entries: Vec<(u32, Vec<u8>)>) -> Vec<Result<u64, StoreError>> {
        entries
            .into_iter()
            .map(|(shard, entry)| self.append_owned(shard, entry))
            .collect()
    }

    /// Appends an intake entry. `dedup_id` makes a retried append land once: a duplicate (from this node or
    /// another, within the log's dedup window) answers the original position with `duplicate: true`. Returns once
    /// the replicas acknowledged it.
    fn append_intake(&self, dedup_id: &str, entry: Vec<u8>) -> Result<Position, StoreError>;

    /// Appends several intake entries, each with its own dedup id, and returns each one's result in order. A log
    /// that can have many appends in flight at once overrides this (the default appends one after the other), so a
    /// group of starts and commands costs one round trip instead of one each.
    fn append_intake_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Vec<Result<Position, StoreError>> {
        entries
            .into_iter()
            .map(|(id, entry)| self.append_intake(&id, entry))
            .collect()
    }
}

/// The side of a replica that a log tailer feeds: the tailer delivers every entry after [`Applier::applied`], in
/// log order, exactly once per process lifetime (entries at or below `applied` are ignored if delivered again).
pub trait Applier: Send + Sync + 'static {
    /// Log position of the last entry applied and stored locally; 0 before the first. The tailer resumes after it.
    fn applied(&self) -> u64;

    /// Applies entry `seq` of the log. An error means this replica cannot follow the log any more (its disk failed,
    /// or the entry is not one this build understands); the process must stop rather than serve stale reads.
    fn apply(&self, seq: u64, kind: EntryKind, entry: &[u8]) -> Result<(), StoreError>;
}

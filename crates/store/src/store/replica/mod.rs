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



use super::StoreError;

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
    /// shard and must stop writing), `StoreError::Unavailable` when the log cannot be reached in time.
    fn append_owned(&self, entry: Vec<u8>) -> Result<u64, StoreError>;

    /// Appends an intake entry. `dedup_id` makes a retried append land once (a duplicate answers the original
    /// position). Returns the entry's log position once the replicas acknowledged it.
    fn append_intake(&self, dedup_id: &str, entry: Vec<u8>) -> Result<u64, StoreError>;
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

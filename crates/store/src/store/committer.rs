//! The single writer: group commit with one fsync per group.
//!
//! Requests queue on a channel. The committer drains what is queued, stages every request into ONE fjall write batch
//! in arrival order, commits it, fsyncs once, and only then publishes the new durable view, wakes watchers and
//! acknowledges. fjall's journal recovers a prefix of whole batches, so acknowledged groups survive a crash intact
//! and in order. After a failed write fjall refuses further writes; the committer then fails every later request
//! with the same error instead of acknowledging anything.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use fjall::{OwnedWriteBatch, PersistMode};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use tokio::sync::oneshot;

use super::batch::{Batch, Op, RunIndexEntry};
use super::heads::Changes;
use super::keys::{self, Keyspaces};
use super::{Appended, NewCommand, Shared, StoreError};

/// Upper bound of requests folded into one fjall batch (the rest wait for the next group).
const MAX_GROUP: usize = 1024;
/// The committer forgets its cached ledger lengths beyond this many runs (they are re-read on demand).
const MAX_CACHED_LENS: usize = 65_536;

/// Value of index entries whose key says everything.
const EMPTY: [u8; 0] = [];

/// Where a result goes: a blocked thread or an awaiting task.
pub(crate) enum Reply<T> {
    Blocking(mpsc::SyncSender<Result<T, StoreError>>),
    Async(oneshot::Sender<Result<T, StoreError>>),
}

impl<T> Reply<T> {
    /// A reply channel for a blocking caller.
    pub fn blocking() -> (Self, mpsc::Receiver<Result<T, StoreError>>) {
        let (tx, rx) = mpsc::sync_channel(1);
        (Reply::Blocking(tx), rx)
    }

    /// A reply channel for an async caller.
    pub fn future() -> (Self, oneshot::Receiver<Result<T, StoreError>>) {
        let (tx, rx) = oneshot::channel();
        (Reply::Async(tx), rx)
    }

    pub(crate) fn send(self, result: Result<T, StoreError>) {
        // A caller that stopped waiting (dropped ticket, cancelled future) is not an error.
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Work for the committer.
pub(crate) enum Request {
    Write {
        batch: Batch,
        reply: Reply<()>,
    },
    Command {
        cmd: NewCommand,
        reply: Reply<Appended>,
    },
}

/// A request whose bytes are in the group's batch (or that was refused while staging).
enum Staged {
    Write(Reply<()>, Result<(), StoreError>),
    Command(Reply<Appended>, Result<Appended, StoreError>),
}

impl Staged {
    fn finish(self, group_error: Option<&StoreError>) {
        match (self, group_error) {
            (Staged::Write(reply, Ok(())), Some(e)) => reply.send(Err(e.clone())),
            (Staged::Write(reply, result), _) => reply.send(result),
            (Staged::Command(reply, Ok(_)), Some(e)) => reply.send(Err(e.clone())),
            (Staged::Command(reply, result), _) => reply.send(result),
        }
    }
}

/// Starts the committer thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    next_command_seq: u64,
) -> Result<(mpsc::Sender<Request>, JoinHandle<()>), StoreError> {
    let (tx, rx) = mpsc::channel();
    let committer = Committer {
        shared,
        rx,
        next_command_seq,
        lens: HashMap::new(),
        failed: None,
        group_meta: HashSet::new(),
    };
    let handle = std::thread::Builder::new()
        .name("store-committer".to_string())
        .spawn(move || committer.run())
        .map_err(|e| StoreError::io("cannot start the store committer thread", &e))?;
    Ok((tx, handle))
}

struct Committer {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    /// Seq the next new command gets.
    next_command_seq: u64,
    /// Ledger lengths as written by this committer (all durable by the time the next group starts).
    lens: HashMap<String, u64>,
    /// Set after a failed write; fjall is poisoned then, so nothing may be acknowledged any more.
    failed: Option<StoreError>,
    /// Meta keys written by the group being staged (guards see them before they are committed).
    group_meta: HashSet<String>,
}

impl Committer {
    fn run(mut self) {
        // Ends when every `Store` handle is gone (the channel disconnects).
        let mut last_group = 0;
        while let Ok(first) = self.rx.recv() {
            if last_group > 1 {
                // Writers just acknowledged are about to submit again: let them run before the group closes.
                std::thread::yield_now();
            }
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match self.rx.try_recv() {
                    Ok(req) => group.push(req),
                    Err(_) => break,
                }
            }
            last_group = group.len();
            self.process(group);
        }
    }

    fn process(&mut self, group: Vec<Request>) {
        if let Some(err) = self.failed.clone() {
            for req in group {
                match req {
                    Request::Write { reply, .. } => reply.send(Err(err.clone())),
                    Request::Command { reply, .. } => reply.send(Err(err.clone())),
                }
            }
            return;
        }
        let seq_before = self.next_command_seq;
        self.group_meta.clear();
        let mut wb = self.shared.db.batch();
        let mut changes = Changes::default();
        let mut new_ids: HashMap<String, u64> = HashMap::new();
        let mut staged = Vec::with_capacity(group.len());
        for req in group {
            staged.push(match req {
                Request::Write { batch, reply } => {
                    let result = self.stage_batch(&mut wb, batch, &mut changes);
                    Staged::Write(reply, result)
                }
                Request::Command { cmd, reply } => {
                    let result = self.stage_command(&mut wb, cmd, &mut new_ids, &mut changes);
                    Staged::Command(reply, result)
                }
            });
        }

        let wrote = !wb.is_empty();
        let requests = staged.len();
        let result = if wrote {
            let started = std::time::Instant::now();
            let committed = wb.commit();
            let synced = std::time::Instant::now();
            committed
                .and_then(|()| self.shared.db.persist(PersistMode::SyncData))
                .map(|()| {
                    crate::metrics::group_committed(
                        requests,
                        started.elapsed(),
                        Some(synced.elapsed()),
                    );
                    crate::metrics::ledger_appended(changes.ledger_records);
                })
                .map_err(|e| StoreError::Db(format!("group commit failed: {e}")))
        } else {
            Ok(())
        };

        match result {
            Ok(()) => {
                if wrote {
                    // Single writer: the snapshot taken now is exactly what was just fsynced.
                    self.shared
                        .durable
                        .publish(self.shared.db.snapshot(), &changes);
                }
                self.shared.wake_watchers(&changes);
                for s in staged {
                    s.finish(None);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "store write failed; refusing all further writes");
                self.failed = Some(err.clone());
                self.next_command_seq = seq_before;
                self.lens.clear();
                for s in staged {
                    s.finish(Some(&err));
                }
            }
        }
    }

    /// Checks a batch and adds its items to the group; a refused batch adds nothing.
    fn stage_batch(
        &mut self,
        wb: &mut OwnedWriteBatch,
        batch: Batch,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        if let Some(err) = batch.error {
            return Err(err);
        }
        if let Some(key) = &batch.guard {
            // Single writer: the live keyspace holds every earlier group; this group's own writes are tracked.
            if self.group_meta.contains(key) || self.shared.ks.meta.get(key.as_bytes())?.is_some() {
                return Ok(());
            }
        }
        // Ledger continuity first, so a refused batch leaves no trace.
        let shared = self.shared.clone();
        let lens = check_ledger(&batch.ops, &mut self.lens, |run_id, seq| {
            stored_len_before(&shared, run_id, seq)
        })?;
        for (run_id, len) in lens {
            changes.ledger.insert(run_id, len);
        }
        for op in &batch.ops {
            if let Op::Meta { key, .. } = op {
                self.group_meta.insert(key.clone());
            }
        }
        write_ops(&self.shared.ks, wb, batch.ops, changes);
        Ok(())
    }

    /// Assigns the next seq to a new command id, or returns the original seq of a known one.
    fn stage_command(
        &mut self,
        wb: &mut OwnedWriteBatch,
        cmd: NewCommand,
        new_ids: &mut HashMap<String, u64>,
        changes: &mut Changes,
    ) -> Result<Appended, StoreError> {
        let record = super::commands::new_record(cmd, self.next_command_seq)?;
        let command_id = record.command_id.clone();
        let known = match new_ids.get(&command_id) {
            Some(seq) => Some(*seq),
            None => match self.shared.ks.command_ids.get(command_id.as_bytes())? {
                Some(bytes) => Some(keys::decode_seq(&bytes).ok_or_else(|| {
                    StoreError::Corrupt(format!("seq of command {command_id} is not 8 bytes"))
                })?),
                None => None,
            },
        };
        if let Some(seq) = known {
            return Ok(Appended {
                seq,
                duplicate: true,
            });
        }

        let seq = self.next_command_seq;
        let json = serde_json::to_vec(&record).map_err(|e| {
            StoreError::Invalid(format!(
                "command {} cannot be encoded: {e}",
                record.command_id
            ))
        })?;
        let ks = &self.shared.ks;
        wb.insert(&ks.commands, keys::seq_bytes(seq), json);
        wb.insert(
            &ks.command_ids,
            record.command_id.as_bytes(),
            keys::seq_bytes(seq),
        );
        self.next_command_seq += 1;
        new_ids.insert(record.command_id, seq);
        changes.last_command = Some(seq);
        Ok(Appended {
            seq,
            duplicate: false,
        })
    }
}

/// Checks that the batch's ledger appends continue each run's ledger: `known` caches lengths this writer already
/// wrote (updated on success), `stored(run_id, seq)` reads one from the store for an append of `seq`. Returns the
/// new length of every run appended to.
pub(crate) fn check_ledger(
    ops: &[Op],
    known: &mut HashMap<String, u64>,
    mut stored: impl FnMut(&str, u64) -> Result<u64, StoreError>,
) -> Result<HashMap<String, u64>, StoreError> {
    let mut lens: HashMap<String, u64> = HashMap::new();
    for op in ops {
        if let Op::Ledger { run_id, seq, .. } = op {
            let prev = match lens.get(run_id).or_else(|| known.get(run_id)) {
                Some(len) => *len,
                None => stored(run_id, *seq)?,
            };
            if *seq != prev + 1 {
                return Err(StoreError::LedgerSeq {
                    run_id: run_id.clone(),
                    expected: prev + 1,
                    got: *seq,
                });
            }
            lens.insert(run_id.clone(), *seq);
        }
    }
    if known.len() > MAX_CACHED_LENS {
        known.clear();
    }
    for (run_id, len) in &lens {
        known.insert(run_id.clone(), *len);
    }
    Ok(lens)
}

/// A run's ledger length as stored now, read for an append of `seq`. Live read, as [`stored_ledger_len`].
///
/// Ledgers are contiguous from seq 1 (this check is what keeps them so), so "record `seq - 1` exists and record
/// `seq` does not" means the length is `seq - 1`. Those are point reads, which the tables' filters answer without
/// touching their data; the prefix scan of `stored_ledger_len` opens every table and grew with the store (a
/// run's first append, the common case, pays it). The scan is still made when the point reads disagree, so a
/// refused append reports the real length.
pub(crate) fn stored_len_before(
    shared: &Shared,
    run_id: &str,
    seq: u64,
) -> Result<u64, StoreError> {
    let ledger = &shared.ks.ledger;
    if seq >= 1
        && !ledger.contains_key(keys::ledger_key(run_id, seq))?
        && (seq == 1 || ledger.contains_key(keys::ledger_key(run_id, seq - 1))?)
    {
        return Ok(seq - 1);
    }
    stored_ledger_len(shared, run_id)
}

/// A run's ledger length as stored now. Live read: callers are the store's only writer, or wait for their own
/// writes to be applied before the next read.
pub(crate) fn stored_ledger_len(shared: &Shared, run_id: &str) -> Result<u64, StoreError> {
    match shared
        .ks
        .ledger
        .prefix(keys::ledger_prefix(run_id))
        .next_back()
    {
        Some(guard) => {
            let key = guard.key()?;
            keys::ledger_key_seq(&key).ok_or_else(|| {
                StoreError::Corrupt(format!("ledger key of run {run_id} has no seq"))
            })
        }
        None => Ok(0),
    }
}

/// Writes a run's entries in the per-session and per-workflow indexes.
pub(crate) fn write_scoped(
    ks: &Keyspaces,
    wb: &mut OwnedWriteBatch,
    entry: &RunIndexEntry,
    created_key: &[u8],
    index: &[u8],
) {
    let scopes = [
        (&ks.runs_by_session, entry.session_id.as_deref()),
        (&ks.runs_by_workflow, Some(entry.workflow_id.as_str())),
    ];
    for (keyspace, scope) in scopes {
        if let Some(key) = scope.and_then(|s| keys::scoped_key(s, created_key)) {
            wb.insert(keyspace, key, index.to_vec());
        }
    }
}

/// Adds checked ops to a write batch and notes what watchers must learn once it is durable.
pub(crate) fn write_ops(
    ks: &Keyspaces,
    wb: &mut OwnedWriteBatch,
    ops: Vec<Op>,
    changes: &mut Changes,
) {
    for op in ops {
        match op {
            Op::Run {
                run_id,
                json,
                created_key,
                index,
                entry,
                status,
                parent,
            } => {
                wb.insert(&ks.runs, run_id.as_bytes(), json);
                // The session and workflow indexes are derived here, where every writer (committer, replica
                // applier) passes, so the ops and the cluster's entry format stay as they are.
                let entry = entry.or_else(|| serde_json::from_slice::<RunIndexEntry>(&index).ok());
                if let Some(entry) = entry {
                    write_scoped(ks, wb, &entry, &created_key, &index);
                }
                if status.is_terminal() {
                    wb.remove(&ks.active, run_id.as_bytes());
                } else {
                    // The run's index key: a listing of running or waiting runs walks only the active set.
                    wb.insert(&ks.active, run_id.as_bytes(), created_key.clone());
                }
                wb.insert(&ks.runs_by_created, created_key, index);
                if let Some(parent) = parent {
                    wb.insert(&ks.children, keys::child_key(&parent, &run_id), EMPTY);
                }
                changes.status.insert(run_id, status);
            }
            Op::Ledger { run_id, seq, json } => {
                wb.insert(&ks.ledger, keys::ledger_key(&run_id, seq), json);
                changes.ledger_records += 1;
                let len = changes.ledger.entry(run_id).or_insert(0);
                *len = (*len).max(seq);
            }
            Op::Outcome { command_id, json } => {
                wb.insert(&ks.outcomes, command_id.as_bytes(), json);
                changes.outcomes += 1;
            }
            Op::Cursor(seq) => {
                wb.insert(&ks.state, keys::COMMAND_CURSOR, keys::seq_bytes(seq));
            }
            Op::Meta { key, value } => {
                wb.insert(&ks.meta, key.as_bytes(), value);
            }
            Op::DeleteMeta { key } => {
                wb.remove(&ks.meta, key.as_bytes());
            }
        }
    }
}

//! Applying log entries to the local replica: the only writer of a clustered store's fjall database.

use fjall::PersistMode;

use super::entry::{self, Intake};
use super::{APPLIED_KEY, Applier, EntryKind, IntakeEvent, Replica};
use crate::run::RunState;
use crate::store::batch::Op;
use crate::store::codec;
use crate::store::committer::write_ops;
use crate::store::heads::Changes;
use crate::store::{Store, StoreError, keys};

impl Applier for Store {
    fn applied(&self) -> u64 {
        self.replica().map(|r| *r.applied.lock()).unwrap_or(0)
    }

    fn apply(&self, seq: u64, kind: EntryKind, bytes: &[u8]) -> Result<(), StoreError> {
        let replica = self.replica().ok_or(StoreError::Closed)?;
        let _one_applier = replica.apply_lock.lock();
        if seq <= *replica.applied.lock() {
            return Ok(());
        }
        let shared = self.shared();
        let ks = &shared.ks;
        let listening = replica.listener.read().is_some();
        let mut wb = shared.db.batch();
        let mut changes = Changes::default();
        let mut events = Vec::new();
        match kind {
            EntryKind::Marker => {}
            EntryKind::Owned => {
                for ops in entry::decode_owned(bytes)? {
                    note_meta(&ops, &mut events);
                    write_ops(ks, &mut wb, ops, &mut changes);
                }
            }
            EntryKind::Intake => match entry::decode_intake(bytes)? {
                Intake::Batch { guard, ops } => {
                    // The applier is the only writer, so the live keyspace holds every earlier entry.
                    let blocked = match &guard {
                        Some(key) => ks.meta.get(key.as_bytes())?.is_some(),
                        None => false,
                    };
                    if !blocked {
                        if listening {
                            let runs = new_runs(&ops)?;
                            if !runs.is_empty() {
                                events.push(IntakeEvent::Runs(runs));
                            }
                        }
                        note_meta(&ops, &mut events);
                        write_ops(ks, &mut wb, ops, &mut changes);
                    }
                }
                Intake::Command(mut record) => {
                    if ks.command_ids.get(record.command_id.as_bytes())?.is_none() {
                        record.seq = seq;
                        let json = serde_json::to_vec(&record).map_err(|e| {
                            StoreError::Invalid(format!("command {}: {e}", record.command_id))
                        })?;
                        wb.insert(&ks.commands, keys::seq_bytes(seq), json);
                        wb.insert(
                            &ks.command_ids,
                            record.command_id.as_bytes(),
                            keys::seq_bytes(seq),
                        );
                        changes.last_command = Some(seq);
                        events.push(IntakeEvent::Command);
                    }
                }
            },
        }
        wb.insert(&ks.state, APPLIED_KEY, keys::seq_bytes(seq));
        // No fsync: the log is the durable copy. After a crash fjall recovers a prefix of whole batches, each with
        // its position, and the tailer resumes after the last one.
        wb.commit()
            .and_then(|()| shared.db.persist(PersistMode::Buffer))
            .map_err(|e| StoreError::Db(format!("applying log entry {seq}: {e}")))?;
        shared.durable.publish(shared.db.snapshot(), &changes);
        crate::metrics::ledger_appended(changes.ledger_records);
        shared.wake_watchers(&changes);
        // Waiters wake before the listener runs: a thread waiting for this position may hold what the listener
        // needs (a runner loop committing in cluster mode waits for its own entry), so the listener's events can
        // arrive just after `wait_applied` returns.
        *replica.applied.lock() = seq;
        replica.applied_cv.notify_all();
        if !events.is_empty()
            && let Some(listener) = replica.listener.read().clone()
        {
            for event in events {
                listener(self, event);
            }
        }
        Ok(())
    }
}

impl Store {
    fn replica(&self) -> Option<&Replica> {
        self.shared().replica.as_ref()
    }
}

/// The non-terminal runs an intake batch creates, decoded for the listener.
fn new_runs(ops: &[Op]) -> Result<Vec<RunState>, StoreError> {
    let mut runs = Vec::new();
    for op in ops {
        if let Op::Run {
            run_id,
            json,
            status,
            ..
        } = op
            && !status.is_terminal()
        {
            runs.push(codec::decode_run(run_id, json)?);
        }
    }
    Ok(runs)
}

fn note_meta(ops: &[Op], events: &mut Vec<IntakeEvent>) {
    let keys: Vec<String> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Meta { key, .. } | Op::DeleteMeta { key } => Some(key.clone()),
            _ => None,
        })
        .collect();
    if !keys.is_empty() {
        events.push(IntakeEvent::Meta(keys));
    }
}

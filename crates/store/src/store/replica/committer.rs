//! The committer of a replica: it sends writes to the log instead of the disk.
//!
//! Same contract as the embedded committer: requests queue, a group is drained, nothing is acknowledged before it is
//! durable. Owner batches of a group become ONE fenced log entry (the embedded store's one fsync per group). Intake
//! batches and commands become one entry each, because each has its own dedup id. Every request is acknowledged
//! after the log acknowledged it and the local replica applied it, so the caller reads its own write.

use std::collections::HashMap;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use super::entry;
use crate::store::batch::Batch;
use crate::store::commands::new_record;
use crate::store::committer::{Reply, Request, check_ledger, stored_ledger_len};
use crate::store::{Appended, NewCommand, Shared, StoreError, keys};

/// Upper bound of requests drained into one group.
const MAX_GROUP: usize = 1024;

/// Starts the replica's committer thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
) -> Result<(mpsc::Sender<Request>, JoinHandle<()>), StoreError> {
    let log = match &shared.replica {
        Some(r) => r.log.clone(),
        None => return Err(StoreError::Invalid("not a replica".to_string())),
    };
    let (tx, rx) = mpsc::channel();
    let committer = ReplicaCommitter {
        log,
        shared,
        lens: HashMap::new(),
    };
    let handle = std::thread::Builder::new()
        .name("store-replica-committer".to_string())
        .spawn(move || committer.run(rx))
        .map_err(|e| StoreError::io("cannot start the store committer thread", &e))?;
    Ok((tx, handle))
}

struct ReplicaCommitter {
    log: Arc<dyn super::Log>,
    shared: Arc<Shared>,
    /// Ledger lengths this owner wrote (the replica has applied them: every request waits for its apply).
    lens: HashMap<String, u64>,
}

impl ReplicaCommitter {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(req) => group.push(req),
                    Err(_) => break,
                }
            }
            self.process(group);
        }
    }

    fn process(&mut self, group: Vec<Request>) {
        let mut owned: Vec<(Batch, Reply<()>)> = Vec::new();
        for req in group {
            match req {
                Request::Write { batch, reply } => {
                    if let Some(err) = batch.error {
                        reply.send(Err(err));
                    } else if batch.intake {
                        reply.send(self.intake_batch(batch));
                    } else {
                        owned.push((batch, reply));
                    }
                }
                Request::Command { cmd, reply } => reply.send(self.command(cmd)),
            }
        }
        if !owned.is_empty() {
            self.owned(owned);
        }
    }

    /// One fenced entry for every owner batch of the group that passes its checks. Staying fenced after a
    /// takeover is the log's rule (see [`super::Log::append_owned`]), not this committer's.
    fn owned(&mut self, group: Vec<(Batch, Reply<()>)>) {
        let shared = self.shared.clone();
        let mut accepted = Vec::with_capacity(group.len());
        for (batch, reply) in group {
            match check_ledger(&batch.ops, &mut self.lens, |run_id| {
                stored_ledger_len(&shared, run_id)
            }) {
                Ok(_) => accepted.push((batch, reply)),
                Err(e) => reply.send(Err(e)),
            }
        }
        if accepted.is_empty() {
            return;
        }
        let bytes = entry::encode_owned(accepted.iter().map(|(b, _)| b.ops.as_slice()));
        let result = self.log.append_owned(bytes).and_then(|seq| self.wait(seq));
        if let Err(e) = &result {
            // What this group wrote into the length cache may not exist: read lengths from the replica again.
            self.lens.clear();
            if *e == StoreError::Fenced {
                tracing::error!(
                    "the cluster log refused an owner write: this process does not own the runs"
                );
            }
        }
        for (_, reply) in accepted {
            reply.send(result.clone());
        }
    }

    fn intake_batch(&mut self, batch: Batch) -> Result<(), StoreError> {
        let bytes = entry::encode_intake_batch(batch.guard.as_deref(), &batch.ops);
        let dedup = format!("b:{}", uuid::Uuid::new_v4().simple());
        let seq = self.log.append_intake(&dedup, bytes)?;
        self.wait(seq)
    }

    /// Appends a command; the log position of its entry is its seq. A command id already applied here answers its
    /// original seq without an append; one applied from another node in the meantime is found after the apply.
    fn command(&mut self, cmd: NewCommand) -> Result<Appended, StoreError> {
        let record = new_record(cmd, 0)?;
        if let Some(seq) = self.known_command(&record.command_id)? {
            return Ok(Appended {
                seq,
                duplicate: true,
            });
        }
        let bytes = entry::encode_intake_command(&record)?;
        let dedup = format!("c:{}", record.command_id);
        let seq = self.log.append_intake(&dedup, bytes)?;
        self.wait(seq)?;
        let stored = self.known_command(&record.command_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "command {} was applied but is not stored",
                record.command_id
            ))
        })?;
        Ok(Appended {
            seq: stored,
            duplicate: stored != seq,
        })
    }

    fn known_command(&self, command_id: &str) -> Result<Option<u64>, StoreError> {
        match self.shared.ks.command_ids.get(command_id.as_bytes())? {
            Some(bytes) => Ok(Some(keys::decode_seq(&bytes).ok_or_else(|| {
                StoreError::Corrupt(format!("seq of command {command_id} is not 8 bytes"))
            })?)),
            None => Ok(None),
        }
    }

    fn wait(&self, seq: u64) -> Result<(), StoreError> {
        self.shared
            .replica
            .as_ref()
            .map_or(Ok(()), |r| r.wait_applied(seq))
    }
}

//! The committer of a replica: it sends writes to the log instead of the disk.
//!
//! Same contract as the embedded committer: requests queue, a group is drained, nothing is acknowledged before it is
//! durable. Owner batches of a group become ONE fenced log entry (the embedded store's one fsync per group). Intake
//! batches and commands become one entry each, because each has its own dedup id. Every request is acknowledged
//! after the log acknowledged it and the local replica applied it, so the caller reads its own write.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::{Position, entry};
use crate::store::batch::Batch;
use crate::store::commands::new_record;
use crate::store::committer::{Reply, Request, check_ledger, stored_len_before};
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

/// Who waits for an intake entry.
enum Pending {
    Batch(Reply<()>),
    /// A command and its id.
    Command(Reply<Appended>, String),
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
        let (requests, started) = (group.len(), std::time::Instant::now());
        let mut owned: Vec<(Batch, Reply<()>)> = Vec::new();
        let mut intake: Vec<(String, Vec<u8>, Pending)> = Vec::new();
        for req in group {
            match req {
                Request::Write { batch, reply } => {
                    if let Some(err) = batch.error {
                        reply.send(Err(err));
                    } else if batch.ops.is_empty() {
                        // Nothing to make durable, as in the embedded store (and no ownership needed).
                        reply.send(Ok(()));
                    } else if batch.intake {
                        let bytes = entry::encode_intake_batch(batch.guard.as_deref(), &batch.ops);
                        let dedup = format!("b:{}", uuid::Uuid::new_v4().simple());
                        intake.push((dedup, bytes, Pending::Batch(reply)));
                    } else {
                        owned.push((batch, reply));
                    }
                }
                Request::Command { cmd, reply } => match self.command_entry(cmd) {
                    Ok(Ok((dedup, bytes, command_id))) => {
                        intake.push((dedup, bytes, Pending::Command(reply, command_id)));
                    }
                    Ok(Err(known)) => reply.send(Ok(known)),
                    Err(e) => reply.send(Err(e)),
                },
            }
        }
        if !intake.is_empty() {
            self.intake(intake);
        }
        if !owned.is_empty() {
            self.owned(owned);
        }
        // Appended to the log and applied here; the log's replicas made it durable (no local fsync).
        crate::metrics::group_committed(requests, started.elapsed(), None);
    }

    /// All intake entries of the group in flight at once; each is answered once it is applied here.
    fn intake(&mut self, items: Vec<(String, Vec<u8>, Pending)>) {
        let (entries, pending): (Vec<(String, Vec<u8>)>, Vec<Pending>) = items
            .into_iter()
            .map(|(id, bytes, p)| ((id, bytes), p))
            .unzip();
        let results = self.log.append_intake_many(entries);
        let last = results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|p| p.seq))
            .max();
        let applied = match last {
            Some(seq) => self.wait(seq),
            None => Ok(()),
        };
        // The same command id twice in one group: the second is a duplicate of the first, as in the embedded store.
        let mut answered: HashSet<String> = HashSet::new();
        for (result, pending) in results.into_iter().zip(pending) {
            let result = result.and_then(|pos| applied.clone().map(|()| pos));
            match pending {
                Pending::Batch(reply) => reply.send(result.map(drop)),
                Pending::Command(reply, command_id) => {
                    let first = answered.insert(command_id.clone());
                    reply.send(
                        result
                            .and_then(|pos| self.appended(&command_id, pos))
                            .map(|a| Appended {
                                seq: a.seq,
                                duplicate: a.duplicate || !first,
                            }),
                    )
                }
            }
        }
    }

    /// One fenced entry per shard for the owner batches of the group that pass their checks. Staying fenced after
    /// a takeover is the log's rule (see [`super::Log::append_owned`]), not this committer's.
    fn owned(&mut self, group: Vec<(Batch, Reply<()>)>) {
        let shared = self.shared.clone();
        let mut by_shard: std::collections::BTreeMap<u32, Vec<(Batch, Reply<()>)>> =
            std::collections::BTreeMap::new();
        for (batch, reply) in group {
            match check_ledger(&batch.ops, &mut self.lens, |run_id, seq| {
                stored_len_before(&shared, run_id, seq)
            }) {
                Ok(_) => by_shard
                    .entry(batch.shard)
                    .or_default()
                    .push((batch, reply)),
                Err(e) => reply.send(Err(e)),
            }
        }
        if by_shard.is_empty() {
            return;
        }
        // One entry per shard, all in flight at once.
        let entries: Vec<(u32, Vec<u8>)> = by_shard
            .iter()
            .map(|(shard, accepted)| {
                let ops = accepted.iter().map(|(b, _)| b.ops.as_slice());
                (*shard, entry::encode_owned(ops))
            })
            .collect();
        let results = self.log.append_owned_many(entries);
        let last = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .max()
            .copied();
        let applied = match last {
            Some(seq) => self.wait(seq),
            None => Ok(()),
        };
        for ((_, accepted), result) in by_shard.into_iter().zip(results) {
            let result = result.and_then(|_| applied.clone());
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
    }

    /// The log entry of a new command, or its original seq when this replica knows its id already.
    #[allow(clippy::type_complexity)]
    fn command_entry(
        &self,
        cmd: NewCommand,
    ) -> Result<Result<(String, Vec<u8>, String), Appended>, StoreError> {
        let record = new_record(cmd, 0)?;
        if let Some(seq) = self.known_command(&record.command_id)? {
            return Ok(Err(Appended {
                seq,
                duplicate: true,
            }));
        }
        let bytes = entry::encode_intake_command(&record)?;
        Ok(Ok((
            format!("c:{}", record.command_id),
            bytes,
            record.command_id,
        )))
    }

    /// The answer for a command whose entry is at `pos` and applied: the seq it is stored under. It is a
    /// duplicate when the log says so (another node appended the same id first, within the dedup window) or when
    /// the applier kept an earlier entry of the same id (after the window).
    fn appended(&self, command_id: &str, pos: Position) -> Result<Appended, StoreError> {
        let stored = self.known_command(command_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "command {command_id} was applied but is not stored"
            ))
        })?;
        Ok(Appended {
            seq: stored,
            duplicate: pos.duplicate || stored != pos.seq,
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

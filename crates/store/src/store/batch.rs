//! `Batch`: the unit of atomic, durable change. Encoding happens here, on the caller's thread, so the single
//! committer thread only copies bytes.

use serde::{Deserialize, Serialize};

use super::{StoreError, keys};
use crate::run::{CommandOutcome, RunState, RunStatus, StepRecord};

/// What the `runs_by_created` index keeps per run, so `list_runs` can filter without decoding whole runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunIndexEntry {
    pub status: RunStatus,
    pub workflow_id: String,
    pub session_id: Option<String>,
    pub root: bool,
}

/// One encoded change.
pub(crate) enum Op {
    Run {
        run_id: String,
        json: Vec<u8>,
        created_key: Vec<u8>,
        index: Vec<u8>,
        /// `index` decoded, when the op was built here (an op from a replicated entry has only the bytes): the
        /// committer derives the scoped indexes from it without parsing `index` back.
        entry: Option<RunIndexEntry>,
        status: RunStatus,
        parent: Option<String>,
    },
    Ledger {
        run_id: String,
        seq: u64,
        json: Vec<u8>,
    },
    Outcome {
        command_id: String,
        json: Vec<u8>,
    },
    Cursor(u64),
    Meta {
        key: String,
        value: Vec<u8>,
    },
    DeleteMeta {
        key: String,
    },
}

/// A set of changes applied all together or not at all.
///
/// Builder methods never fail; the first invalid input is remembered and the whole batch is refused at commit.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) error: Option<StoreError>,
    /// Only creates (see [`Batch::set_intake`]); any node of a cluster may commit it.
    pub(crate) intake: bool,
    /// Applied only while this meta key is absent (see [`Batch::only_if_absent`]).
    pub(crate) guard: Option<String>,
    /// The shard whose owner writes this batch (see [`Batch::set_shard`]); 0 unless set.
    pub(crate) shard: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the run state; the active, children and runs_by_created indexes follow it in the same batch.
    pub fn put_run(&mut self, run: &RunState) {
        let checked = keys::check_id("run_id", &run.run_id)
            .and_then(|()| keys::check_id("created_at", &run.created_at))
            .and_then(|()| match &run.parent_run_id {
                Some(parent) => keys::check_id("parent_run_id", parent),
                None => Ok(()),
            });
        if let Err(e) = checked {
            return self.fail(e);
        }
        let entry = RunIndexEntry {
            status: run.status,
            workflow_id: run.workflow_id.clone(),
            session_id: run.session_id.clone(),
            root: run.parent_run_id.is_none(),
        };
        let json = match super::codec::encode_run(run) {
            Ok(json) => json,
            Err(e) => return self.fail(e),
        };
        let index = match serde_json::to_vec(&entry) {
            Ok(index) => index,
            Err(e) => {
                return self.fail(StoreError::Invalid(format!(
                    "run {} cannot be encoded: {e}",
                    run.run_id
                )));
            }
        };
        self.ops.push(Op::Run {
            run_id: run.run_id.clone(),
            json,
            created_key: keys::created_key(&run.created_at, &run.run_id),
            index,
            entry: Some(entry),
            status: run.status,
            parent: run.parent_run_id.clone(),
        });
    }

    /// Appends one ledger record; `seq` must be the run's previous ledger length + 1 (checked at commit).
    pub fn append_ledger(&mut self, run_id: &str, seq: u64, rec: &StepRecord) {
        if let Err(e) = keys::check_id("run_id", run_id) {
            return self.fail(e);
        }
        match super::codec::encode_sized(rec, super::codec::RECORD_BYTES) {
            Ok(json) => self.ops.push(Op::Ledger {
                run_id: run_id.to_string(),
                seq,
                json,
            }),
            Err(e) => self.fail(StoreError::Invalid(format!(
                "ledger record {seq} of run {run_id} cannot be encoded: {e}"
            ))),
        }
    }

    /// Appends one ledger record already encoded as JSON (a [`StepRecord`]'s 16 keys, in order) by a caller that
    /// writes it straight from its parts; `seq` as for [`Batch::append_ledger`].
    pub fn append_ledger_json(&mut self, run_id: &str, seq: u64, json: Vec<u8>) {
        if let Err(e) = keys::check_id("run_id", run_id) {
            return self.fail(e);
        }
        self.ops.push(Op::Ledger {
            run_id: run_id.to_string(),
            seq,
            json,
        });
    }

    /// Records the result of applying a command.
    pub fn put_outcome(&mut self, outcome: &CommandOutcome) {
        if let Err(e) = keys::check_id("command_id", &outcome.command_id) {
            return self.fail(e);
        }
        match serde_json::to_vec(outcome) {
            Ok(json) => self.ops.push(Op::Outcome {
                command_id: outcome.command_id.clone(),
                json,
            }),
            Err(e) => self.fail(StoreError::Invalid(format!(
                "outcome of command {} cannot be encoded: {e}",
                outcome.command_id
            ))),
        }
    }

    /// Moves the runner's command cursor (the last applied command seq).
    pub fn set_command_cursor(&mut self, seq: u64) {
        self.ops.push(Op::Cursor(seq));
    }

    /// Stores a small caller-owned value.
    pub fn put_meta(&mut self, key: &str, value: &[u8]) {
        if let Err(e) = keys::check_id("meta key", key) {
            return self.fail(e);
        }
        self.ops.push(Op::Meta {
            key: key.to_string(),
            value: value.to_vec(),
        });
    }

    /// Removes a small caller-owned value.
    pub fn delete_meta(&mut self, key: &str) {
        if let Err(e) = keys::check_id("meta key", key) {
            return self.fail(e);
        }
        self.ops.push(Op::DeleteMeta {
            key: key.to_string(),
        });
    }

    /// Declares that this batch only creates: new runs (with the first records of their own new ledgers) and meta
    /// values no owner writes (an idempotency key, a key made once). In a cluster any node may commit such a batch
    /// without owning the runs; on one machine it commits like any other. A batch that changes an existing run, an
    /// existing run's ledger or a command must not be marked.
    pub fn set_intake(&mut self) {
        self.intake = true;
    }

    /// Makes the whole batch conditional: it is applied only if meta `key` does not exist when it commits, else it
    /// is dropped (and the commit still succeeds). The caller reads `key` back to learn which write won. Implies
    /// [`Batch::set_intake`].
    pub fn only_if_absent(&mut self, key: &str) {
        if let Err(e) = keys::check_id("meta key", key) {
            return self.fail(e);
        }
        self.intake = true;
        self.guard = Some(key.to_string());
    }

    /// Declares which shard's owner writes this batch: in a cluster with several shards each shard's owner appends
    /// to its own fenced journal, so a write about a run must name the run's shard. One machine has one shard and
    /// ignores it.
    pub fn set_shard(&mut self, shard: u32) {
        self.shard = shard;
    }

    /// The shard set by [`Batch::set_shard`].
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// True when the batch holds no change (committing it costs no fsync).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.error.is_none()
    }

    fn fail(&mut self, err: StoreError) {
        if self.error.is_none() {
            self.error = Some(err);
        }
    }
}

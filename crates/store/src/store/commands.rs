//! The durable command inbox: idempotent appends (decided inside the committer), reads by seq, the runner cursor
//! and per-command outcomes.

use fjall::Readable;
use tokio::sync::watch;

use super::committer::{Reply, Request};
use super::{Appended, NewCommand, Store, StoreError, keys};
use crate::run::{CommandOutcome, CommandRecord};

impl Store {
    /// Appends a command, idempotent by command_id: a new id gets the next global seq (1, 2, 3... never reused);
    /// a known id returns its original seq with `duplicate: true`. Returns once durable.
    pub fn append_command(&self, cmd: NewCommand) -> Result<Appended, StoreError> {
        let (reply, rx) = Reply::blocking();
        self.send(Request::Command { cmd, reply })?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// `append_command` for async callers.
    pub async fn append_command_async(&self, cmd: NewCommand) -> Result<Appended, StoreError> {
        let (reply, rx) = Reply::future();
        self.send(Request::Command { cmd, reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Up to `limit` durable commands with seq > `after_seq`, in seq order.
    pub fn commands_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let view = self.shared().durable.view();
        let mut out = Vec::new();
        for guard in view
            .range(&self.shared().ks.commands, keys::seq_bytes(first)..)
            .take(limit)
        {
            let (key, value) = guard.into_inner()?;
            out.push(decode_command(&key, &value)?);
        }
        Ok(out)
    }

    /// The runner's cursor: the last command seq it applied (0 before the first).
    pub fn command_cursor(&self) -> Result<u64, StoreError> {
        let view = self.shared().durable.view();
        match view.get(&self.shared().ks.state, keys::COMMAND_CURSOR)? {
            Some(bytes) => keys::decode_seq(&bytes).ok_or_else(|| {
                StoreError::Corrupt("the command cursor is not 8 bytes".to_string())
            }),
            None => Ok(0),
        }
    }

    /// A command and, once applied, its outcome.
    pub fn get_command(
        &self,
        command_id: &str,
    ) -> Result<Option<(CommandRecord, Option<CommandOutcome>)>, StoreError> {
        if keys::check_id("command_id", command_id).is_err() {
            return Ok(None);
        }
        let shared = self.shared();
        let view = shared.durable.view();
        let Some(seq) = view.get(&shared.ks.command_ids, command_id.as_bytes())? else {
            return Ok(None);
        };
        let Some(record) = view.get(&shared.ks.commands, &seq)? else {
            return Err(StoreError::Corrupt(format!(
                "command {command_id} is indexed but not stored"
            )));
        };
        let record = decode_command(&seq, &record)?;
        let outcome = match view.get(&shared.ks.outcomes, command_id.as_bytes())? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::Corrupt(format!("outcome of command {command_id}: {e}"))
            })?),
            None => None,
        };
        Ok(Some((record, outcome)))
    }

    /// Changes to the last durable command seq whenever a new command is appended.
    pub fn watch_commands(&self) -> watch::Receiver<u64> {
        self.shared().commands_tx.subscribe()
    }

    /// Changes whenever command outcomes become durable (a count, only useful as a wake-up: read the outcome
    /// with [`Store::get_command`]).
    pub fn watch_outcomes(&self) -> watch::Receiver<u64> {
        self.shared().outcomes_tx.subscribe()
    }
}

/// The stored form of a new command with `seq`, checked: a target and a type are required, and a missing id is
/// made up (as the seed does, losing idempotency for that command).
pub(crate) fn new_record(cmd: NewCommand, seq: u64) -> Result<CommandRecord, StoreError> {
    if cmd.run_id.is_empty() {
        return Err(StoreError::Invalid(
            "command run_id must not be empty".to_string(),
        ));
    }
    if cmd.kind.is_empty() {
        return Err(StoreError::Invalid(
            "command type must not be empty".to_string(),
        ));
    }
    let command_id = if cmd.command_id.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        cmd.command_id
    };
    keys::check_id("command_id", &command_id)?;
    Ok(CommandRecord {
        command_id,
        run_id: cmd.run_id,
        kind: cmd.kind,
        payload: cmd.payload,
        ts: cmd.ts.unwrap_or_else(crate::time::now_iso),
        client_id: cmd.client_id,
        seq,
    })
}

fn decode_command(key: &[u8], value: &[u8]) -> Result<CommandRecord, StoreError> {
    let seq = keys::decode_seq(key)
        .ok_or_else(|| StoreError::Corrupt("a command key is not 8 bytes".to_string()))?;
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt(format!("command {seq}: {e}")))
}

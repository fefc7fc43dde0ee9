//! Keyspace names and key encodings.
//!
//! Composite keys join a string and what follows with a NUL byte, so ids must not contain NUL (checked on write).
//! Sequence numbers are big-endian so that byte order is numeric order and range reads can seek.

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use super::StoreError;

/// Separator inside composite keys.
const SEP: u8 = 0;

/// Handles to every keyspace of the store.
#[derive(Clone)]
pub(crate) struct Keyspaces {
    /// run_id -> RunState JSON.
    pub runs: Keyspace,
    /// created_at ‖ 0 ‖ run_id -> `RunIndexEntry` JSON (walked backwards by `list_runs`).
    pub runs_by_created: Keyspace,
    /// session_id ‖ 0 ‖ created_at ‖ 0 ‖ run_id -> `RunIndexEntry` JSON: one session's runs, without walking
    /// every run (`list_runs` with `session_id`).
    pub runs_by_session: Keyspace,
    /// workflow_id ‖ 0 ‖ created_at ‖ 0 ‖ run_id -> `RunIndexEntry` JSON: one workflow's runs (`list_runs` with
    /// `workflow_id`).
    pub runs_by_workflow: Keyspace,
    /// run_id -> its `runs_by_created` key, for every non-terminal run (`list_runs` of running or waiting runs
    /// walks only these). A store written by an older version holds "" here, and such a listing walks every run.
    pub active: Keyspace,
    /// parent_run_id ‖ 0 ‖ child_run_id -> "".
    pub children: Keyspace,
    /// run_id ‖ 0 ‖ seq (u64 BE) -> StepRecord JSON.
    pub ledger: Keyspace,
    /// seq (u64 BE) -> CommandRecord JSON.
    pub commands: Keyspace,
    /// command_id -> seq (u64 BE).
    pub command_ids: Keyspace,
    /// command_id -> CommandOutcome JSON.
    pub outcomes: Keyspace,
    /// Caller-owned small values (idempotency keys etc.).
    pub meta: Keyspace,
    /// The store's own scalars (command cursor).
    pub state: Keyspace,
}

impl Keyspaces {
    /// Opens (creating) all keyspaces.
    pub fn open(db: &Database) -> Result<Self, StoreError> {
        let open = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(Keyspaces {
            runs: open("runs")?,
            runs_by_created: open("runs_by_created")?,
            runs_by_session: open("runs_by_session")?,
            runs_by_workflow: open("runs_by_workflow")?,
            active: open("active")?,
            children: open("children")?,
            ledger: open("ledger")?,
            commands: open("commands")?,
            command_ids: open("command_ids")?,
            outcomes: open("outcomes")?,
            meta: open("meta")?,
            state: open("state")?,
        })
    }
}

/// Key of the command cursor in the `state` keyspace.
pub(crate) const COMMAND_CURSOR: &[u8] = b"command_cursor";

/// Set in the `state` keyspace once `runs_by_session` and `runs_by_workflow` hold every run (stores made before
/// them are filled at open).
pub(crate) const SCOPE_INDEXES_BUILT: &[u8] = b"index:runs_by_session+workflow:v1";

/// Longest id accepted; fjall keys are limited to 64 KiB and composite keys add to the id.
pub(crate) const MAX_ID_BYTES: usize = 4096;

/// Refuses ids that would break the composite key layout or fjall's key limits.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(StoreError::Invalid(format!(
            "{what} is {} bytes long; at most {MAX_ID_BYTES} are allowed",
            id.len()
        )));
    }
    if id.as_bytes().contains(&SEP) {
        return Err(StoreError::Invalid(format!(
            "{what} must not contain a NUL character: {id:?}"
        )));
    }
    Ok(())
}

/// Prefix shared by every ledger key of a run.
pub(crate) fn ledger_prefix(run_id: &str) -> Vec<u8> {
    joined(run_id, &[])
}

/// Key of one ledger record.
pub(crate) fn ledger_key(run_id: &str, seq: u64) -> Vec<u8> {
    joined(run_id, &seq.to_be_bytes())
}

/// The seq at the end of a ledger key.
pub(crate) fn ledger_key_seq(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8).map(|start| &key[start..])?;
    decode_seq(tail)
}

/// Key of a seq-keyed record (commands) or a stored seq value.
pub(crate) fn seq_bytes(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes an 8-byte big-endian seq.
pub(crate) fn decode_seq(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

/// Key of a run in the `runs_by_created` index.
pub(crate) fn created_key(created_at: &str, run_id: &str) -> Vec<u8> {
    joined(created_at, run_id.as_bytes())
}

/// Splits a `runs_by_created` key into (created_at, run_id).
pub(crate) fn split_created_key(key: &[u8]) -> Option<(&str, &str)> {
    let pos = key.iter().position(|b| *b == SEP)?;
    let created = std::str::from_utf8(&key[..pos]).ok()?;
    let run_id = std::str::from_utf8(&key[pos + 1..]).ok()?;
    Some((created, run_id))
}

/// Key of a run in the index of its session or workflow (`scope`); `None` for a value that cannot be part of a
/// key (such a scope's runs are found by walking every run).
pub(crate) fn scoped_key(scope: &str, created_key: &[u8]) -> Option<Vec<u8>> {
    check_id("index scope", scope).ok()?;
    Some(joined(scope, created_key))
}

/// Prefix of every key of one session or workflow in its index (`None`: see [`scoped_key`]).
pub(crate) fn scope_prefix(scope: &str) -> Option<Vec<u8>> {
    check_id("index scope", scope).ok()?;
    Some(joined(scope, &[]))
}

/// Prefix of all children keys of a parent.
pub(crate) fn child_prefix(parent: &str) -> Vec<u8> {
    joined(parent, &[])
}

/// Key of one parent → child edge.
pub(crate) fn child_key(parent: &str, child: &str) -> Vec<u8> {
    joined(parent, child.as_bytes())
}

fn joined(head: &str, tail: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(head.len() + 1 + tail.len());
    key.extend_from_slice(head.as_bytes());
    key.push(SEP);
    key.extend_from_slice(tail);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_keys_sort_by_seq_and_stay_inside_their_run() {
        let a2 = ledger_key("a", 2);
        let a10 = ledger_key("a", 10);
        let a256 = ledger_key("a", 256);
        assert!(a2 < a10 && a10 < a256);
        assert!(a256.starts_with(&ledger_prefix("a")));
        // "ab" shares the byte prefix "a" but not the NUL-terminated run prefix.
        assert!(!ledger_key("ab", 1).starts_with(&ledger_prefix("a")));
        assert_eq!(ledger_key_seq(&a256), Some(256));
        assert_eq!(ledger_key_seq(b"short"), None);
    }

    #[test]
    fn created_keys_round_trip() {
        let key = created_key("2026-01-01T00:00:00.000000+00:00", "run-1");
        assert_eq!(
            split_created_key(&key),
            Some(("2026-01-01T00:00:00.000000+00:00", "run-1"))
        );
    }

    #[test]
    fn ids_with_nul_or_empty_are_refused() {
        assert!(check_id("run_id", "ok").is_ok());
        assert!(matches!(
            check_id("run_id", ""),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            check_id("run_id", "a\0b"),
            Err(StoreError::Invalid(_))
        ));
        let long = "x".repeat(MAX_ID_BYTES + 1);
        assert!(matches!(
            check_id("run_id", &long),
            Err(StoreError::Invalid(_))
        ));
    }
}

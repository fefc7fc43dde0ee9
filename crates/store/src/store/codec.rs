//! How a run's state is stored: the one encoding `Batch::put_run` writes and the decodings every read
//! uses. Kept in one place so "every stored run reads back" can be checked against exactly these.

use serde::Deserialize;

use super::StoreError;
use crate::run::{RunState, RunStatus};

/// The stored form of a run's state.
pub fn encode_run(run: &RunState) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(run)
        .map_err(|e| StoreError::Invalid(format!("run {} cannot be encoded: {e}", run.run_id)))
}

/// A run's state from its stored form; `Corrupt` when it cannot be decoded (listing skips such a run,
/// recovery quarantines it).
pub fn decode_run(run_id: &str, bytes: &[u8]) -> Result<RunState, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("run {run_id}: {e}")))
}

#[derive(Deserialize)]
struct StatusOnly {
    status: RunStatus,
}

/// Only the status of a stored run (the durable heads read it without decoding the whole state).
pub fn decode_status(run_id: &str, bytes: &[u8]) -> Result<RunStatus, StoreError> {
    serde_json::from_slice::<StatusOnly>(bytes)
        .map(|s| s.status)
        .map_err(|e| StoreError::Corrupt(format!("run {run_id}: {e}")))
}

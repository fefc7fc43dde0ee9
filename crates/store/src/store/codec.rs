//! How a run's state is stored: the one encoding `Batch::put_run` writes and the decodings every read
//! uses. Kept in one place so "every stored run reads back" can be checked against exactly these.

use serde::Deserialize;

use super::StoreError;
use crate::run::{RunState, RunStatus};

/// The stored form of a run's state.
pub fn encode_run(run: &RunState) -> Result<Vec<u8>, StoreError> {
    encode_sized(run, RUN_BYTES)
        .map_err(|e| StoreError::Invalid(format!("run {} cannot be encoded: {e}", run.run_id)))
}

/// Room reserved up front for a run's state and for a ledger record: a small state is ~1 KiB, and encoding
/// into `serde_json::to_vec`'s 128 bytes regrew (and copied) the buffer four times.
const RUN_BYTES: usize = 2048;
pub(crate) const RECORD_BYTES: usize = 1024;

/// `value` as JSON, into a buffer of `capacity` to start with.
pub(crate) fn encode_sized<T: serde::Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// A run's state from its stored form; `Corrupt` when it cannot be decoded (listing skips such a run,
/// recovery quarantines it).
pub fn decode_run(run_id: &str, bytes: &[u8]) -> Result<RunState, StoreError> {
    decode_run_as(run_id, bytes)
}

/// A stored run read as `R` (the whole state or its head); `Corrupt` as [`decode_run`].
pub(crate) fn decode_run_as<R: serde::de::DeserializeOwned>(
    run_id: &str,
    bytes: &[u8],
) -> Result<R, StoreError> {
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

//! Knowledge-graph memory: triples the host keeps per memory owner (the run, its session, the gateway). Node
//! plugins only, with the `kg` grant. Payloads and results are the seed's MEMORY_KG_* effects as JSON objects.

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::kg as wit;
use crate::error::{Error, ErrorCode};

fn call(f: fn(&str) -> Result<String, wit::Error>, payload: &Value) -> Result<Value, Error> {
    let answer = f(&payload.to_string())?;
    serde_json::from_str(&answer).map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            format!("the host's kg answer is not JSON: {e}"),
        )
    })
}

/// Adds assertions (`{assertions: [...], scope, ...}`); answers `{ok, count, assertion_ids, ...}`.
pub fn add(payload: &Value) -> Result<Value, Error> {
    call(wit::add, payload)
}

/// Reads assertions; answers `{ok, count, items, ...}` (with the packed active memory under a token budget).
pub fn query(payload: &Value) -> Result<Value, Error> {
    call(wit::query, payload)
}

/// Finds entities named by a label; answers `{ok, count, candidates, raw}`.
pub fn resolve(payload: &Value) -> Result<Value, Error> {
    call(wit::resolve, payload)
}

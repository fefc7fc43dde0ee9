//! The run's durable context: idempotency keys, durable waits and client-visible events.

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::durability as wit;
use crate::error::{Error, parse_host_json};

/// A key stable across replays of this call site; pass it to remote services so a retry is not applied twice.
pub fn idempotency_key() -> String {
    wit::idempotency_key()
}

/// Suspends the node until the event `name` reaches the run; returns its payload.
pub fn await_event(name: &str) -> Result<Value, Error> {
    await_event_with(name, &Value::Object(Default::default()))
}

/// Like `await_event`, with `details` shown to clients in the wait (`{"reason": "user", "prompt": ...}`
/// makes it a wait for a person, resumed with wait key `name`; `{"reason": "key"}` an event wait on the
/// literal wait key `name`).
pub fn await_event_with(name: &str, details: &Value) -> Result<Value, Error> {
    let payload = wit::await_event(name, &details.to_string())?;
    if payload.trim().is_empty() {
        return Ok(Value::Null);
    }
    parse_host_json("event payload", &payload)
}

/// Records and streams a client-visible event.
pub fn emit(name: &str, payload: &Value) {
    wit::emit(name, &payload.to_string());
}

//! Key-value buckets granted to the plugin by name; values are bytes (JSON helpers included).

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::kv as wit;
use crate::error::Error;

/// The value under `key` in `bucket`, if any.
pub fn get(bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(wit::get(bucket, key)?)
}

/// Stores `value` under `key` in `bucket`.
pub fn set(bucket: &str, key: &str, value: &[u8]) -> Result<(), Error> {
    Ok(wit::set(bucket, key, value)?)
}

/// Removes `key` from `bucket` (no error when absent).
pub fn delete(bucket: &str, key: &str) -> Result<(), Error> {
    Ok(wit::delete(bucket, key)?)
}

/// The keys of `bucket` starting with `prefix`.
pub fn list_keys(bucket: &str, prefix: &str) -> Result<Vec<String>, Error> {
    Ok(wit::list_keys(bucket, prefix)?)
}

/// The value under `key` parsed as JSON, if any.
pub fn get_json(bucket: &str, key: &str) -> Result<Option<Value>, Error> {
    match get(bucket, key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::invalid_input(format!("kv {bucket}/{key} is not JSON: {e}"))),
    }
}

/// Stores `value` as JSON under `key`.
pub fn set_json(bucket: &str, key: &str, value: &Value) -> Result<(), Error> {
    set(bucket, key, value.to_string().as_bytes())
}

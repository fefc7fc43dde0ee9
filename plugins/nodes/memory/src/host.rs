//! The host calls the nodes make, behind a trait so the node logic runs natively in unit tests.

use abstractgateway_plugin_sdk::llm::{Request, Response};
use abstractgateway_plugin_sdk::{Error, kv, llm};

/// The kv bucket holding every span index and span payload (granted in `grants.json`).
pub const BUCKET: &str = "span_memory";

/// What the nodes need from the gateway: a durable key-value store, a model, and the time.
pub trait Host {
    /// The value under `key`, if any (`kv.get`).
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Stores `value` under `key` (`kv.set`).
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), Error>;
    /// The keys starting with `prefix`, in key order (`kv.list-keys`).
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, Error>;
    /// One chat completion (`llm.complete`).
    fn complete(&mut self, req: Request) -> Result<Response, Error>;
    /// Now as milliseconds since the Unix epoch (the node's recorded start time inside the gateway).
    fn now_ms(&mut self) -> u64;
}

/// The real host, through the component's WIT imports (each call recorded in the run's ledger).
pub struct Wit;

impl Host for Wit {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        kv::get(BUCKET, key)
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        kv::set(BUCKET, key, value)
    }
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys = kv::list_keys(BUCKET, prefix)?;
        keys.sort();
        Ok(keys)
    }
    fn complete(&mut self, req: Request) -> Result<Response, Error> {
        llm::complete(req)
    }
    fn now_ms(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

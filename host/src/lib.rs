//! abstractgateway: a durable host for AbstractFlow `.flow` bundles.
//!
//! Data flows one way: HTTP → commands/store → runner → engine → ledger → SSE.
//! See `docs/ARCHITECTURE.md` for the map.

pub mod cli;
pub use abstractgateway_bundle as bundle;
pub use abstractgateway_engine::{builtins, engine, flow};
pub use abstractgateway_model::{run, time};
pub use abstractgateway_providers::{llm, voice};
pub use abstractgateway_runner as runner;
pub use abstractgateway_sandbox::{plugins, tools};
pub use abstractgateway_server as server;
pub use abstractgateway_store::{self as store, artifacts};
pub use pycompat;

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
// The bodies of the fuzz targets in `fuzz/`; also compiled for the tests that replay their inputs.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

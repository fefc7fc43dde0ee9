//! Durable storage: the run store on fjall (runs, ledgers, commands, heads, group commit; `store`, re-exported
//! at the root) and the content-addressed artifact files (`artifacts`). Knows nothing of flows or plugins.

use abstractgateway_model::{run, time};

pub mod artifacts;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
mod metrics;
mod store;

pub use store::*;

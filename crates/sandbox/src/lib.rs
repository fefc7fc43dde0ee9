//! The sandbox: WebAssembly components run under wasmtime with nothing beyond their grants (`plugins`:
//! engine, linkers, the one execution lifecycle, the one record/replay wrapper, one module per host
//! capability) and the tools agents and tool nodes call (`tools`). Implements the runner's node executor.

use abstractgateway_bundle as bundle;
use abstractgateway_engine::engine;
use abstractgateway_model::{run, time};
use abstractgateway_providers::{llm, voice};
use abstractgateway_runner as runner;
use abstractgateway_store::{self as store, artifacts};

pub mod plugins;
pub mod tools;

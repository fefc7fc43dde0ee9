//! The pure core: VisualFlow graphs compiled into plans (`flow`), the engine that steps a run through one
//! (`engine`: control, effects, variables, pin expressions, budgets) and the seed's builtin node functions
//! (`builtins`). It performs no IO and owns no thread: the runner hands it a run and a host to call.

use abstractgateway_bundle as bundle;
use abstractgateway_model::{run, time};

pub mod builtins;
pub mod engine;
pub mod flow;

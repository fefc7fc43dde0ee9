//! VisualFlow graphs: the JSON model and the compiler that checks and indexes them.

pub mod catalogue;
pub mod compile;
pub mod model;

pub use compile::{CompileError, CompiledFlow, CompiledNode, DataEdge, Next, compile};

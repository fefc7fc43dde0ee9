//! The single-cursor step engine: executes one run of a compiled flow (§3 of the flow format).

pub mod budget;
pub mod control;
pub mod effects;
pub mod exec;
pub mod missing;
pub mod nodes;
pub mod pinexpr;
pub mod plugin_node;
pub mod resolve;
pub mod state;
pub mod varnodes;

pub use effects::{ResumeError, event_key, resume, resume_due};
pub use exec::{ChildStartError, Host, advance, complete, fail};
pub use nodes::{
    BundlePlugins, BundlePluginsError, DeferredLoaded, DeferredPlugins, InputFailure, NodeFailure,
    NodeRegistry, PluginNode, Reads,
};
pub use pinexpr::{PinExpr, PinExprError, PinExprEvaluator, PinExprs};
pub use plugin_node::{ContextEdit, NodeOutput, PluginOutcome, PluginWait, WaitKind};
#[cfg(test)]
mod tests;

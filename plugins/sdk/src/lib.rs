//! SDK for abstractgateway plugins: WebAssembly components that provide node types (the
//! `node-plugin` world) or tools (the `tool-plugin` world) of the `abstractgateway:plugin@0.2.0` WIT package.
//!
//! A node plugin is a `cdylib` crate with one type implementing [`Node`] and one
//! [`export_node!`] line; build it with `cargo build --release --target wasm32-wasip2`.
//!
//! ```ignore
//! use abstractgateway_plugin_sdk::{Error, Invocation, Node, NodeResult, NodeType, export_node, outputs};
//!
//! struct Upper;
//!
//! impl Node for Upper {
//!     fn describe() -> Vec<NodeType> {
//!         vec![NodeType::new("upper").input("text", "string").output("text", "string")]
//!     }
//!     fn run(inv: Invocation) -> Result<NodeResult, Error> {
//!         Ok(outputs! { "text" => inv.input_str("text")?.to_uppercase() }.into())
//!     }
//! }
//!
//! export_node!(Upper);
//! ```
//!
//! The crate must be a dependency named `abstractgateway-plugin-sdk` (not renamed): the export
//! macros expand to paths through `::abstractgateway_plugin_sdk`.

// The generated export macros name this crate by its absolute path, which must also resolve here.
extern crate self as abstractgateway_plugin_sdk;

pub mod artifacts;
pub mod bindings;
pub mod durability;
mod error;
pub mod http;
pub mod image;
pub mod kg;
pub mod kv;
pub mod llm;
pub mod log;
mod node;
mod tool;
pub mod tools;
pub mod voice;

pub use error::{Error, ErrorCode};
pub use node::{
    ContextEdit, InputFailure, Invocation, Node, NodeFailure, NodeResult, NodeType, Outputs, Pin,
    Reads,
};
pub use serde_json::{self, Map, Value, json};
pub use tool::{Tool, ToolSpec};

#[doc(hidden)]
pub use node::NodeExport as __NodeExport;
#[doc(hidden)]
pub use tool::ToolExport as __ToolExport;

/// The wit-bindgen runtime, re-exported so plugin crates need no wit-bindgen dependency.
#[doc(hidden)]
pub mod __rt {
    pub use wit_bindgen::rt::*;
}

/// Exports a type implementing [`Node`] as the plugin's `node` interface. Use once per plugin.
#[macro_export]
macro_rules! export_node {
    ($ty:ty) => {
        // Native builds (unit tests of the plugin) cannot carry the component's export names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __AgNodeExport = $crate::__NodeExport<$ty>;
            $crate::bindings::node::__export_node_plugin!(__AgNodeExport with_types_in $crate::bindings::node);
        };
    };
}

/// Exports a type implementing [`Tool`] as the plugin's `tool-provider` interface. Use once per plugin.
#[macro_export]
macro_rules! export_tool {
    ($ty:ty) => {
        // Native builds (unit tests of the plugin) cannot carry the component's export names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __AgToolExport = $crate::__ToolExport<$ty>;
            $crate::bindings::tool::__export_tool_plugin!(__AgToolExport with_types_in $crate::bindings::tool);
        };
    };
}

/// Builds an [`Outputs`] object: `outputs! { "words" => 3, "text" => s }` (values go through `json!`).
#[macro_export]
macro_rules! outputs {
    ($($key:literal => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = $crate::Map::new();
        $( map.insert(::std::string::String::from($key), $crate::json!($value)); )*
        map
    }};
}

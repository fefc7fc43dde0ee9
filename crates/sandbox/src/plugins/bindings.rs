//! Rust bindings of the `abstractgateway:plugin@0.1.0` WIT package (`wit/`), host side.
//!
//! Imports are async (host calls may wait on the network) and trappable (a divergence or a cancel aborts the
//! component); generated types derive serde so requests and answers go into the ledger as they are.

/// The `node-plugin` world: what node components import and export.
pub mod node {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "node-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

/// The `tool-plugin` world; its imports share the node world's bindings.
pub mod tool {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tool-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "abstractgateway:plugin/types": super::node::abstractgateway::plugin::types,
            "abstractgateway:plugin/tools": super::node::abstractgateway::plugin::tools,
            "abstractgateway:plugin/http": super::node::abstractgateway::plugin::http,
            "abstractgateway:plugin/kv": super::node::abstractgateway::plugin::kv,
            "abstractgateway:plugin/log": super::node::abstractgateway::plugin::log,
            "abstractgateway:plugin/artifacts": super::node::abstractgateway::plugin::artifacts,
            "abstractgateway:plugin/durability": super::node::abstractgateway::plugin::durability,
        },
    });
}

pub use node::abstractgateway::plugin::{
    artifacts, durability, http, kv, llm, log, tools, types, voice,
};
pub use node::exports::abstractgateway::plugin::node as node_export;

//! Rust bindings of the `abstractgateway:plugin@0.2.0` WIT package (`wit/`), host side. Components built
//! against 0.1.0 go through [`super::v0_1`], which has its own bindings of the frozen package.
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

/// The `pin-evaluator` world: the `pin-eval` export alone (a component may export it beside `node`).
pub mod pin {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "pin-evaluator",
        exports: { default: async },
        with: {
            "abstractgateway:plugin/types": super::node::abstractgateway::plugin::types,
        },
    });
}

pub use node::abstractgateway::plugin::{
    artifacts, durability, http, image, kg, kv, llm, log, tools, types, voice,
};
pub use node::exports::abstractgateway::plugin::node as node_export;
pub use pin::exports::abstractgateway::plugin::pin_eval;

// `flags` types get no derives from `bindgen!`; the records holding them do, so the flags are written by hand.
impl serde::Serialize for node_export::Reads {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut names = Vec::new();
        if self.contains(node_export::Reads::RUN_CONTEXT) {
            names.push("run-context");
        }
        if self.contains(node_export::Reads::VARS) {
            names.push("vars");
        }
        serde::Serialize::serialize(&names, s)
    }
}

impl<'de> serde::Deserialize<'de> for node_export::Reads {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = <Vec<String> as serde::Deserialize>::deserialize(d)?;
        let mut reads = node_export::Reads::empty();
        for n in names {
            reads |= match n.as_str() {
                "run-context" => node_export::Reads::RUN_CONTEXT,
                "vars" => node_export::Reads::VARS,
                other => {
                    return Err(serde::de::Error::unknown_variant(
                        other,
                        &["run-context", "vars"],
                    ));
                }
            };
        }
        Ok(reads)
    }
}

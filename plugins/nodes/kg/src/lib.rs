//! Knowledge-graph memory nodes as a component: `memory_kg_assert`, `memory_kg_query`, `memory_kg_resolve`
//! (flow-format §4 L). This gateway has no
//! knowledge-graph store (the seed's reference host had none installed either), so the node fails the way
//! the seed's does: its effect has no handler. The node type exists so that flows using it load and fail
//! at that node, as they do on the seed, instead of being refused.

use abstractgateway_plugin_sdk::{
    Error, ErrorCode, Invocation, Node, NodeResult, NodeType, export_node,
};

/// The plugin.
pub struct KgNodes;

impl Node for KgNodes {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("memory_kg_query")
                .label("KG Query")
                .description("Queries the knowledge-graph memory (needs a knowledge-graph store).")
                .input("query_text", "string")
                .input("subject", "string")
                .input("predicate", "string")
                .input("object", "string")
                .input("since", "string")
                .input("until", "string")
                .input("active_at", "string")
                .input("scope", "string")
                .input("owner_id", "string")
                .input("limit", "number")
                .input("min_score", "number")
                .output("items", "array")
                .output("count", "number")
                .output("ok", "boolean")
                .output("raw", "object")
                .effect("memory_kg_query"),
            NodeType::new("memory_kg_assert")
                .label("KG Assert")
                .description("Asserts triples in the knowledge-graph memory (needs a knowledge-graph store).")
                .input("assertions", "array")
                .input("scope", "string")
                .input("span_id", "string")
                .input("owner_id", "string")
                .input("attributes_defaults", "object")
                .input("allow_custom_predicates", "boolean")
                .output("assertion_ids", "array")
                .output("count", "number")
                .output("ok", "boolean")
                .effect("memory_kg_assert"),
            NodeType::new("memory_kg_resolve")
                .label("KG Resolve")
                .description("Resolves a label to knowledge-graph entities (needs a knowledge-graph store).")
                .input("label", "string")
                .input("expected_type", "string")
                .input("scope", "string")
                .input("owner_id", "string")
                .output("candidates", "array")
                .output("count", "number")
                .output("ok", "boolean")
                .output("raw", "object")
                .effect("memory_kg_resolve"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        Err(no_store(inv.node_type()))
    }
}

/// The failure of a knowledge-graph node on a gateway without a store, worded as the seed's.
pub fn no_store(node_type: &str) -> Error {
    Error::new(
        ErrorCode::Unsupported,
        format!(
            "No effect handler registered for {node_type} (this gateway has no knowledge-graph store)"
        ),
    )
}

export_node!(KgNodes);

//! The knowledge-graph memory nodes (`memory_kg_assert`, `memory_kg_query`, `memory_kg_resolve`) as the
//! seed's gateway runs them without a KG store: they load, and fail when executed, so a flow that calls
//! one in a subflow goes on as it does on the seed (the subflow fails, the parent resumes).

use abstractgateway_plugin_sdk::{Error, ErrorCode, Invocation, NodeType, Outputs};

/// The KG node types with their pins.
pub fn describe() -> Vec<NodeType> {
    vec![
        NodeType::new("memory_kg_assert")
            .label("KG assert")
            .description("Asserts triples in the knowledge graph (no KG store in this gateway).")
            .input("assertions", "array")
            .input("scope", "string")
            .input("span_id", "string")
            .input("owner_id", "string")
            .output("assertion_ids", "array")
            .output("count", "number")
            .output("ok", "boolean")
            .effect("memory_kg_assert"),
        NodeType::new("memory_kg_query")
            .label("KG query")
            .description("Queries the knowledge graph (no KG store in this gateway).")
            .input("query_text", "string")
            .input("subject", "string")
            .input("predicate", "string")
            .input("object", "string")
            .input("scope", "string")
            .input("limit", "number")
            .output("items", "array")
            .output("count", "number")
            .output("ok", "boolean")
            .effect("memory_kg_query"),
        NodeType::new("memory_kg_resolve")
            .label("KG resolve")
            .description("Resolves a label to KG entities (no KG store in this gateway).")
            .input("label", "string")
            .input("expected_type", "string")
            .input("scope", "string")
            .output("candidates", "array")
            .output("count", "number")
            .output("ok", "boolean")
            .effect("memory_kg_resolve"),
    ]
}

/// Fails as the seed does when no KG handler is registered.
pub fn run(inv: &Invocation) -> Result<Outputs, Error> {
    Err(Error::new(
        ErrorCode::Unsupported,
        format!("No effect handler registered for {}", inv.node_type()),
    ))
}

//! Built-in span-memory nodes as a component: `memory_note`, `memory_query`, `memory_tag`,
//! `memory_compact` and `memory_rehydrate` (and the KG nodes, which fail as on a gateway without a KG store). Spans live in the host's kv store (durable, shared by every run
//! of the gateway) and the compaction summary comes from the host's llm, so every access is a recorded
//! host call that a replay answers from the ledger.

pub mod compact;
pub mod context;
pub mod host;
pub mod note;
pub mod query;
pub mod recall;
pub mod rehydrate;
pub mod store;
pub mod tag;
pub mod util;

use abstractgateway_plugin_sdk::{Error, Invocation, Node, NodeResult, NodeType, export_node};

/// The plugin.
pub struct MemoryNodes;

impl Node for MemoryNodes {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("memory_note")
                .label("Memorize")
                .description(
                    "Stores a note as a memory span of the run, its session or the global memory.",
                )
                .input("keep_in_context", "boolean")
                .input("scope", "string")
                .input("content", "string")
                .input("location", "string")
                .input("tags", "object")
                .input("sources", "object")
                .output("note_id", "string")
                .effect("memory_note")
                .reads_run_context(),
            NodeType::new("memory_query")
                .label("Recall")
                .description(
                    "Finds memory spans by tags, authors, locations, time range and keyword.",
                )
                .input("query", "string")
                .input("recall_level", "string")
                .input("limit", "number")
                .input("tags", "object")
                .input("tags_mode", "string")
                .input("usernames", "array")
                .input("locations", "array")
                .input("since", "string")
                .input("until", "string")
                .input("scope", "string")
                .output("results", "array")
                .output("rendered", "string")
                .effect("memory_query")
                .reads_run_context(),
            NodeType::new("memory_tag")
                .label("Tag memory")
                .description("Merges or replaces the tags of a memory span.")
                .input("span_id", "string")
                .input("scope", "string")
                .input("tags", "object")
                .input("merge", "boolean")
                .output("success", "boolean")
                .output("rendered", "string")
                .effect("memory_tag"),
            NodeType::new("memory_compact")
                .label("Compact memory")
                .description(
                    "Archives older context messages as a span and replaces them with a summary.",
                )
                .input("preserve_recent", "number")
                .input("compression_mode", "string")
                .input("focus", "string")
                .output("span_id", "string")
                .effect("memory_compact")
                .reads_run_context(),
            NodeType::new("memory_rehydrate")
                .label("Recall into context")
                .description("Inserts recalled spans into the run's context messages.")
                .input("span_ids", "array")
                .input("placement", "string")
                .input("recall_level", "string")
                .input("max_messages", "number")
                .output("inserted", "number")
                .output("skipped", "number")
                .effect("memory_rehydrate")
                .reads_run_context(),
        ]
        .into_iter()
        .collect()
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        run_with(&mut host::Wit, &inv)
    }
}

/// Runs one node against `host` (the component passes the real imports; tests pass an in-memory store).
pub fn run_with(h: &mut dyn host::Host, inv: &Invocation) -> Result<NodeResult, Error> {
    match inv.node_type() {
        "memory_note" => note::run(h, inv),
        "memory_query" => query::run(h, inv).map(NodeResult::from),
        "memory_tag" => tag::run(h, inv).map(NodeResult::from),
        "memory_compact" => compact::run(h, inv),
        "memory_rehydrate" => rehydrate::run(h, inv),
        other => Err(Error::not_found(format!(
            "node type {other} is not provided by node-memory"
        ))),
    }
}

export_node!(MemoryNodes);

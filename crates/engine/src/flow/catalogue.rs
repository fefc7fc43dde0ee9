//! The seed's node catalogue: every node type AbstractRuntime 0.13.0 compiles (flow-format §4, 164 types), and
//! what each needs to run on this gateway.
//!
//! The compiler asks the registry first (native types, builtins, loaded components). A type the registry does
//! not provide but the catalogue knows is not refused: a bundle made with AbstractFlow must load, and its other
//! flows and nodes must run. Such a node fails when it runs, worded as the seed fails on a host without that
//! backend ([`Missing`]). Only a type absent from the catalogue is refused at compile time, as on the seed.

/// What a catalogued node type needs on this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The engine runs it (native types and pure builtins).
    Engine,
    /// Removed by the compiler before it runs (`reroute`).
    Lowered,
    /// A node component provides it; the name is the component's (what `bundle verify` tells a user to load).
    Component(&'static str),
    /// It needs a backend this gateway does not have: it runs as [`Missing`] says.
    Missing(Missing),
}

/// How a node whose backend is missing behaves when it runs, as the seed's does without that backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// The effect type the seed records for it (`None` for a function node).
    pub effect: Option<&'static str>,
    /// What it needs, for `bundle verify` and the error.
    pub needs: &'static str,
    pub outcome: MissingOutcome,
}

/// What running a node without its backend gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingOutcome {
    /// The run fails at the node with the seed's "no effect handler" wording.
    NoHandler,
    /// The run fails at the node with this message.
    Fails(&'static str),
    /// The node completes as a failed tool call (`{result: <message>, success: false}`), as the seed's
    /// deterministic tool-invoke nodes do when their tool is missing; the run goes on.
    ToolFails(&'static str),
}

impl Missing {
    /// The error a run fails with at a node of type `node_type` (for the two failing outcomes).
    pub fn error(&self, node_type: &str) -> String {
        match self.outcome {
            MissingOutcome::NoHandler => format!(
                "Effect failed after 1 attempts: No effect handler registered for {} (this gateway lacks {})",
                self.effect.unwrap_or(node_type),
                self.needs
            ),
            MissingOutcome::Fails(message) | MissingOutcome::ToolFails(message) => {
                message.replace("{type}", node_type)
            }
        }
    }
}

const fn no_handler(effect: &'static str, needs: &'static str) -> Provider {
    Provider::Missing(Missing {
        effect: Some(effect),
        needs,
        outcome: MissingOutcome::NoHandler,
    })
}

const fn fails(
    effect: Option<&'static str>,
    needs: &'static str,
    message: &'static str,
) -> Provider {
    Provider::Missing(Missing {
        effect,
        needs,
        outcome: MissingOutcome::Fails(message),
    })
}

const fn tool_fails(needs: &'static str, message: &'static str) -> Provider {
    Provider::Missing(Missing {
        effect: Some("tool_invoke"),
        needs,
        outcome: MissingOutcome::ToolFails(message),
    })
}

const ENTITY_HOME: &str = "an entity home runtime (entity-brain memory)";
const CAMERA: &str = "a camera tool";
const MAILBOX: &str = "a mailbox connection";
const CAMERA_MISSING: &str = "Tool '{type}' not found";
const MAIL_MISSING: &str = "email_not_configured: No mailbox is connected for this user.";
const VIDEO: &str = "a video generation backend";
const VIDEO_MISSING: &str =
    "{type} needs a video generation backend, which this gateway does not have";
const DOCUMENTS: &str = "a document renderer (PDF, DOCX, charts)";
const DOCUMENTS_MISSING: &str =
    "{type} needs a document renderer (PDF, DOCX, charts), which this gateway does not have";

/// What `node_type` needs here; `None` when the seed's catalogue does not have it (the compiler refuses it).
pub fn lookup(node_type: &str) -> Option<Provider> {
    use Provider::{Component, Engine, Lowered};
    Some(match node_type {
        // A. Entry, IO, events, waits.
        "on_flow_start" | "on_flow_end" | "on_user_request" | "on_agent_message"
        | "on_schedule" | "on_event" | "wait_event" | "emit_event" | "wait_until" => Engine,
        "answer_user" => Component("node_answer"),
        // B. Control.
        "if" | "switch" | "loop" | "for" | "while" | "sequence" | "parallel" | "loop_limit"
        | "compare" | "and" | "or" | "not" | "coalesce" | "path_mux" => Engine,
        // The seed's compiler inserts it when it lowers exec fan-in, with bookkeeping of the route taken; this
        // compiler merges fan-in natively, and the editor never authors one.
        "join_exec" => fails(
            None,
            "the seed's fan-in lowering",
            "join_exec is internal to the seed's compiler (it lowers exec fan-in); this gateway merges fan-in \
             natively: wire the incoming exec edges to the target node itself",
        ),
        "reroute" => Lowered,
        // C. Core.
        "llm_call" | "agent" | "tool_calls" | "call_tool" | "provider_models" => {
            Component("node_llm")
        }
        "subflow" | "ask_user" | "add_message" | "memact_compose" => Engine,
        "code" | "function" => Component("python_code"),
        "model_residency" => fails(
            Some("model_residency"),
            "a local model runtime",
            "model_residency needs a local model runtime (a provider whose models this gateway loads and \
             unloads), which this gateway does not have: its providers are remote APIs",
        ),
        // D. Variables; E. literals and catalogs; F-H. math, strings, data.
        "get_var"
        | "get_vars"
        | "var_decl"
        | "bool_var"
        | "get_context"
        | "set_var"
        | "set_vars"
        | "set_var_property"
        | "add_to_list"
        | "literal_string"
        | "literal_number"
        | "literal_boolean"
        | "literal_json"
        | "literal_array"
        | "json_schema"
        | "tools_allowlist"
        | "tool_parameters"
        | "add"
        | "subtract"
        | "multiply"
        | "divide"
        | "modulo"
        | "power"
        | "abs"
        | "round"
        | "random_int"
        | "random_float"
        | "concat"
        | "split"
        | "join"
        | "format"
        | "string_template"
        | "uppercase"
        | "lowercase"
        | "trim"
        | "length"
        | "substring"
        | "contains"
        | "replace"
        | "is_empty_string"
        | "get"
        | "set"
        | "merge"
        | "make_object"
        | "break_object"
        | "edit_json_schema"
        | "make_array"
        | "array_concat"
        | "get_element"
        | "get_random_element"
        | "array_map"
        | "array_filter"
        | "array_length"
        | "has_tools"
        | "array_append"
        | "array_dedup"
        | "parse_json"
        | "stringify_json"
        | "make_context"
        | "make_meta"
        | "make_scratchpad"
        | "format_tool_results"
        | "agent_trace_report"
        | "system_datetime" => Engine,
        "provider_catalog" | "model_catalog" => fails(
            None,
            "AbstractCore's provider catalogue",
            "{type} needs AbstractCore's provider catalogue, which this gateway does not have; list providers \
             and models with GET /discovery/providers or the provider_models node",
        ),
        // J. Files and artifacts.
        "write_file" => Component("node_files"),
        "read_file"
        | "list_folder_files"
        | "import_workspace_file"
        | "export_artifact"
        | "read_artifact" => fails(
            None,
            "a file node component",
            "{type} is not available on this gateway yet: its component is not built",
        ),
        "read_pdf" | "write_pdf" | "write_docx" | "write_chart" => {
            fails(None, DOCUMENTS, DOCUMENTS_MISSING)
        }
        // K. Media.
        "generate_image" | "edit_image" | "image_to_image" => Component("node_image"),
        "upscale_image" | "image_upscale" => fails(
            Some("llm_call"),
            "an image upscaling backend",
            "{type} needs an image upscaling backend, which this gateway does not have",
        ),
        "generate_video" | "text_to_video" | "image_to_video" => {
            fails(Some("llm_call"), VIDEO, VIDEO_MISSING)
        }
        "generate_music" => fails(
            Some("llm_call"),
            "a music generation backend",
            "generate_music needs a music generation backend (music_provider), which this gateway does not have",
        ),
        "generate_voice" | "transcribe_audio" | "listen_voice" => Component("node_voice"),
        // L. Memory.
        "memory_note" | "memory_query" | "memory_tag" | "memory_compact" | "memory_rehydrate" => {
            Component("node_memory")
        }
        "memory_kg_assert" | "memory_kg_query" | "memory_kg_resolve" => Component("node_kg"),
        // M. Entity-brain nodes: only an entity home runtime has their handlers.
        "memory_commit" => no_handler("memory_access", ENTITY_HOME),
        "memory_recall" => no_handler("memory_recall", ENTITY_HOME),
        "memory_form" => no_handler("memory_form", ENTITY_HOME),
        "memory_adjust" => no_handler("memory_adjust", ENTITY_HOME),
        "memory_appraise" => no_handler("memory_appraise", ENTITY_HOME),
        "memory_consolidate" => no_handler("memory_consolidate", ENTITY_HOME),
        "memory_probe" => no_handler("memory_probe", ENTITY_HOME),
        "memory_tend" => no_handler("memory_tend", ENTITY_HOME),
        "diary_write" => no_handler("diary_write", ENTITY_HOME),
        "diary_read" => no_handler("diary_read", ENTITY_HOME),
        "life_query" => no_handler("life_query", ENTITY_HOME),
        "entity_tools_query" => no_handler("entity_tools_query", ENTITY_HOME),
        "entity_tools_execute" => no_handler("entity_tools_execute", ENTITY_HOME),
        "publish_event" => fails(
            Some("publish_event"),
            "a publish_event handler",
            "publish_event is not available on this host (no publish_event handler is registered)",
        ),
        // N. Deterministic tool-invoke nodes.
        "camera_open"
        | "camera_capture_photo"
        | "camera_capture_video"
        | "camera_analyze_media"
        | "camera_close" => tool_fails(CAMERA, CAMERA_MISSING),
        "mail_search" | "mail_get" | "mail_mark" | "mail_label" | "mail_move" | "mail_delete"
        | "mail_send" | "mail_reply" | "mail_forward" | "mail_attachment" => {
            tool_fails(MAILBOX, MAIL_MISSING)
        }
        // O. Automation.
        "automation" => fails(
            None,
            "the automation controller",
            "automation nodes run only inside AbstractFramework's automation-controller bundle, which this \
             gateway does not host",
        ),
        _ => return None,
    })
}

/// Whether a compiled node runs here, and what runs it or what it lacks (what `bundle verify` reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// The engine runs it.
    Engine,
    /// This component runs it.
    Component(String),
    /// It loads, but fails (or reports a failed tool call) when it runs: it needs this.
    Needs(&'static str),
}

/// What runs a compiled node of kind `kind`.
pub fn support(kind: &crate::engine::nodes::NodeKind) -> Support {
    use crate::engine::nodes::NodeKind;
    match kind {
        NodeKind::Plugin(p) => Support::Component(p.plugin.clone()),
        NodeKind::Missing(m) => Support::Needs(m.needs),
        _ => Support::Engine,
    }
}

/// Every type the catalogue knows (for tests and `bundle verify`).
pub const ALL: &[&str] = &[
    "abs",
    "add",
    "add_message",
    "add_to_list",
    "agent",
    "agent_trace_report",
    "and",
    "answer_user",
    "array_append",
    "array_concat",
    "array_dedup",
    "array_filter",
    "array_length",
    "array_map",
    "ask_user",
    "automation",
    "bool_var",
    "break_object",
    "call_tool",
    "camera_analyze_media",
    "camera_capture_photo",
    "camera_capture_video",
    "camera_close",
    "camera_open",
    "coalesce",
    "code",
    "compare",
    "concat",
    "contains",
    "diary_read",
    "diary_write",
    "divide",
    "edit_image",
    "edit_json_schema",
    "emit_event",
    "entity_tools_execute",
    "entity_tools_query",
    "export_artifact",
    "for",
    "format",
    "format_tool_results",
    "function",
    "generate_image",
    "generate_music",
    "generate_video",
    "generate_voice",
    "get",
    "get_context",
    "get_element",
    "get_random_element",
    "get_var",
    "get_vars",
    "has_tools",
    "if",
    "image_to_image",
    "image_to_video",
    "image_upscale",
    "import_workspace_file",
    "is_empty_string",
    "join",
    "join_exec",
    "json_schema",
    "length",
    "life_query",
    "list_folder_files",
    "listen_voice",
    "literal_array",
    "literal_boolean",
    "literal_json",
    "literal_number",
    "literal_string",
    "llm_call",
    "loop",
    "loop_limit",
    "lowercase",
    "mail_attachment",
    "mail_delete",
    "mail_forward",
    "mail_get",
    "mail_label",
    "mail_mark",
    "mail_move",
    "mail_reply",
    "mail_search",
    "mail_send",
    "make_array",
    "make_context",
    "make_meta",
    "make_object",
    "make_scratchpad",
    "memact_compose",
    "memory_adjust",
    "memory_appraise",
    "memory_commit",
    "memory_compact",
    "memory_consolidate",
    "memory_form",
    "memory_kg_assert",
    "memory_kg_query",
    "memory_kg_resolve",
    "memory_note",
    "memory_probe",
    "memory_query",
    "memory_recall",
    "memory_rehydrate",
    "memory_tag",
    "memory_tend",
    "merge",
    "model_catalog",
    "model_residency",
    "modulo",
    "multiply",
    "not",
    "on_agent_message",
    "on_event",
    "on_flow_end",
    "on_flow_start",
    "on_schedule",
    "on_user_request",
    "or",
    "parallel",
    "parse_json",
    "path_mux",
    "power",
    "provider_catalog",
    "provider_models",
    "publish_event",
    "random_float",
    "random_int",
    "read_artifact",
    "read_file",
    "read_pdf",
    "replace",
    "reroute",
    "round",
    "sequence",
    "set",
    "set_var",
    "set_var_property",
    "set_vars",
    "split",
    "string_template",
    "stringify_json",
    "subflow",
    "substring",
    "subtract",
    "switch",
    "system_datetime",
    "text_to_video",
    "tool_calls",
    "tool_parameters",
    "tools_allowlist",
    "transcribe_audio",
    "trim",
    "upscale_image",
    "uppercase",
    "var_decl",
    "wait_event",
    "wait_until",
    "while",
    "write_chart",
    "write_docx",
    "write_file",
    "write_pdf",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_the_seeds_164_types_and_nothing_else() {
        assert_eq!(ALL.len(), 164);
        let mut sorted = ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 164, "no duplicates");
        for ty in ALL {
            assert!(lookup(ty).is_some(), "{ty} is catalogued");
        }
        for unknown in [
            "",
            "foreach_x",
            "Reroute",
            "on_flow_start ",
            "../code",
            "totally_unknown",
        ] {
            assert!(lookup(unknown).is_none(), "{unknown:?}");
        }
    }

    #[test]
    fn the_engine_runs_exactly_the_types_the_catalogue_gives_it() {
        let registry = crate::engine::nodes::NodeRegistry::new();
        for ty in ALL {
            let provided = registry.lookup(ty).is_some();
            match lookup(ty) {
                Some(Provider::Engine) => assert!(provided, "{ty} is said to run in the engine"),
                Some(Provider::Lowered | Provider::Component(_) | Provider::Missing(_)) => {
                    assert!(!provided, "{ty} is said not to run in the engine")
                }
                None => unreachable!("checked above"),
            }
        }
    }

    #[test]
    fn entity_nodes_fail_with_the_seeds_wording() {
        let Some(Provider::Missing(m)) = lookup("memory_commit") else {
            panic!("memory_commit has no backend here");
        };
        assert!(m.error("memory_commit").starts_with(
            "Effect failed after 1 attempts: No effect handler registered for memory_access"
        ));
        let Some(Provider::Missing(m)) = lookup("camera_open") else {
            panic!("camera_open has no backend here");
        };
        assert_eq!(m.error("camera_open"), "Tool 'camera_open' not found");
    }
}

//! Built-in AI nodes as a component: `llm_call`, `agent`, `tool_calls`, the deprecated `call_tool`, and
//! the `provider_models` catalogue.
//! Models and tools are reached only through the host imports, so every call is in the run's ledger and
//! replayed after a crash.

pub mod agent;
pub mod host;
pub mod llm_call;
pub mod params;
pub mod provider_models;
pub mod tool_calls;

use abstractgateway_plugin_sdk::{
    Error, InputFailure, Invocation, Node, NodeResult, NodeType, export_node,
};

/// The plugin.
pub struct LlmNodes;

fn llm_inputs(t: NodeType) -> NodeType {
    t.input("use_context", "boolean")
        .input("context", "object")
        .input("provider", "provider")
        .input("model", "model")
        .input("system", "string")
        .input("prompt", "string")
        .input("tools", "tools")
        .input("max_in_tokens", "number")
        .input("temperature", "number")
        .input("seed", "number")
        .input("resp_schema", "object")
}

impl Node for LlmNodes {
    fn describe() -> Vec<NodeType> {
        vec![
            llm_inputs(NodeType::new("llm_call").label("LLM Call"))
                .description("One model call; tools are only offered.")
                .output("response", "string")
                .output("success", "boolean")
                .output("meta", "object")
                .output("tool_calls", "array")
                .output("data", "object")
                .effect("llm_call")
                .reads_run_context(),
            llm_inputs(NodeType::new("agent").label("Agent"))
                .description("A ReAct loop: the model reasons, calls tools, observes, and answers.")
                .input("max_iterations", "number")
                .output("response", "string")
                .output("success", "boolean")
                .output("meta", "object")
                .output("scratchpad", "object")
                .output("tool_calls", "array")
                .output("tool_results", "array")
                .output("data", "object")
                .effect("agent")
                .reads_run_context()
                // The seed's agent swallows a failing input pull and starts from empty inputs.
                .on_input_failure(InputFailure::StartEmpty),
            NodeType::new("tool_calls")
                .label("Tool Calls")
                .description("Executes tool-call requests under the gateway's tool mode.")
                .input("tool_calls", "array")
                .input("allowed_tools", "tools")
                .output("results", "array")
                .output("success", "boolean")
                .effect("tool_calls"),
            NodeType::new("call_tool")
                .label("Call Tool (deprecated)")
                .description("Executes one tool call under the gateway's tool mode.")
                .input("tool_call", "object")
                .input("allowed_tools", "tools")
                .output("result", "any")
                .output("success", "boolean")
                .effect("tool_calls"),
            NodeType::new("provider_models")
                .label("Provider Models")
                .description("The models a provider lists, optionally narrowed to an allow-list.")
                .input("provider", "provider")
                .input("allowed_models", "array")
                .output("provider", "provider")
                .output("models", "array"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        run_with(&mut host::Wit, &inv)
    }
}

/// Runs one node against `host` (the component passes the real imports; tests pass a fake).
pub fn run_with(h: &mut dyn host::Host, inv: &Invocation) -> Result<NodeResult, Error> {
    match inv.node_type() {
        "llm_call" => llm_call::run(h, inv),
        "agent" => agent::run(h, inv),
        "tool_calls" | "call_tool" => tool_calls::run(h, inv),
        "provider_models" => provider_models::run(h, inv).map(NodeResult::from),
        other => Err(Error::not_found(format!(
            "node type {other} is not provided by node-llm"
        ))),
    }
}

export_node!(LlmNodes);

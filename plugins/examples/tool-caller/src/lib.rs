//! Example node plugin calling host tools: `call_tool` runs one tool by name and reports what it may call.

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeResult, NodeType, Value, export_node, json, outputs, tools,
};

/// The plugin.
pub struct ToolCaller;

impl Node for ToolCaller {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("call_tool")
                .label("Call tool")
                .description("Calls the tool `name` with `arguments`; a tool error becomes the `error` output.")
                .input("name", "string")
                .input("arguments", "object")
                .output("tools", "array")
                .output("result", "any")
                .output("error", "object")
                .effect("tool_calls"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        let name = inv.input_str("name")?;
        let arguments = inv.input("arguments").cloned().unwrap_or_else(|| json!({}));
        let listed: Vec<String> = tools::list()?.into_iter().map(|t| t.name).collect();
        let out = match tools::invoke(name, &arguments) {
            Ok(result) => {
                outputs! { "tools" => listed, "result" => result, "error" => Value::Null }
            }
            Err(e) => outputs! {
                "tools" => listed,
                "result" => Value::Null,
                "error" => json!({"code": format!("{:?}", e.code), "message": e.message}),
            },
        };
        Ok(out.into())
    }
}

export_node!(ToolCaller);

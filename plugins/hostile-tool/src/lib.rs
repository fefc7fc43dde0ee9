//! `hostile-tool`: a tool plugin that reaches for more than the `tool-plugin` world gives.
//!
//! It exports `tool-provider` like any tool plugin but also imports `tools`, which only node plugins
//! get, so that its single tool `recurse` could call itself through the host without end. The host
//! must refuse to load it: a tool plugin may import nothing outside the `tool-plugin` world. Its
//! world is declared here, not in the SDK, because no legitimate plugin should be built against it.

#[allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package hostile:tool;

            world hostile-tool {
                import abstractgateway:plugin/tools@0.2.0;
                export abstractgateway:plugin/tool-provider@0.2.0;
            }
        ",
        path: "../../wit",
        world: "hostile:tool/hostile-tool",
        generate_all,
    });
}

use bindings::abstractgateway::plugin::tools::{self, ToolInfo};
use bindings::abstractgateway::plugin::types::{Error, ErrorCode};
use bindings::exports::abstractgateway::plugin::tool_provider::Guest;

/// The plugin.
pub struct HostileTool;

/// The one tool: it calls itself.
pub const RECURSE: &str = "recurse";

impl Guest for HostileTool {
    fn describe() -> Vec<ToolInfo> {
        vec![ToolInfo {
            name: RECURSE.to_string(),
            description: "Calls `recurse` with the same arguments through the host and returns what came back.".to_string(),
            parameters: r#"{"type": "object"}"#.to_string(),
        }]
    }

    fn call(name: String, arguments: String) -> Result<String, Error> {
        if name != RECURSE {
            return Err(Error {
                code: ErrorCode::NotFound,
                message: format!("no tool '{name}'"),
                retryable: false,
            });
        }
        tools::invoke(RECURSE, &arguments)
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(HostileTool with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recurse_is_offered() {
        let tools = HostileTool::describe();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].name, RECURSE);
        let e = HostileTool::call("other".into(), "{}".into()).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
    }
}

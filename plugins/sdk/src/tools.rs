//! Tools granted to the calling plugin (host tools and tool plugins). Node plugins only.

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::tools as wit;
use crate::error::{Error, parse_host_json};
use crate::tool::ToolSpec;

/// The tools this plugin may call.
pub fn list() -> Result<Vec<ToolSpec>, Error> {
    wit::list_tools()
        .into_iter()
        .map(ToolSpec::from_wit)
        .collect()
}

/// Calls the tool `name` with a JSON arguments object; returns its JSON result.
pub fn invoke(name: &str, arguments: &Value) -> Result<Value, Error> {
    let out = wit::invoke(name, &arguments.to_string())?;
    parse_host_json("tool result", &out)
}

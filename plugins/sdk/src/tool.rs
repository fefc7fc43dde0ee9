//! Tool plugins: tools that agents and `tool_calls` nodes may call.

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::tools::ToolInfo as WitToolInfo;
use crate::bindings::node::abstractgateway::plugin::types::Error as WitError;
use crate::bindings::tool::exports::abstractgateway::plugin::tool_provider as wit;
use crate::error::{Error, parse_host_json};

/// A tool a plugin provides (or, from [`crate::tools::list`], one it may call).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The name agents call it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: Value,
}

impl ToolSpec {
    /// A tool called `name` described by `description`, taking the arguments `parameters` (a JSON schema).
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }

    pub(crate) fn into_wit(self) -> WitToolInfo {
        WitToolInfo {
            name: self.name,
            description: self.description,
            parameters: self.parameters.to_string(),
        }
    }

    pub(crate) fn from_wit(t: WitToolInfo) -> Result<Self, Error> {
        let parameters = parse_host_json("tool parameters", &t.parameters)?;
        Ok(ToolSpec {
            name: t.name,
            description: t.description,
            parameters,
        })
    }
}

/// A tool plugin: the tools it provides and how to call one.
pub trait Tool {
    /// The tools this plugin provides.
    fn describe() -> Vec<ToolSpec>;

    /// Calls the tool `name` with its JSON arguments object; returns its JSON result.
    fn call(name: &str, arguments: Value) -> Result<Value, Error>;
}

/// Adapts a [`Tool`] to the generated export trait; used by [`export_tool!`](crate::export_tool).
#[doc(hidden)]
pub struct ToolExport<T>(std::marker::PhantomData<T>);

impl<T: Tool> wit::Guest for ToolExport<T> {
    fn describe() -> Vec<WitToolInfo> {
        T::describe().into_iter().map(ToolSpec::into_wit).collect()
    }

    fn call(name: String, arguments: String) -> Result<String, WitError> {
        let args = if arguments.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            parse_host_json("tool arguments", &arguments)?
        };
        Ok(T::call(&name, args)?.to_string())
    }
}

//! Why a component was not loaded. The messages are the ones operators and upload clients have always read.

use super::grants::GrantsError;
use super::policy::BeyondPolicy;

/// Why loading a component (built in, from the plugins dir, or carried by a bundle) failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Its grants do not parse or are out of range.
    #[error("plugin {plugin}: {source}")]
    Grants { plugin: String, source: GrantsError },
    /// A bundle's component asks for more than the operator's policy allows.
    #[error(transparent)]
    BeyondPolicy(#[from] BeyondPolicy),
    /// A bundle declares another digest than its component's bytes have.
    #[error("plugin {path} has sha256 {actual} but the manifest declares {declared}")]
    Digest {
        path: String,
        actual: String,
        declared: String,
    },
    /// The bytes are not a component wasmtime can compile.
    #[error("plugin {plugin}: not a valid component: {detail}")]
    NotAComponent { plugin: String, detail: String },
    /// A node component imports or exports what no supported `node-plugin` world has.
    #[error("plugin {plugin}: cannot be linked (it must target the node-plugin world): {detail}")]
    NodeLink { plugin: String, detail: String },
    /// A tool component imports more than the `tool-plugin` world offers.
    #[error(
        "tool plugin {plugin}: cannot be linked (a tool plugin may import only what the tool-plugin world \
         offers: http, kv, log, artifacts, durability): {detail}"
    )]
    ToolLink { plugin: String, detail: String },
    /// `describe()` trapped, ran out of a limit, or the host was shutting down.
    #[error("{kind} {plugin}: describe() failed: {detail}")]
    Describe {
        kind: Kind,
        plugin: String,
        detail: String,
    },
    /// `describe()` listed nothing.
    #[error("{kind} {plugin}: describe() lists no {}", kind.item())]
    Empty { kind: Kind, plugin: String },
    /// A tool's parameters schema is not JSON.
    #[error("tool plugin {plugin}: the parameters of tool {tool:?} are not JSON: {detail}")]
    ToolSchema {
        plugin: String,
        tool: String,
        detail: String,
    },
    /// The host has no tool registry to add a tool plugin's tools to.
    #[error("tool plugin {plugin}: this host has no tool registry")]
    NoToolRegistry { plugin: String },
    /// The tool registry refused the tools (a name clash).
    #[error(transparent)]
    ToolName(#[from] crate::tools::ToolNameError),
    /// A plugins-dir file could not be read, or its grants file is not valid.
    #[error("{0}")]
    File(String),
}

/// Which kind of component a message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    Tool,
}

impl Kind {
    fn item(self) -> &'static str {
        match self {
            Kind::Node => "node type",
            Kind::Tool => "tool",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Node => "plugin",
            Kind::Tool => "tool plugin",
        })
    }
}

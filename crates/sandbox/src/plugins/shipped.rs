//! Components the binary carries besides the built-in ones, compiled only when a flow first needs one.
//!
//! The Python component (`plugins/python`, 18 MB of CPython) is one: compiling it takes 10–25 s on a new data
//! dir, and most gateways never run a `code` node or a pin expression. The binary registers it at start
//! (`host/build.rs` embeds it); the plugin host keeps it aside and its registry loads it when a flow first uses
//! a type it provides or a pin expression. A component of the same name in the plugins dir wins.

use std::sync::OnceLock;

/// What a shipped component provides, known before it is compiled (checked when it loads).
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    /// Its plugin name.
    pub name: &'static str,
    /// The node types it declares.
    pub node_types: &'static [&'static str],
    /// Whether it evaluates pin expressions (exports `pin-eval`).
    pub pin_expressions: bool,
}

/// The Python component: `code` and `function` nodes, pin expressions and flow functions.
pub const PYTHON: Descriptor = Descriptor {
    name: "python_code",
    node_types: &["code", "function"],
    pin_expressions: true,
};

/// A component the binary carries.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    /// What it provides.
    pub descriptor: Descriptor,
    /// The component.
    pub bytes: &'static [u8],
    /// Its grants (JSON).
    pub grants: &'static str,
}

static SHIPPED: OnceLock<Vec<Shipped>> = OnceLock::new();

/// Registers the components this binary carries (once, before any plugin host is set up); `false` if some
/// were registered already.
pub fn register(components: Vec<Shipped>) -> bool {
    SHIPPED.set(components).is_ok()
}

/// The registered components (none unless the binary registered some).
pub fn all() -> &'static [Shipped] {
    SHIPPED.get().map(Vec::as_slice).unwrap_or(&[])
}

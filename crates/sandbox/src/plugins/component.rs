//! One loaded component: compiled, linked, described, with its grants.

use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use super::bindings::node::NodePluginPre;
use super::bindings::node_export::NodeType;
use super::ctx::NodeCtx;
use super::grants::Grants;

/// Who installed a component. It decides what caps its grants (the operator's policy binds bundles), whose
/// kv namespace it uses, which share of the instance pool it runs in, and which runs see its tools.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Compiled into the binary.
    Builtin,
    /// The operator's plugins dir.
    Operator,
    /// Carried by bundle `id` (`bundle_ref` = `id@version`).
    Bundle { id: String, bundle_ref: String },
}

impl Owner {
    /// The share of the instance pool its executions use.
    pub fn class(&self) -> super::sandbox::Class {
        match self {
            Owner::Builtin => super::sandbox::Class::Reserved,
            Owner::Operator | Owner::Bundle { .. } => super::sandbox::Class::General,
        }
    }
}

/// A node plugin ready to instantiate: one `InstancePre` reused by every execution.
pub struct LoadedPlugin {
    /// Plugin name (file stem, or `<bundle ref>/<manifest name>`): with the digest, its identity.
    pub name: String,
    pub owner: Owner,
    /// sha256 of the component bytes.
    pub digest: String,
    pub pre: NodePluginPre<NodeCtx>,
    pub grants: Arc<Grants>,
    /// The node types it declared.
    pub types: Vec<NodeType>,
}

/// Links a compiled component against every host interface.
pub fn prepare(
    linker: &Linker<NodeCtx>,
    component: &Component,
) -> wasmtime::Result<NodePluginPre<NodeCtx>> {
    NodePluginPre::new(linker.instantiate_pre(component)?)
}

/// The linker of node plugins: WASI (granting nothing: no preopens, sockets, env or args) plus every plugin
/// interface.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<NodeCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::bindings::node::NodePlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    Ok(linker)
}

/// The linker of tool plugins: WASI and only the interfaces of the `tool-plugin` world (no `tools`, `llm`
/// or `voice`), so a tool cannot call tools, and a component importing more does not link.
pub fn tool_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<NodeCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::bindings::tool::ToolPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    Ok(linker)
}

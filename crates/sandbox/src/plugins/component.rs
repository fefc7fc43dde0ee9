//! One loaded component: compiled, linked, described, with its grants.

use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use super::bindings::node::NodePluginPre;
use super::bindings::pin::PinEvaluatorPre;
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
    pub pre: NodePre,
    /// Its `pin-eval` export, if it has one (the Python runtime).
    pub pin_eval: Option<PinEvaluatorPre<NodeCtx>>,
    pub grants: Arc<Grants>,
    /// The node types it declared.
    pub types: Vec<NodeDecl>,
}

/// A linked node component, by the contract version it was built against.
pub enum NodePre {
    /// `abstractgateway:plugin@0.2.0`.
    Current(NodePluginPre<NodeCtx>),
    /// `abstractgateway:plugin@0.1.0`, run through the adapter in `v0_1`.
    V0_1(super::v0_1::bindings::node::NodePluginPre<NodeCtx>),
}

/// A node type as a component declared it (in any contract version), as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDecl {
    pub name: String,
    pub effect: Option<String>,
    pub reads: crate::engine::Reads,
    pub on_input_failure: crate::engine::InputFailure,
    pub on_failure: crate::engine::NodeFailure,
}

/// Links a compiled component against every host interface of every contract version; the exports it has
/// decide which version it is run as.
pub fn prepare(
    linker: &Linker<NodeCtx>,
    component: &Component,
) -> wasmtime::Result<(NodePre, Option<PinEvaluatorPre<NodeCtx>>)> {
    let pre = linker.instantiate_pre(component)?;
    let pin_eval = PinEvaluatorPre::new(pre.clone()).ok();
    let node = match NodePluginPre::new(pre.clone()) {
        Ok(p) => NodePre::Current(p),
        Err(current) => match super::v0_1::bindings::node::NodePluginPre::new(pre) {
            Ok(p) => NodePre::V0_1(p),
            // The current contract's complaint is the one worth showing.
            Err(_) => return Err(current),
        },
    };
    Ok((node, pin_eval))
}

/// The linker of node plugins: WASI (granting nothing: no preopens, sockets, env or args) plus every plugin
/// interface, of 0.2.0 and of 0.1.0.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<NodeCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::bindings::node::NodePlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    super::v0_1::bindings::node::NodePlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    Ok(linker)
}

/// The linker of tool plugins: WASI and only the interfaces of the `tool-plugin` world (no `tools`, `llm`
/// or `voice`) of each version, so a tool cannot call tools, and a component importing more does not link.
pub fn tool_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<NodeCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::bindings::tool::ToolPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    super::v0_1::bindings::tool::ToolPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    Ok(linker)
}

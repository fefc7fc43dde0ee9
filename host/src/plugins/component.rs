//! One loaded component: compiled, linked, described, with its grants.

use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use super::bindings::node::NodePluginPre;
use super::bindings::node_export::NodeType;
use super::ctx::NodeCtx;
use super::grants::Grants;

/// A node plugin ready to instantiate: one `InstancePre` reused by every execution.
pub struct LoadedPlugin {
    /// Plugin name (file stem, or the manifest's name).
    pub name: String,
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

/// The linker: WASI (granting nothing: no preopens, sockets, env or args) plus the plugin interfaces.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<NodeCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::bindings::node::NodePlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |c| c,
    )?;
    Ok(linker)
}

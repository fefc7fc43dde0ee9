//! The component host: node types provided by sandboxed WebAssembly components (WIT package `wit/`).
//!
//! Components are compiled once and cached on disk by digest, linked once (`InstancePre`), and get a fresh
//! pooled store per node execution with their own memory, CPU and output limits. Every host call goes
//! through `durable::Recorder`, which appends it to the run's ledger or answers it from there on replay.

pub mod bindings;
pub mod builtin;
pub mod cache;
pub mod caps;
pub mod component;
pub mod ctx;
pub mod durable;
pub mod engine;
pub mod grants;
pub mod invoke;
pub mod pin_expr;
pub mod tool_plugin;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use wasmtime::component::Linker;

use crate::engine::{BundlePlugins, NodeRegistry, PluginNode};
use crate::runner::executor::{NodeDone, NodeExecutor, NodeJob};
use crate::store::Store;
use cache::{ComponentCache, sha256_hex};
use caps::Capabilities;
use component::LoadedPlugin;
use ctx::NodeCtx;
pub use grants::Grants;
use tool_plugin::ToolPlugin;

/// Effect type recorded for plugin nodes that do not name one.
const DEFAULT_EFFECT: &str = "plugin_node";

/// The process's plugins: engine, linker, compiled cache and every loaded component by digest.
pub struct PluginHost {
    engine: engine::PluginEngine,
    linker: Linker<NodeCtx>,
    cache: ComponentCache,
    /// digest → plugin (every version ever loaded here stays, so pinned runs can replay).
    by_digest: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    /// `(name, digest)` of the version new runs use, in load order (a later one wins a node type).
    current: RwLock<Vec<(String, String)>>,
    caps: Arc<Capabilities>,
    artifact_store: Option<Arc<crate::artifacts::ArtifactStore>>,
    /// Where node executions run; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// Where tool plugins' tools go (the registry behind `caps.tools`).
    tools: OnceLock<Arc<crate::tools::ToolRegistry>>,
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        // The host may be dropped from async code (the CLI's main); a blocking shutdown would panic there.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// What loading a component gave: node types, or tools.
#[derive(Clone)]
pub enum Loaded {
    /// A node plugin (`node-plugin` world).
    Nodes(Arc<LoadedPlugin>),
    /// A tool plugin (`tool-plugin` world), its tools added to the registry.
    Tools(Arc<ToolPlugin>),
}

impl Loaded {
    /// sha256 of the component.
    pub fn digest(&self) -> &str {
        match self {
            Loaded::Nodes(p) => &p.digest,
            Loaded::Tools(p) => &p.digest,
        }
    }
}

impl PluginHost {
    /// A host caching compiled components under `<data_dir>/components`, with capabilities `caps`
    /// (no component is loaded yet).
    pub fn new(
        data_dir: &Path,
        caps: Capabilities,
        artifact_store: Option<Arc<crate::artifacts::ArtifactStore>>,
    ) -> wasmtime::Result<Arc<PluginHost>> {
        let engine = engine::PluginEngine::new()?;
        let linker = component::linker(&engine.engine)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("plugins")
            .enable_all()
            .build()?;
        Ok(Arc::new(PluginHost {
            linker,
            cache: ComponentCache::new(&data_dir.join("components")),
            engine,
            by_digest: RwLock::new(HashMap::new()),
            current: RwLock::new(Vec::new()),
            caps: Arc::new(caps),
            artifact_store,
            runtime: Some(runtime),
            tools: OnceLock::new(),
        }))
    }

    /// Connects the tool registry (the one in `caps.tools`): tool plugins loaded from now on add their tools.
    pub fn set_tool_registry(self: &Arc<Self>, registry: Arc<crate::tools::ToolRegistry>) {
        registry.attach(self);
        let _ = self.tools.set(registry);
    }

    /// Loads (or finds) a component: a node plugin becomes the current version of `name`; a tool plugin's
    /// tools join the registry.
    pub fn load(&self, name: &str, bytes: &[u8], grants: Grants) -> Result<Loaded, String> {
        let loaded = self.compile(name, bytes, grants)?;
        if let Loaded::Nodes(plugin) = &loaded {
            let mut current = self.current.write();
            current.retain(|(n, _)| n != name);
            current.push((name.to_string(), plugin.digest.clone()));
        }
        Ok(loaded)
    }

    /// Compiles (or takes from the cache), links and describes a component without making it current.
    fn compile(&self, name: &str, bytes: &[u8], grants: Grants) -> Result<Loaded, String> {
        grants
            .validate()
            .map_err(|e| format!("plugin {name}: {e}"))?;
        let digest = sha256_hex(bytes);
        if let Some(p) = self.by_digest.read().get(&digest)
            && p.grants.as_ref() == &grants
            && p.name == name
        {
            return Ok(Loaded::Nodes(p.clone()));
        }
        let component = self
            .cache
            .load(&self.engine.engine, &digest, bytes)
            .map_err(|e| format!("plugin {name}: not a valid component: {e:#}"))?;
        if tool_plugin::is_tool_plugin(&self.engine.engine, &component) {
            return self
                .load_tool_plugin(name, &digest, &component, grants)
                .map(Loaded::Tools);
        }
        let pre = component::prepare(&self.linker, &component).map_err(|e| {
            format!("plugin {name}: cannot be linked (it must target the node-plugin world): {e:#}")
        })?;
        let types = self
            .describe(&pre)
            .map_err(|e| format!("plugin {name}: describe() failed: {e}"))?;
        if types.is_empty() {
            return Err(format!("plugin {name}: describe() lists no node type"));
        }
        let plugin = Arc::new(LoadedPlugin {
            name: name.to_string(),
            digest: digest.clone(),
            pre,
            grants: Arc::new(grants),
            types,
        });
        self.by_digest.write().insert(digest, plugin.clone());
        Ok(Loaded::Nodes(plugin))
    }

    /// Calls `describe` in a throwaway instance that is granted nothing.
    fn describe(
        &self,
        pre: &bindings::node::NodePluginPre<NodeCtx>,
    ) -> Result<Vec<bindings::node_export::NodeType>, String> {
        let mut ws = self.describe_store();
        self.block_on(async {
            let inst = pre
                .instantiate_async(&mut ws)
                .await
                .map_err(|e| format!("{e:#}"))?;
            inst.abstractgateway_plugin_node()
                .call_describe(&mut ws)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }

    /// Runs `fut` on the host's runtime from a thread of its own: loading may be called from async code.
    fn block_on<T: Send>(
        &self,
        fut: impl std::future::Future<Output = Result<T, String>> + Send,
    ) -> Result<T, String> {
        std::thread::scope(|s| {
            s.spawn(|| match self.runtime.as_ref() {
                Some(rt) => rt.block_on(fut),
                None => Err("the plugin host is shutting down".to_string()),
            })
            .join()
            .unwrap_or_else(|_| Err("a component's describe() panicked the host thread".into()))
        })
    }

    /// A throwaway store for `describe()`: granted nothing, no run to record in, 5 s at most.
    fn describe_store(&self) -> wasmtime::Store<NodeCtx> {
        let rec = durable::Recorder::new(
            None,
            crate::runner::new_run_state(
                "describe",
                "describe",
                Default::default(),
                None,
                None,
                None,
            ),
            "describe".into(),
            0,
            vec![],
            0,
            0,
            Arc::new(Default::default()),
        );
        let ctx = NodeCtx::new(
            Arc::new(Grants::default()),
            self.caps.clone(),
            rec,
            0,
            "describe",
        );
        let mut ws = wasmtime::Store::new(&self.engine.engine, ctx);
        ws.limiter(|c| &mut c.limiter);
        ws.set_epoch_deadline(1);
        let started = std::time::Instant::now();
        ws.epoch_deadline_callback(move |_| {
            if started.elapsed() > std::time::Duration::from_secs(5) {
                wasmtime::bail!("describe() took more than 5 s");
            }
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });
        ws
    }

    /// Loads every `*.wasm` of `dir`, each with the grants of its `<name>.grants.json` (none if absent).
    pub fn load_dir(&self, dir: &Path) -> Vec<(PathBuf, Result<Loaded, String>)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let loaded = std::fs::read(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|bytes| {
                    let grants = read_grants(&path.with_extension("grants.json"))?;
                    self.load(&name, &bytes, grants)
                });
            out.push((path, loaded));
        }
        out
    }

    /// A node registry with every current plugin's node types, which also loads the components bundles carry.
    pub fn registry(self: &Arc<Self>) -> NodeRegistry {
        let mut reg = NodeRegistry::new();
        let current = self.current.read().clone();
        for (_, digest) in current {
            let Some(p) = self.by_digest.read().get(&digest).cloned() else {
                continue;
            };
            for node in node_types(&p) {
                reg.register_plugin(node);
            }
            // The last loaded component that evaluates pin expressions does (the Python one).
            if let Some(eval) = pin_expr::ComponentPinExprs::new(self.clone(), p) {
                reg.set_pin_evaluator(Arc::new(eval));
            }
        }
        reg.set_bundle_plugins(self.clone());
        reg
    }

    /// The plugin a job is pinned to; a digest no longer around is reloaded from the cache's copy.
    fn plugin_for(&self, name: &str, digest: &str) -> Result<Arc<LoadedPlugin>, String> {
        if let Some(p) = self.by_digest.read().get(digest) {
            return Ok(p.clone());
        }
        // An older version the run started with: the cache kept its source, and it runs with the grants the
        // plugin has now (grants may only have been tightened since).
        if let Some(bytes) = self.cache.source(digest) {
            let grants = self
                .current
                .read()
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, d)| {
                    self.by_digest
                        .read()
                        .get(d)
                        .map(|p| p.grants.as_ref().clone())
                })
                .unwrap_or_default();
            if let Ok(Loaded::Nodes(p)) = self.compile(name, &bytes, grants) {
                return Ok(p);
            }
        }
        Err(format!(
            "PluginError: component {name} with digest {digest} is not available on this gateway; the run is pinned to it"
        ))
    }

    /// The run artifact store the capabilities write to (the HTTP API serves the same one).
    pub fn artifacts(&self) -> Option<Arc<crate::artifacts::ArtifactStore>> {
        self.artifact_store.clone()
    }

    /// The capabilities every node execution shares.
    pub fn capabilities(&self) -> &Arc<Capabilities> {
        &self.caps
    }
}

/// The process's plugin host: the built-in components, then `plugins_dir` (absent = none); a plugin that
/// does not load is a warning naming it, never a reason to refuse to start.
pub fn setup(
    data_dir: &Path,
    plugins_dir: Option<&Path>,
) -> Result<(Arc<PluginHost>, Vec<String>), String> {
    setup_with(data_dir, plugins_dir, crate::llm::LlmConfig::from_env())
}

/// Like [`setup`], with the LLM providers configured by `llm` instead of the process environment
/// (tests point them at a local server this way).
pub fn setup_with(
    data_dir: &Path,
    plugins_dir: Option<&Path>,
    llm: crate::llm::LlmConfig,
) -> Result<(Arc<PluginHost>, Vec<String>), String> {
    let mut caps = Capabilities::new();
    if let Ok(mode) = std::env::var("ABSTRACTGATEWAY_TOOL_MODE") {
        let mode = mode.trim().to_ascii_lowercase();
        match mode.as_str() {
            "passthrough" | "local" | "approval_required" => caps.tool_mode = mode,
            "" => {}
            other => {
                return Err(format!(
                    "ABSTRACTGATEWAY_TOOL_MODE={other:?} is not one of passthrough, local, approval_required"
                ));
            }
        }
    }
    let tools = Arc::new(crate::tools::ToolRegistry::new());
    caps.tools = Some(tools.clone());
    let providers = Arc::new(crate::llm::Providers::new(llm));
    let mut warnings: Vec<String> = providers.config().warnings().to_vec();
    #[cfg(feature = "local-model")]
    warnings.extend(crate::llm::embedded::register_from_env(&providers));
    caps.llm = Some(Arc::new(caps::llm::ProvidersBackend(providers)));
    let artifacts = Arc::new(
        crate::artifacts::ArtifactStore::open_with(
            data_dir,
            crate::artifacts::max_bytes_from_env(),
        )
        .map_err(|e| format!("cannot open the artifact store: {e}"))?,
    );
    caps.artifacts = Some(Arc::new(caps::artifacts::StoreBackend(artifacts.clone())));
    caps.voice = Some(Arc::new(caps::voice::EnginesBackend {
        voice: Arc::new(crate::voice::Voice::from_env()),
        artifacts: artifacts.clone(),
    }));
    let host = PluginHost::new(data_dir, caps, Some(artifacts))
        .map_err(|e| format!("cannot start the plugin host: {e:#}"))?;
    host.set_tool_registry(tools);
    for (name, bytes, grants) in builtin::components() {
        if let Err(e) = grants.and_then(|g| host.load(name, bytes, g)) {
            warnings.push(format!("built-in plugin {name} not loaded: {e}"));
        }
    }
    if let Some(dir) = plugins_dir {
        for (path, loaded) in host.load_dir(dir) {
            if let Err(e) = loaded {
                warnings.push(format!("plugin {} not loaded: {e}", path.display()));
            }
        }
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok((host, warnings))
}

/// The node types flows may use: host-internal ones (`__pin_expr__`) are not among them.
fn node_types(p: &LoadedPlugin) -> Vec<Arc<PluginNode>> {
    p.types
        .iter()
        .filter(|t| !t.name.starts_with("__"))
        .map(|t| {
            Arc::new(PluginNode {
                node_type: t.name.clone(),
                plugin: p.name.clone(),
                digest: p.digest.clone(),
                effect: t.effect.clone().unwrap_or_else(|| DEFAULT_EFFECT.into()),
            })
        })
        .collect()
}

fn read_grants(path: &Path) -> Result<Grants, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
            Grants::from_json(&v).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Grants::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

impl NodeExecutor for PluginHost {
    fn spawn(self: Arc<Self>, store: Store, job: NodeJob, done: Box<dyn FnOnce(NodeDone) + Send>) {
        let me = self.clone();
        if let Some(rt) = self.runtime.as_ref() {
            rt.spawn(async move {
                done(invoke::run_node(me, store, job).await);
            });
        }
    }
}

impl BundlePlugins for PluginHost {
    fn load(&self, bundle: &crate::bundle::Bundle) -> Result<Vec<Arc<PluginNode>>, String> {
        let mut out = Vec::new();
        for (decl, bytes) in &bundle.plugins {
            let digest = sha256_hex(bytes);
            if !digest.eq_ignore_ascii_case(&decl.sha256) {
                return Err(format!(
                    "plugin {} has sha256 {digest} but the manifest declares {}",
                    decl.path, decl.sha256
                ));
            }
            let name = format!("{}/{}", bundle.bundle_ref(), decl.name());
            let grants = Grants::from_json(&decl.grants)
                .map_err(|e| format!("plugin {}: {e}", decl.path))?;
            if let Loaded::Nodes(p) = self.compile(&name, bytes, grants)? {
                out.extend(node_types(&p));
            }
        }
        Ok(out)
    }
}

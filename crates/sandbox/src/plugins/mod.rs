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
pub mod load_error;
mod metrics;
pub mod pin_expr;
pub mod policy;
pub mod sandbox;
pub mod shipped;
pub mod tool_plugin;
pub mod v0_1;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use wasmtime::component::Linker;

use crate::engine::{BundlePlugins, DeferredLoaded, DeferredPlugins, NodeRegistry, PluginNode};
use crate::runner::executor::{NodeDone, NodeExecutor, NodeJob};
use crate::store::Store;
use cache::{ComponentCache, sha256_hex};
use caps::Capabilities;
use component::{LoadedPlugin, Owner};
use ctx::NodeCtx;
pub use grants::Grants;
use grants::GrantsError;
use load_error::Kind;
pub use load_error::LoadError;
use policy::Policy;
use tool_plugin::ToolPlugin;

/// The process's plugins: engine, linkers, compiled cache and every loaded component by name and digest.
pub struct PluginHost {
    engine: engine::PluginEngine,
    linker: Linker<NodeCtx>,
    tool_linker: Linker<NodeCtx>,
    cache: ComponentCache,
    /// `(name, digest)` → plugin (every version ever loaded here stays, so pinned runs can replay). The name
    /// is part of the identity: a bundle shipping a built-in's exact bytes gets a plugin of its own, with its
    /// own grants, and never changes the built-in's.
    by_key: RwLock<HashMap<(String, String), Arc<LoadedPlugin>>>,
    /// `(name, digest)` of the version new runs use, in load order (a later one wins a node type).
    current: RwLock<Vec<(String, String)>>,
    caps: Arc<Capabilities>,
    artifact_store: Option<Arc<crate::artifacts::ArtifactStore>>,
    /// Where node executions run; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// Where tool plugins' tools go (the registry behind `caps.tools`).
    tools: OnceLock<Arc<crate::tools::ToolRegistry>>,
    /// The operator's cap on what bundle plugins may be granted.
    policy: Policy,
    /// Admission to the instance pool.
    admission: sandbox::Admission,
    /// Shipped components kept aside until a flow needs one (see `shipped`).
    deferred: parking_lot::Mutex<Deferred>,
}

/// The shipped components kept aside, and what loading them gave.
#[derive(Default)]
struct Deferred {
    /// What each provides, with its grants (kept after loading: registries made before still ask).
    items: Vec<(shipped::Shipped, Grants)>,
    /// `None` until the first load; then what it gave (`None` inside: nothing could be loaded).
    loaded: Option<Option<DeferredLoaded>>,
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
        Self::with_policy(data_dir, caps, artifact_store, Policy::default())
    }

    /// Like [`PluginHost::new`], bundle plugins capped by `policy`.
    pub fn with_policy(
        data_dir: &Path,
        caps: Capabilities,
        artifact_store: Option<Arc<crate::artifacts::ArtifactStore>>,
        policy: Policy,
    ) -> wasmtime::Result<Arc<PluginHost>> {
        let engine = engine::PluginEngine::new()?;
        let linker = component::linker(&engine.engine)?;
        let tool_linker = component::tool_linker(&engine.engine)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("plugins")
            .enable_all()
            .build()?;
        Ok(Arc::new(PluginHost {
            linker,
            tool_linker,
            cache: ComponentCache::new(&data_dir.join("components")),
            engine,
            by_key: RwLock::new(HashMap::new()),
            current: RwLock::new(Vec::new()),
            caps: Arc::new(caps),
            artifact_store,
            runtime: Some(runtime),
            tools: OnceLock::new(),
            policy,
            admission: sandbox::Admission::new(
                engine::GENERAL_SLOTS,
                engine::RESERVED_SLOTS,
                engine::MAX_QUEUED,
                engine::MAX_QUEUE_WAIT,
            ),
            deferred: Default::default(),
        }))
    }

    /// Connects the tool registry (the one in `caps.tools`): tool plugins loaded from now on add their tools.
    pub fn set_tool_registry(self: &Arc<Self>, registry: Arc<crate::tools::ToolRegistry>) {
        registry.attach(self);
        let _ = self.tools.set(registry);
    }

    /// Loads (or finds) one of the operator's components (built in, or from the plugins dir): a node plugin
    /// becomes the current version of `name`; a tool plugin's tools join the registry.
    pub fn load(&self, name: &str, bytes: &[u8], grants: Grants) -> Result<Loaded, LoadError> {
        self.load_owned(name, bytes, grants, Owner::Operator)
    }

    fn load_owned(
        &self,
        name: &str,
        bytes: &[u8],
        grants: Grants,
        owner: Owner,
    ) -> Result<Loaded, LoadError> {
        let loaded = self.compile(name, bytes, grants, owner)?;
        if let Loaded::Nodes(plugin) = &loaded {
            let mut current = self.current.write();
            current.retain(|(n, _)| n != name);
            current.push((name.to_string(), plugin.digest.clone()));
        }
        Ok(loaded)
    }

    /// Compiles (or takes from the cache), links and describes a component without making it current.
    fn compile(
        &self,
        name: &str,
        bytes: &[u8],
        grants: Grants,
        owner: Owner,
    ) -> Result<Loaded, LoadError> {
        grants.validate().map_err(|source| LoadError::Grants {
            plugin: name.to_string(),
            source,
        })?;
        if matches!(owner, Owner::Bundle { .. }) {
            self.policy.check(name, &grants)?;
        }
        let digest = sha256_hex(bytes);
        let key = (name.to_string(), digest.clone());
        if let Some(p) = self.by_key.read().get(&key)
            && p.grants.as_ref() == &grants
            && p.owner == owner
        {
            return Ok(Loaded::Nodes(p.clone()));
        }
        let component = self
            .cache
            .load(&self.engine.engine, name, &digest, bytes)
            .map_err(|e| LoadError::NotAComponent {
                plugin: name.to_string(),
                detail: format!("{e:#}"),
            })?;
        if tool_plugin::is_tool_plugin(&self.engine.engine, &component) {
            return self
                .load_tool_plugin(name, &digest, &component, grants, owner)
                .map(Loaded::Tools);
        }
        let (pre, pin_eval) =
            component::prepare(&self.linker, &component).map_err(|e| LoadError::NodeLink {
                plugin: name.to_string(),
                detail: format!("{e:#}"),
            })?;
        let types = self.describe(&pre).map_err(|detail| LoadError::Describe {
            kind: Kind::Node,
            plugin: name.to_string(),
            detail,
        })?;
        if types.is_empty() {
            return Err(LoadError::Empty {
                kind: Kind::Node,
                plugin: name.to_string(),
            });
        }
        let plugin = Arc::new(LoadedPlugin {
            name: name.to_string(),
            owner,
            digest,
            pre,
            pin_eval,
            grants: Arc::new(grants),
            types,
        });
        self.by_key.write().insert(key, plugin.clone());
        Ok(Loaded::Nodes(plugin))
    }

    /// Calls `describe` in a throwaway instance that is granted nothing.
    fn describe(&self, pre: &component::NodePre) -> Result<Vec<component::NodeDecl>, String> {
        let (mut ws, limits) = self.describe_store();
        self.block_on(async {
            sandbox::run(&mut ws, limits, None, async |ws| match pre {
                component::NodePre::Current(pre) => {
                    let inst = pre.instantiate_async(&mut *ws).await?;
                    let types = inst
                        .abstractgateway_plugin_node()
                        .call_describe(&mut *ws)
                        .await?;
                    Ok(types.iter().map(node_decl).collect())
                }
                component::NodePre::V0_1(pre) => {
                    let inst = pre.instantiate_async(&mut *ws).await?;
                    let types = inst
                        .abstractgateway_plugin_node()
                        .call_describe(&mut *ws)
                        .await?;
                    Ok(types.iter().map(v0_1::legacy_decl).collect())
                }
            })
            .await
            .map_err(|stop| stop.describe("describe()"))
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
    fn describe_store(&self) -> (wasmtime::Store<NodeCtx>, sandbox::Limits) {
        let limits = sandbox::Limits {
            time: std::time::Duration::from_secs(5),
            wall: std::time::Duration::from_secs(5),
        };
        let ctx = NodeCtx::new(
            Arc::new(Grants::default()),
            self.caps.clone(),
            durable::Recorder::detached("describe"),
            0,
            "describe",
            Owner::Bundle {
                id: String::new(),
                bundle_ref: String::new(),
            },
        );
        (
            sandbox::store(&self.engine.engine, ctx, limits, None),
            limits,
        )
    }

    /// Loads every `*.wasm` of `dir`, each with the grants of its `<name>.grants.json` (none if absent).
    pub fn load_dir(&self, dir: &Path) -> Vec<(PathBuf, Result<Loaded, LoadError>)> {
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
                .map_err(|e| LoadError::File(format!("cannot read {}: {e}", path.display())))
                .and_then(|bytes| {
                    let grants = read_grants(&path.with_extension("grants.json"))
                        .map_err(LoadError::File)?;
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
        for key in current {
            let Some(p) = self.by_key.read().get(&key).cloned() else {
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
        let d = self.deferred.lock();
        if !d.items.is_empty() && d.loaded.is_none() {
            reg.set_deferred(Arc::new(DeferredLoader(self.clone())));
        }
        reg
    }

    /// Keeps `component` aside, to be compiled when a flow first needs what it provides.
    pub fn defer(&self, component: shipped::Shipped, grants: Grants) {
        self.deferred.lock().items.push((component, grants));
    }

    /// Whether a component named `name` is loaded for new runs.
    pub fn is_current(&self, name: &str) -> bool {
        self.current.read().iter().any(|(n, _)| n == name)
    }

    /// Compiles the deferred components (once: a second call answers what the first gave). Holding the lock
    /// while compiling makes a concurrent caller wait for this compile instead of starting its own.
    fn load_deferred(self: &Arc<Self>) -> Option<DeferredLoaded> {
        let mut d = self.deferred.lock();
        if let Some(done) = &d.loaded {
            return done.clone();
        }
        let mut out = DeferredLoaded::default();
        let mut any = false;
        for (component, grants) in d.items.clone() {
            let name = component.descriptor.name;
            tracing::info!("loading the shipped component {name} for its first use");
            match self.load_owned(name, component.bytes, grants, Owner::Builtin) {
                Ok(Loaded::Nodes(p)) => {
                    any = true;
                    for promised in component.descriptor.node_types {
                        if !p.types.iter().any(|t| t.name == *promised) {
                            tracing::warn!(
                                "shipped component {name} does not declare node type {promised}"
                            );
                        }
                    }
                    out.nodes.extend(node_types(&p));
                    if let Some(e) = pin_expr::ComponentPinExprs::new(self.clone(), p) {
                        out.pin_evaluator = Some(Arc::new(e));
                    }
                }
                Ok(Loaded::Tools(_)) => any = true,
                Err(e) => tracing::warn!("shipped component {name} not loaded: {e}"),
            }
        }
        let done = any.then_some(out);
        d.loaded = Some(done.clone());
        done
    }

    /// The plugin a job is pinned to; a digest no longer around is reloaded from the cache's copy.
    fn plugin_for(&self, name: &str, digest: &str) -> Result<Arc<LoadedPlugin>, String> {
        let key = (name.to_string(), digest.to_string());
        if let Some(p) = self.by_key.read().get(&key) {
            return Ok(p.clone());
        }
        // An older version the run started with: the cache kept its source, and it runs with the grants and
        // owner the plugin of that name has now (grants may only have been tightened since).
        if let Some(bytes) = self.cache.source(digest) {
            let now = self
                .by_key
                .read()
                .iter()
                .find(|((n, _), _)| n == name)
                .map(|(_, p)| (p.grants.as_ref().clone(), p.owner.clone()));
            if let Some((grants, owner)) = now
                && let Ok(Loaded::Nodes(p)) = self.compile(name, &bytes, grants, owner)
            {
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

    /// Forgets what bundles no longer installed brought (their tools); `installed` are bundle refs.
    pub fn retain_bundles(&self, installed: &[String]) {
        if let Some(tools) = self.tools.get() {
            tools.retain_bundles(installed);
        }
    }
}

/// The process's plugin host: the built-in components, then `plugins_dir` (absent = none); a plugin that
/// does not load is a warning naming it, never a reason to refuse to start.
pub fn setup(
    data_dir: &Path,
    plugins_dir: Option<&Path>,
) -> Result<(Arc<PluginHost>, Vec<String>), SetupError> {
    setup_with(data_dir, plugins_dir, crate::llm::LlmConfig::from_env())
}

/// Like [`setup`], with the LLM providers configured by `llm` instead of the process environment
/// (tests point them at a local server this way).
pub fn setup_with(
    data_dir: &Path,
    plugins_dir: Option<&Path>,
    llm: crate::llm::LlmConfig,
) -> Result<(Arc<PluginHost>, Vec<String>), SetupError> {
    setup_in_mode(data_dir, plugins_dir, llm, None)
}

/// Like [`setup_with`], with the tool mode `tool_mode` (`None`: `ABSTRACTGATEWAY_TOOL_MODE`).
pub fn setup_in_mode(
    data_dir: &Path,
    plugins_dir: Option<&Path>,
    llm: crate::llm::LlmConfig,
    tool_mode: Option<&str>,
) -> Result<(Arc<PluginHost>, Vec<String>), SetupError> {
    let mut caps = Capabilities::new();
    let policy = Policy::from_env()?;
    caps.net = caps::net::Net::new(policy.allow_private_hosts.clone());
    caps.shared_kv = policy.shared_kv.clone();
    let mode = tool_mode
        .map(str::to_string)
        .or_else(|| std::env::var("ABSTRACTGATEWAY_TOOL_MODE").ok());
    if let Some(mode) = mode.filter(|m| !m.trim().is_empty()) {
        caps.tool_mode = caps::ToolMode::parse(&mode)
            .ok_or_else(|| SetupError::ToolMode(mode.trim().to_ascii_lowercase()))?;
    }
    let tools = Arc::new(crate::tools::ToolRegistry::new());
    caps.tools = Some(tools.clone());
    let providers = Arc::new(crate::llm::Providers::new(llm));
    let mut warnings: Vec<String> = providers.config().warnings().to_vec();
    #[cfg(feature = "local-model")]
    warnings.extend(crate::llm::embedded::register_from_env(&providers));
    caps.providers = Some(providers.clone());
    caps.llm = Some(Arc::new(caps::llm::ProvidersBackend(providers.clone())));
    let artifacts = Arc::new(
        crate::artifacts::ArtifactStore::open_with(
            data_dir,
            crate::artifacts::max_bytes_from_env(),
        )
        .map_err(|e| SetupError::Artifacts(e.to_string()))?,
    );
    caps.artifacts = Some(Arc::new(caps::artifacts::StoreBackend(artifacts.clone())));
    caps.image = Some(Arc::new(Arc::new(caps::image::ProvidersBackend {
        images: Arc::new(abstractgateway_providers::image::Images::new(
            abstractgateway_providers::image::ImageConfig::from_env(),
            providers.clone(),
        )),
        artifacts: artifacts.clone(),
    })));
    let speech = Arc::new(crate::voice::Voice::from_env());
    caps.speech = Some(speech.clone());
    caps.voice = Some(Arc::new(caps::voice::EnginesBackend {
        voice: speech,
        artifacts: artifacts.clone(),
    }));
    let host = PluginHost::with_policy(data_dir, caps, Some(artifacts), policy)
        .map_err(|e| SetupError::Host(format!("{e:#}")))?;
    host.set_tool_registry(tools);
    for (name, bytes, grants) in builtin::components() {
        let loaded = grants
            .map_err(|source| LoadError::Grants {
                plugin: name.to_string(),
                source,
            })
            .and_then(|g| host.load_owned(name, bytes, g, Owner::Builtin));
        if let Err(e) = loaded {
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
    // The binary's other components wait for a flow that needs them; the plugins dir's copy of one wins.
    for component in shipped::all() {
        let name = component.descriptor.name;
        if host.is_current(name) {
            continue;
        }
        match serde_json::from_str(component.grants)
            .map_err(|e| GrantsError::Invalid(e.to_string()))
            .and_then(|v| Grants::parse(&v))
        {
            Ok(g) => host.defer(*component, g),
            Err(e) => warnings.push(format!("shipped component {name} not loaded: {e}")),
        }
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok((host, warnings))
}

/// The plugin host's deferred components, as a registry sees them.
struct DeferredLoader(Arc<PluginHost>);

impl DeferredPlugins for DeferredLoader {
    fn provides(&self, node_type: &str) -> bool {
        self.0
            .deferred
            .lock()
            .items
            .iter()
            .any(|(c, _)| c.descriptor.node_types.contains(&node_type))
    }

    fn evaluates_pin_expressions(&self) -> bool {
        self.0
            .deferred
            .lock()
            .items
            .iter()
            .any(|(c, _)| c.descriptor.pin_expressions)
    }

    fn load(&self) -> Option<DeferredLoaded> {
        self.0.load_deferred()
    }
}

/// Why the plugin host could not be set up (the process does not start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The operator's plugin policy file is unreadable or invalid.
    #[error(transparent)]
    Policy(#[from] policy::PolicyFileError),
    /// `ABSTRACTGATEWAY_TOOL_MODE` names no mode.
    #[error("ABSTRACTGATEWAY_TOOL_MODE={0:?} is not one of passthrough, local, approval_required")]
    ToolMode(String),
    /// The artifact store could not be opened.
    #[error("cannot open the artifact store: {0}")]
    Artifacts(String),
    /// wasmtime or the host's runtime could not start.
    #[error("cannot start the plugin host: {0}")]
    Host(String),
}

/// The node types flows may use (names starting `__` are reserved to the host).
fn node_types(p: &LoadedPlugin) -> Vec<Arc<PluginNode>> {
    p.types
        .iter()
        .filter(|t| !t.name.starts_with("__"))
        .map(|t| {
            Arc::new(PluginNode {
                node_type: t.name.clone(),
                plugin: p.name.clone(),
                digest: p.digest.clone(),
                effect: t.effect.clone(),
                reads: t.reads,
                on_input_failure: t.on_input_failure,
                on_failure: t.on_failure,
            })
        })
        .collect()
}

/// A 0.2.0 node type as the host keeps it.
fn node_decl(t: &bindings::node_export::NodeType) -> component::NodeDecl {
    use bindings::node_export::{InputFailure as I, NodeFailure as F, Reads as R};
    component::NodeDecl {
        name: t.name.clone(),
        effect: t.effect.clone(),
        reads: crate::engine::Reads {
            run_context: t.reads.contains(R::RUN_CONTEXT),
            vars: t.reads.contains(R::VARS),
        },
        on_input_failure: match t.on_input_failure {
            I::Report => crate::engine::InputFailure::Report,
            I::FailRun => crate::engine::InputFailure::FailRun,
            I::StartEmpty => crate::engine::InputFailure::StartEmpty,
        },
        on_failure: match t.on_failure {
            F::FailRun => crate::engine::NodeFailure::FailRun,
            F::CompleteRun => crate::engine::NodeFailure::CompleteRun,
        },
    }
}

fn read_grants(path: &Path) -> Result<Grants, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
            Grants::parse(&v).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Grants::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

impl NodeExecutor for PluginHost {
    fn spawn(self: Arc<Self>, store: Store, job: NodeJob, done: Box<dyn FnOnce(NodeDone) + Send>) {
        use futures::FutureExt;
        let me = self.clone();
        let Some(rt) = self.runtime.as_ref() else {
            done(NodeDone {
                run_id: job.run_id.clone(),
                outcome: crate::engine::PluginOutcome::Failed(
                    "PluginError: the plugin host is shutting down".into(),
                ),
                ledger_len: store.ledger_len(&job.run_id),
            });
            return;
        };
        rt.spawn(async move {
            let (run_id, node) = (job.run_id.clone(), job.node_type.clone());
            // Whatever panics while the node runs (outside the sandbox's own containment) fails the node:
            // exactly one `NodeDone` always comes back, so the run never stays in flight.
            let got = std::panic::AssertUnwindSafe(invoke::run_node(me, store.clone(), job))
                .catch_unwind()
                .await;
            done(got.unwrap_or_else(|p| NodeDone {
                outcome: crate::engine::PluginOutcome::Failed(
                    sandbox::Stop::Panic(sandbox::panic_message(p.as_ref())).describe(&node),
                ),
                ledger_len: store.ledger_len(&run_id),
                run_id,
            }));
        });
    }
}

impl PluginHost {
    /// The node types of the components `bundle` carries, each loaded with its declared grants.
    fn load_bundle(
        &self,
        bundle: &crate::bundle::Bundle,
    ) -> Result<Vec<Arc<PluginNode>>, LoadError> {
        // The bundle's tools are exactly those of the components it carries now (an overwritten bundle
        // without its tool plugin loses the tools).
        if let Some(tools) = self.tools.get() {
            tools.remove_bundle(&bundle.bundle_ref());
        }
        let mut out = Vec::new();
        for (decl, bytes) in &bundle.plugins {
            let digest = sha256_hex(bytes);
            if !digest.eq_ignore_ascii_case(&decl.sha256) {
                return Err(LoadError::Digest {
                    path: decl.path.clone(),
                    actual: digest,
                    declared: decl.sha256.clone(),
                });
            }
            let name = format!("{}/{}", bundle.bundle_ref(), decl.name());
            let grants = Grants::parse(&decl.grants).map_err(|source| LoadError::Grants {
                plugin: decl.path.clone(),
                source,
            })?;
            let owner = Owner::Bundle {
                id: bundle.manifest.bundle_id.clone(),
                bundle_ref: bundle.bundle_ref(),
            };
            if let Loaded::Nodes(p) = self.compile(&name, bytes, grants, owner)? {
                out.extend(node_types(&p));
            }
        }
        Ok(out)
    }
}

impl BundlePlugins for PluginHost {
    fn load(
        &self,
        bundle: &crate::bundle::Bundle,
    ) -> Result<Vec<Arc<PluginNode>>, crate::engine::BundlePluginsError> {
        self.load_bundle(bundle)
            .map_err(|e| crate::engine::BundlePluginsError(Arc::new(e)))
    }

    fn retain(&self, installed: &[String]) {
        self.retain_bundles(installed);
    }
}

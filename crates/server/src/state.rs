//! Shared server state: the gateway (store + runner), the loaded bundles, load warnings and deprecations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value, json};

use super::audit::AuditLog;
use super::config::ServerConfig;
use super::lockout::Lockout;
use super::stream_token::StreamTokens;
use crate::artifacts::ArtifactStore;
use crate::bundle::BundleSet;
use crate::engine::NodeRegistry;
use crate::runner::{Flows, Gateway, catalog};

/// Everything handlers and layers share.
pub struct AppState {
    /// Store, flows and runner.
    pub gw: Arc<Gateway>,
    /// Bundles that loaded and compiled.
    pub bundles: RwLock<BundleSet>,
    /// `ABSTRACTGATEWAY_WORKFLOW_SOURCE=visualflow`: the loose flows of FLOWS_DIR by id, as read.
    pub visualflows: RwLock<std::collections::BTreeMap<String, Value>>,
    /// Why some bundles were left out (also in `/api/health`).
    pub warnings: RwLock<Vec<String>>,
    /// Resolved configuration.
    pub cfg: ServerConfig,
    /// `workflow_deprecations.json` content (`{"bundles": {...}}`).
    pub deprecations: Mutex<Value>,
    /// Serializes reloads, uploads and deletes (they rewrite FLOWS_DIR and swap the flows).
    pub reload_lock: tokio::sync::Mutex<()>,
    /// Serializes `Idempotency-Key` starts so a retry racing the first attempt gets the same run.
    pub idem_lock: tokio::sync::Mutex<()>,
    /// Signs and checks browser SSE tokens.
    pub stream_tokens: StreamTokens,
    /// Auth failure tracking.
    pub lockout: Lockout,
    /// The audit fingerprint of each configured token (`cfg.tokens`, same order): computed once, not per request.
    pub token_fps: Vec<String>,
    /// Concurrency pools.
    pub caps: super::limits::Caps,
    /// Audit log writer (None when disabled).
    pub audit: Option<AuditLog>,
    /// Node types the bundles may use (native, built-in and directory plugins, and the bundles' own).
    pub nodes: NodeRegistry,
    /// What the plugin host offers components (LLM providers, tools, speech), for discovery.
    pub plugin_caps: Arc<crate::plugins::caps::Capabilities>,
    /// Run artifacts under `<data_dir>/artifacts` (shared with the plugin host).
    pub artifacts: Arc<ArtifactStore>,
    /// Cluster mode: where bundle uploads and deletes made through this node are published for every node.
    pub bundle_mirror: std::sync::OnceLock<Arc<dyn BundleMirror>>,
    /// The step frames SSE streams share, per run.
    pub sse_tails: crate::sse_tail::Tails,
    /// Cluster mode: whether this node can serve now (`GET /api/ready`); without one, a node that answers is ready.
    pub readiness: std::sync::OnceLock<Arc<dyn Fn() -> Readiness + Send + Sync>>,
}

/// What `GET /api/ready` answers: 200 when `ready`, else 503, with `detail` (what a load balancer or an operator
/// wants to see: the store, the connection, the shards this node steps).
#[derive(Debug, Clone)]
pub struct Readiness {
    pub ready: bool,
    pub detail: serde_json::Value,
}

/// Cluster mode: publishes the bundle files this node's API installs or removes, so that every node serves the
/// same bundles. The host implements it (on the cluster's object store) and installs what others publish.
pub trait BundleMirror: Send + Sync {
    /// A bundle file was installed in FLOWS_DIR under `file_name` with these bytes.
    fn installed(
        &self,
        file_name: String,
        bytes: bytes::Bytes,
    ) -> futures::future::BoxFuture<'static, Result<(), String>>;
    /// The bundle file `file_name` was removed from FLOWS_DIR.
    fn removed(&self, file_name: String)
    -> futures::future::BoxFuture<'static, Result<(), String>>;
}

/// Shared handle of the state.
pub type SharedState = Arc<AppState>;

/// What FLOWS_DIR holds for the configured workflow source.
pub struct Sources {
    pub bundles: BundleSet,
    pub flows: Flows,
    /// The loose flows by id (visualflow source only).
    pub visualflows: std::collections::BTreeMap<String, Value>,
    pub warnings: Vec<String>,
}

/// Loads FLOWS_DIR as `cfg.workflow_source` says: `.flow` bundles (default), or loose VisualFlow JSON files.
pub fn load_sources(cfg: &super::config::ServerConfig, nodes: &NodeRegistry) -> Sources {
    if cfg.workflow_source == "visualflow" {
        return load_visualflows(&cfg.flows_dir, nodes, cfg.max_bundle_bytes);
    }
    let (bundles, flows, warnings) = load_bundles(&cfg.flows_dir, nodes);
    Sources {
        bundles,
        flows,
        visualflows: Default::default(),
        warnings,
    }
}

/// Most loose flow files read from FLOWS_DIR.
const MAX_VISUALFLOWS: usize = 10_000;

/// The `*.json` files directly in `dir` (no subdirectories, no symlinks), each a VisualFlow registered under its
/// `id` (else the file name's stem), as the seed's visualflow source does. A file over `max_bytes` (0: no cap),
/// unreadable, not JSON, a second flow with an id already taken, or a flow that does not compile is left out
/// with a warning.
fn load_visualflows(dir: &Path, nodes: &NodeRegistry, max_bytes: u64) -> Sources {
    let mut warnings = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            warnings.push(format!("cannot read flows dir {}: {e}", dir.display()));
            Vec::new()
        }
    };
    files.sort();
    if files.len() > MAX_VISUALFLOWS {
        warnings.push(format!(
            "flows dir holds {} flow files; only the first {MAX_VISUALFLOWS} are read",
            files.len()
        ));
        files.truncate(MAX_VISUALFLOWS);
    }
    let mut raw = std::collections::BTreeMap::new();
    let mut sources = Vec::new();
    for p in files {
        let name = p.display().to_string();
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if max_bytes > 0 && size > max_bytes {
            warnings.push(format!(
                "flow {name} not loaded: {size} bytes, over the limit of {max_bytes}"
            ));
            continue;
        }
        let mut flow: Value = match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(Value::Object(o)) => Value::Object(o),
            Ok(_) => {
                warnings.push(format!("flow {name} not loaded: not a JSON object"));
                continue;
            }
            Err(e) => {
                warnings.push(format!("flow {name} not loaded: {e}"));
                continue;
            }
        };
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = flow
            .get("id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or(stem);
        if raw.contains_key(&id) {
            warnings.push(format!(
                "flow {name} not loaded: flow id {id:?} is already taken"
            ));
            continue;
        }
        flow["id"] = Value::String(id.clone());
        raw.insert(id, flow.clone());
        sources.push((name, flow));
    }
    let (flows, problems) = catalog::build_loose(sources, nodes);
    for p in problems {
        warnings.push(format!("flow {} not loaded: {}", p.source, p.message));
    }
    raw.retain(|id, _| flows.get(id).is_some());
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Sources {
        bundles: BundleSet::new(),
        flows,
        visualflows: raw,
        warnings,
    }
}

/// Loads FLOWS_DIR: reads every bundle, compiles it, and returns what loaded plus one warning per failure.
pub fn load_bundles(dir: &Path, nodes: &NodeRegistry) -> (BundleSet, Flows, Vec<String>) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return (
            BundleSet::new(),
            Flows::new(),
            vec![format!("cannot create flows dir {}: {e}", dir.display())],
        );
    }
    let (set, problems) = BundleSet::load_dir(dir);
    let mut warnings: Vec<String> = problems
        .iter()
        .map(|p| format!("bundle {} not loaded: {}", p.path.display(), p.message))
        .collect();
    let (flows, ok, compile_problems) = catalog::build(set.iter().cloned().collect(), nodes);
    warnings.extend(
        compile_problems
            .iter()
            .map(|p| format!("bundle {} not loaded: {}", p.source, p.message)),
    );
    let mut loaded = BundleSet::new();
    for b in ok {
        loaded.insert(b);
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    (loaded, flows, warnings)
}

impl AppState {
    /// Re-reads FLOWS_DIR and swaps bundles and flows; returns the loaded bundle ids.
    pub fn reload(&self) -> Vec<String> {
        let Sources {
            bundles: set,
            flows,
            visualflows,
            warnings,
        } = load_sources(&self.cfg, &self.nodes);
        *self.visualflows.write() = visualflows;
        let ids: Vec<String> = set.bundle_ids().map(str::to_string).collect();
        let refs: Vec<String> = set.iter().map(|b| b.bundle_ref()).collect();
        // What a removed bundle brought (its tools) goes with it.
        self.nodes.retain_bundles(&refs);
        self.gw.reload(flows);
        *self.bundles.write() = set;
        *self.warnings.write() = warnings;
        ids
    }

    /// Path of the deprecations file.
    fn deprecations_path(&self) -> PathBuf {
        self.cfg.data_dir.join("workflow_deprecations.json")
    }

    /// The deprecation entry of `bundle_id`/`flow_id` (`flow_id` entry first, then `*`).
    pub fn deprecation(&self, bundle_id: &str, flow_id: &str) -> Option<Value> {
        let d = self.deprecations.lock();
        let b = d.get("bundles")?.get(bundle_id)?;
        b.get(flow_id).or_else(|| b.get("*")).cloned()
    }

    /// Sets or clears a deprecation and persists the file atomically; returns whether something changed.
    pub fn set_deprecation(
        &self,
        bundle_id: &str,
        flow_id: &str,
        entry: Option<Value>,
    ) -> std::io::Result<bool> {
        let mut d = self.deprecations.lock();
        if !d.get("bundles").is_some_and(Value::is_object) {
            *d = json!({"bundles": {}});
        }
        let bundles = d["bundles"]
            .as_object_mut()
            .ok_or_else(|| std::io::Error::other("deprecations are not an object"))?;
        let changed = match entry {
            Some(e) => {
                let b = bundles
                    .entry(bundle_id.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = b {
                    m.insert(flow_id.to_string(), e);
                }
                true
            }
            None => {
                let removed = bundles
                    .get_mut(bundle_id)
                    .and_then(Value::as_object_mut)
                    .and_then(|m| m.remove(flow_id))
                    .is_some();
                if bundles
                    .get(bundle_id)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    bundles.remove(bundle_id);
                }
                removed
            }
        };
        if changed {
            let path = self.deprecations_path();
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&*d).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(changed)
    }
}

/// Reads `workflow_deprecations.json` (missing or unreadable → empty, with a warning for the latter).
pub fn read_deprecations(data_dir: &Path, warnings: &mut Vec<String>) -> Value {
    let path = data_dir.join("workflow_deprecations.json");
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.get("bundles").is_some_and(Value::is_object) => v,
            _ => {
                warnings.push(format!(
                    "{} is not valid; deprecations ignored",
                    path.display()
                ));
                json!({"bundles": {}})
            }
        },
        Err(_) => json!({"bundles": {}}),
    }
}

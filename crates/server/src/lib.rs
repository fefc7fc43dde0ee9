//! The HTTP + SSE gateway: the seed's API over the durable store and runner, behind the security layers.
//!
//! Layer order, outermost first (`stack.rs`): metrics → request id → audit → URI cap → origin/CORS → auth
//! (+lockout) → body cap → concurrency → routes (their bare-text rejections become `{"detail"}` bodies). Below
//! them all, `http.rs` bounds the head of a request (size and time). `serve` runs the API with the runner in
//! process (`--no-runner` forwards to a `runner` process over a local socket, see `split.rs`).

use abstractgateway_bundle as bundle;
use abstractgateway_engine::engine;
use abstractgateway_model::{run, time};
use abstractgateway_providers::{llm, voice};
use abstractgateway_runner as runner;
use abstractgateway_sandbox::plugins;
use abstractgateway_store::{self as store, artifacts};

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod http;
pub mod limits;
pub mod lockout;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod sse_tail;
pub mod stack;
pub mod state;
pub mod stream_token;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use parking_lot::{Mutex, RwLock};
use tower::ServiceBuilder;
use utoipa_swagger_ui::SwaggerUi;

pub use config::ServerConfig;
use state::{AppState, SharedState};

use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::runner::{Gateway, GatewayOptions, OpenError};
use crate::store::{Batch, Store, StoreError};

/// Why [`open_state`] could not build the server's state.
#[derive(Debug, thiserror::Error)]
pub enum OpenStateError {
    /// The plugin host could not be set up (policy file, plugins dir, built-in components).
    #[error(transparent)]
    Plugins(#[from] crate::plugins::SetupError),
    /// The gateway (workspaces, store, runner thread) could not be opened.
    #[error(transparent)]
    Gateway(#[from] OpenError),
    /// The stream-token key could not be read or stored.
    #[error(transparent)]
    StreamKey(#[from] StoreError),
    /// The audit log could not be opened.
    #[error("cannot open the audit log: {0}")]
    AuditLog(#[source] std::io::Error),
    /// The artifact store could not be opened.
    #[error("cannot open the artifact store: {0}")]
    Artifacts(#[source] ArtifactError),
}

/// Meta key of the stream-token signing key.
const STREAM_KEY_META: &str = "server:stream_token_key";

/// Builds the whole application for `state`.
pub fn app(state: SharedState) -> Router {
    let (routes, doc) = routes::router();
    let swagger: Router<SharedState> = SwaggerUi::new("/docs").url("/openapi.json", doc).into();
    metrics::install();
    // The cross-cutting layers (`stack.rs`) are one service: one boxed future per request for all of them.
    let layers = ServiceBuilder::new()
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state.clone(), stack::layers));
    routes
        .merge(swagger)
        .route_layer(from_fn(metrics::mark_route))
        .layer(layers)
        .with_state(state)
}

fn stream_key(store: &Store) -> Result<Vec<u8>, StoreError> {
    let existing = store.get_meta(STREAM_KEY_META)?;
    if let Some(k) = &existing
        && k.len() == 32
    {
        return Ok(k.clone());
    }
    let key: [u8; 32] = rand::random();
    let mut b = Batch::new();
    b.put_meta(STREAM_KEY_META, &key);
    if existing.is_none() {
        // In a cluster every node signs with one key: the first one written wins, the others read it back.
        b.only_if_absent(STREAM_KEY_META);
    } else {
        // A damaged key is replaced; no run owns it.
        b.set_intake();
    }
    store.commit(b)?;
    match store.get_meta(STREAM_KEY_META)? {
        Some(k) if k.len() == 32 => Ok(k),
        _ => Err(StoreError::Corrupt(
            "the stream-token key is not 32 bytes".to_string(),
        )),
    }
}

/// Opens the data dir, loads FLOWS_DIR and builds the shared state (the runner starts if `cfg.runner`).
pub fn open_state(cfg: ServerConfig) -> Result<SharedState, OpenStateError> {
    open_state_on(cfg, None)
}

/// [`open_state`] on a store the caller opened (a cluster replica); `None` opens the embedded store of the data
/// dir.
pub fn open_state_on(
    cfg: ServerConfig,
    store: Option<Store>,
) -> Result<SharedState, OpenStateError> {
    let (plugins, mut warnings) = crate::plugins::setup(&cfg.data_dir, Some(&cfg.plugins_dir))
        .map_err(OpenStateError::Plugins)?;
    let nodes = plugins.registry();
    // One artifact store: what plugins write is what the HTTP API serves.
    let plugins_artifacts = plugins.artifacts();
    let plugin_caps = plugins.capabilities().clone();
    let state::Sources {
        bundles: set,
        flows,
        visualflows,
        warnings: load_warnings,
    } = state::load_sources(&cfg, &nodes);
    warnings.extend(load_warnings);
    crate::engine::budget::configure(cfg.run_budgets);
    let opts = GatewayOptions {
        data_dir: cfg.data_dir.clone(),
        runner: cfg.runner,
        max_steps: cfg.tick_max_steps,
        executor: Some(plugins),
    };
    let gw = match store {
        Some(store) => Gateway::open_on(opts, flows, store)?,
        None => Gateway::open(opts, flows)?,
    };
    let key = stream_key(gw.store())?;
    let deprecations = state::read_deprecations(&cfg.data_dir, &mut warnings);
    let audit = if cfg.security && cfg.audit_log {
        Some(
            audit::AuditLog::start(&cfg.data_dir, cfg.audit_max_bytes, cfg.audit_rotations)
                .map_err(OpenStateError::AuditLog)?,
        )
    } else {
        None
    };
    let artifacts = match plugins_artifacts {
        Some(a) => a,
        None => Arc::new(
            ArtifactStore::open_with(&cfg.data_dir, crate::artifacts::max_bytes_from_env())
                .map_err(OpenStateError::Artifacts)?,
        ),
    };
    Ok(Arc::new(AppState {
        gw,
        bundles: RwLock::new(set),
        visualflows: RwLock::new(visualflows),
        warnings: RwLock::new(warnings),
        deprecations: Mutex::new(deprecations),
        reload_lock: tokio::sync::Mutex::new(()),
        idem_lock: tokio::sync::Mutex::new(()),
        stream_tokens: stream_token::StreamTokens::new(key),
        lockout: lockout::Lockout::new(cfg.lockout_after, cfg.lockout_base_s, cfg.lockout_max_s),
        token_fps: cfg
            .tokens
            .iter()
            .map(|t| audit::token_fingerprint(t))
            .collect(),
        caps: limits::Caps::new(cfg.max_concurrency, cfg.max_sse),
        audit,
        nodes,
        plugin_caps,
        artifacts,
        bundle_mirror: std::sync::OnceLock::new(),
        readiness: std::sync::OnceLock::new(),
        sse_tails: Default::default(),
        cfg,
    }))
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops the runner.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let gw = state.gw.clone();
    let header_timeout = state.cfg.header_timeout;
    let app = app(state);
    let res = http::serve(listener, app, header_timeout, shutdown).await;
    let _ = tokio::task::spawn_blocking(move || gw.shutdown()).await;
    res
}

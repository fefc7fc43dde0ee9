//! `abstractgateway serve` (HTTP API + in-process runner) and `abstractgateway runner` (runner only).
//!
//! One process owns a data dir (the store lock). `serve` is API and runner in one process. For a split
//! deployment, `runner` owns the data dir and serves the API on a private loopback port, and
//! `serve --no-runner` is a front that forwards every request to it. A second owner of a data dir is
//! refused with a clear error instead of idling silently.
//!
//! With `--store nats://…` (or `ABSTRACTGATEWAY_STORE`) every process is a node of a cluster instead: each serves
//! the whole API from its own replica, and `serve` (without `--no-runner`) and `runner` also compete for the
//! runner lease (see `cluster`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{EXIT_USAGE, cluster};
use crate::server::{self, ServerConfig};

/// Options of `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to bind (loopback by default; a public bind needs a strong token).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind (0 picks a free port, printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Serve the API without stepping runs in this process.
    #[arg(long)]
    pub no_runner: bool,
    /// Where runs are stored: a NATS JetStream cluster, `nats://h1:4222,h2:4222,h3:4222`, shared by every node
    /// (overrides `ABSTRACTGATEWAY_STORE`). Without it, the embedded store in the data dir.
    #[arg(long)]
    pub store: Option<String>,
}

/// Options of `runner`.
#[derive(Args, Debug)]
pub struct RunnerArgs {
    /// Cluster mode: address of this runner's API (health, and the whole API from its replica).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Cluster mode: port of this runner's API (0 picks a free port, printed on stderr).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A NATS JetStream cluster to run from (overrides `ABSTRACTGATEWAY_STORE`); see `serve --store`.
    #[arg(long)]
    pub store: Option<String>,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Opens the store, bundles and runner off the async threads; a failure is printed with its exit code.
async fn open_state(cfg: ServerConfig) -> Result<server::state::SharedState, ExitCode> {
    match tokio::task::spawn_blocking(move || server::open_state(cfg)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            eprintln!("error: startup failed: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// Binds the API's address and says where it listens (tests and scripts wait for that line).
async fn listen(host: &str, port: u16) -> Result<tokio::net::TcpListener, ExitCode> {
    let listener = match tokio::net::TcpListener::bind((host, port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind {host}:{port}: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    match listener.local_addr() {
        Ok(a) => eprintln!("abstractgateway listening on http://{a}"),
        Err(e) => eprintln!("abstractgateway listening ({e})"),
    }
    Ok(listener)
}

/// Runs `serve`.
pub async fn serve(args: ServeArgs) -> ExitCode {
    let mut cfg = ServerConfig::from_env();
    cfg.host = args.host;
    cfg.port = args.port;
    if args.no_runner {
        cfg.runner = false;
    }
    match cfg.check_startup() {
        Ok(warnings) => warnings.iter().for_each(|w| tracing::warn!("{w}")),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Some(url) = args.store.clone().or_else(|| cfg.store.clone()) {
        return serve_cluster(cfg, &url, !args.no_runner).await;
    }
    if args.no_runner {
        return serve_front(&cfg).await;
    }
    let host = cfg.host.clone();
    let port = cfg.port;
    let state = match open_state(cfg).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let listener = match listen(&host, port).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    match server::serve_on(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `serve --no-runner`: the public API front of a split deployment.
async fn serve_front(cfg: &ServerConfig) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind {}:{}: {e}", cfg.host, cfg.port);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match listener.local_addr() {
        Ok(a) => eprintln!(
            "abstractgateway front listening on http://{a}, forwarding to the runner of {}",
            cfg.data_dir.display()
        ),
        Err(e) => eprintln!("abstractgateway front listening ({e})"),
    }
    let app = server::proxy::front(&cfg.data_dir);
    match server::http::serve(listener, app, cfg.header_timeout, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: front failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Cluster mode: an API node that, with `runner`, is also a candidate for the runner lease.
async fn serve_cluster(mut cfg: ServerConfig, url: &str, runner: bool) -> ExitCode {
    let node = match cluster::join(&cfg, url).await {
        Ok(n) => Arc::new(n),
        Err(code) => return code,
    };
    // The runner starts only once this node holds the lease.
    cfg.runner = false;
    let (host, port) = (cfg.host.clone(), cfg.port);
    let store = node.store.clone();
    let state =
        match tokio::task::spawn_blocking(move || server::open_state_on(cfg, Some(store))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(e) => {
                eprintln!("error: startup failed: {e}");
                return ExitCode::from(1);
            }
        };
    state.gw.set_shards(node.shards());
    node.report_readiness(&state);
    if let Err(e) = node.share_artifacts(&state) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let listener = match listen(&host, port).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    node.mirror_bundles(state.clone());
    let shards = runner.then(|| node.run_shards(state.clone()));
    let result = server::serve_on(listener, state.clone(), shutdown_signal()).await;
    cluster::release(&state, shards).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `runner`. Embedded store: owns the data dir, steps its runs, and serves the API on a private loopback port
/// (published in `<data_dir>/runner.addr`) for a `serve --no-runner` front. Cluster store: a runner candidate
/// that serves the API on `--host`/`--port`.
pub async fn runner(args: RunnerArgs) -> ExitCode {
    let mut cfg = ServerConfig::from_env();
    if let Some(url) = args.store.clone().or_else(|| cfg.store.clone()) {
        cfg.host = args.host;
        cfg.port = args.port;
        if let Err(e) = cfg.check_startup() {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        return serve_cluster(cfg, &url, true).await;
    }
    cfg.runner = true;
    cfg.host = "127.0.0.1".into();
    cfg.port = 0;
    // Its API listens on loopback for the front, which sets X-Forwarded-For to the real client.
    cfg.trust_proxy = true;
    if let Err(e) = cfg.check_startup() {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let data_dir = cfg.data_dir.clone();
    let state = match open_state(cfg).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind a loopback port: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => format!("http://{a}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    // Published atomically (the store lock makes this process the only writer of the file).
    let file = server::proxy::addr_file(&data_dir);
    let tmp = file.with_extension("addr.tmp");
    if let Err(e) = std::fs::write(&tmp, &addr).and_then(|_| std::fs::rename(&tmp, &file)) {
        eprintln!("error: cannot write {}: {e}", file.display());
        return ExitCode::from(1);
    }
    eprintln!(
        "abstractgateway runner started on {} (private API on {addr})",
        data_dir.display()
    );
    let result = server::serve_on(listener, state, shutdown_signal()).await;
    let _ = std::fs::remove_file(&file);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: runner API failed: {e}");
            ExitCode::from(1)
        }
    }
}

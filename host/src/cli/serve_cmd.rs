//! `abstractgateway serve` (HTTP API + in-process runner) and `abstractgateway runner` (runner only).
//!
//! One process owns a data dir (the store lock). `serve --no-runner` keeps the API but steps nothing;
//! a second process on the same data dir — `runner` or another `serve` — is refused with a clear error instead of
//! idling silently.

use std::process::ExitCode;

use clap::Args;

use super::EXIT_USAGE;
use crate::runner::{Gateway, GatewayOptions};
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
    let runner = cfg.runner;
    let host = cfg.host.clone();
    let port = cfg.port;
    let state = match tokio::task::spawn_blocking(move || server::open_state(cfg)).await {
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
    if !runner {
        state.warnings.write().push(
            "runner disabled (--no-runner): runs are accepted but do not advance in this process"
                .into(),
        );
    }
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot bind {host}:{port}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match listener.local_addr() {
        Ok(a) => eprintln!("abstractgateway listening on http://{a}"),
        Err(e) => eprintln!("abstractgateway listening ({e})"),
    }
    match server::serve_on(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `runner`: steps runs of the data dir with no HTTP until SIGINT/SIGTERM.
pub async fn runner() -> ExitCode {
    let cfg = ServerConfig::from_env();
    let (_, flows, warnings) = server::state::load_bundles(&cfg.flows_dir);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let opts = GatewayOptions {
        data_dir: cfg.data_dir.clone(),
        runner: true,
        max_steps: cfg.tick_max_steps,
    };
    let gw = match tokio::task::spawn_blocking(move || Gateway::open(opts, flows)).await {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            eprintln!(
                "error: {e}; one process owns a data dir: use `abstractgateway serve` (API and runner together) instead of a separate runner"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "abstractgateway runner started on {}",
        cfg.data_dir.display()
    );
    shutdown_signal().await;
    let _ = tokio::task::spawn_blocking(move || gw.shutdown()).await;
    ExitCode::SUCCESS
}

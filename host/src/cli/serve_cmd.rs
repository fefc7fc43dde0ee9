//! `abstractgateway serve` (HTTP API + in-process runner) and `abstractgateway runner` (runner only).
//!
//! One process owns a data dir (the store lock). `serve` is API and runner in one process. For a split
//! deployment, `runner` owns the data dir and serves the API on a private loopback port, and
//! `serve --no-runner` is a front that forwards every request to it. A second owner of a data dir is
//! refused with a clear error instead of idling silently.

use std::process::ExitCode;

use clap::Args;

use super::EXIT_USAGE;
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
    if args.no_runner {
        return serve_front(&cfg).await;
    }
    let host = cfg.host.clone();
    let port = cfg.port;
    let state = match open_state(cfg).await {
        Ok(s) => s,
        Err(code) => return code,
    };
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

/// Runs `runner`: owns the data dir, steps its runs, and serves the API on a private loopback port
/// (published in `<data_dir>/runner.addr`) for a `serve --no-runner` front.
pub async fn runner() -> ExitCode {
    let mut cfg = ServerConfig::from_env();
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

//! The `abstractgateway` command line: `run`, `bundle inspect|verify|pack`, `serve`, `runner`, `plugin new|build|bindings`,
//! `migrate --from-seed`.

pub mod bundle_cmd;
pub mod cluster;
pub mod migrate_cmd;
pub mod plugin;
pub mod print;
mod progress;
pub mod run_cmd;
pub mod serve_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for bad usage or a bundle that does not load.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "abstractgateway",
    version,
    about = "Durable host for AbstractFlow .flow bundles"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one flow of a bundle until it completes, fails or waits for input.
    Run(run_cmd::RunArgs),
    /// Inspect, verify or pack bundles.
    #[command(subcommand)]
    Bundle(bundle_cmd::BundleCommand),
    /// Serve the HTTP API (and, unless --no-runner, run the workflows) on the configured data dir.
    Serve(serve_cmd::ServeArgs),
    /// Run the workflows of the data dir (embedded store: for a `serve --no-runner` front; cluster store: as a
    /// runner candidate of the cluster).
    Runner(serve_cmd::RunnerArgs),
    /// Create and build WebAssembly plugins (node types) in Rust or Python.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Move the runs, ledgers, commands, artifacts and generated flows of a seed data dir (AbstractGateway 0.2.1,
    /// file backend) into a new data dir.
    Migrate(migrate_cmd::MigrateArgs),
}

/// Parses the command line and runs the command.
pub async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // A server logs a line when a first compile starts and ends; interactive commands also show it ticking.
    progress::install(!matches!(
        cli.command,
        Command::Serve(_) | Command::Runner(_)
    ));
    match cli.command {
        Command::Run(args) => run_cmd::run(args).await,
        Command::Bundle(cmd) => bundle_cmd::run(cmd),
        Command::Serve(args) => serve_cmd::serve(args).await,
        Command::Runner(args) => serve_cmd::runner(args).await,
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Migrate(args) => migrate_cmd::run(args),
    }
}

//! `abstractgateway bundle inspect|verify|pack`: tools for bundle authors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::EXIT_USAGE;
use crate::bundle::{self, Limits, read_bundle};
use crate::runner::catalog;

#[derive(Subcommand, Debug)]
pub enum BundleCommand {
    /// Print the manifest, digest, flows and entrypoint inputs as JSON.
    Inspect { path: PathBuf },
    /// Check a bundle the way the gateway loads it (archive, manifest, its components, every flow compiles
    /// against the built-in node types and plugins).
    Verify {
        path: PathBuf,
        /// Where compiled components are cached (the server's data dir reuses its cache).
        #[arg(long, env = "ABSTRACTGATEWAY_DATA_DIR", default_value = "runtime")]
        data_dir: PathBuf,
        /// Node plugins (`*.wasm`) the server loads besides the built-in ones.
        #[arg(long, env = "ABSTRACTGATEWAY_PLUGINS_DIR")]
        plugins_dir: Option<PathBuf>,
    },
    /// Pack a root flow JSON (with its subflows) or an unpacked bundle directory into a `.flow`.
    Pack {
        /// Root VisualFlow JSON file, or an unpacked bundle directory.
        source: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        bundle_id: Option<String>,
        #[arg(long)]
        bundle_version: Option<String>,
        /// Where subflows `<id>.json` are found (default: the root file's directory).
        #[arg(long)]
        flows_dir: Option<PathBuf>,
        /// Extra entrypoint flow ids.
        #[arg(long = "entrypoint")]
        entrypoints: Vec<String>,
    },
}

/// Runs a bundle subcommand.
pub fn run(cmd: BundleCommand) -> ExitCode {
    match cmd {
        BundleCommand::Inspect { path } => match bundle::cli::inspect(&path) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        BundleCommand::Verify {
            path,
            data_dir,
            plugins_dir,
        } => {
            let b = match read_bundle(&path, &Limits::default()) {
                Ok(b) => Arc::new(b),
                Err(e) => return fail(e),
            };
            // The node types a bundle may use are the server's: native ones plus every plugin it loads.
            let plugins = match crate::plugins::setup(&data_dir, plugins_dir.as_deref()) {
                Ok((plugins, _warnings)) => plugins,
                Err(e) => return fail(e),
            };
            let flows = match catalog::compile_bundle(&b, &plugins.registry()) {
                Ok(flows) => flows,
                Err(e) => return fail(e),
            };
            println!(
                "ok: {} sha256={} flows={}",
                b.bundle_ref(),
                b.sha256,
                b.sorted_flow_ids().join(",")
            );
            print_node_support(&flows);
            ExitCode::SUCCESS
        }
        BundleCommand::Pack {
            source,
            out,
            bundle_id,
            bundle_version,
            flows_dir,
            entrypoints,
        } => {
            let result = if source.is_dir() {
                bundle::pack::pack_dir(&source, &out)
            } else {
                let opts = bundle::pack::PackOptions {
                    bundle_id,
                    bundle_version,
                    flows_dir,
                    extra_entrypoints: entrypoints,
                    default_entrypoint: None,
                    metadata: Default::default(),
                    created_at: None,
                };
                bundle::pack::pack(&source, &out, &opts)
            };
            match result {
                Ok(_) => {
                    println!("wrote {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// One line per node of each flow: whether it runs here, and what runs it or what it lacks.
fn print_node_support(flows: &[crate::flow::CompiledFlow]) {
    use crate::flow::catalogue::{Support, support};
    let mut missing = 0;
    for flow in flows {
        println!("flow {}:", flow.workflow_id);
        for node in flow.order.iter().filter_map(|id| flow.node(id)) {
            let how = match support(&node.kind) {
                Support::Engine => "runs here (engine)".to_string(),
                Support::Component(c) => format!("runs here (component {c})"),
                Support::Needs(needs) => {
                    missing += 1;
                    format!("cannot run here: needs {needs}; the node fails when it runs")
                }
            };
            println!("  {} ({}): {how}", node.node.id, node.node.ty);
        }
    }
    if missing > 0 {
        println!("{missing} node(s) cannot run on this gateway; the rest of the bundle runs");
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_USAGE)
}

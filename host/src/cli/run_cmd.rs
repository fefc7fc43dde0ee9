//! `abstractgateway run`: runs one flow in process and prints its ledger as it grows.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde_json::{Value, json};

use super::EXIT_USAGE;
use super::print::record_line;
use crate::bundle::{Limits, read_bundle};
use crate::run::{RunStatus, WaitReason};
use crate::runner::catalog;
use crate::runner::{Gateway, GatewayOptions, StartRequest};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A `.flow` file or an unpacked bundle directory.
    pub bundle: PathBuf,
    /// Flow id to run (default: the bundle's default entrypoint).
    #[arg(long)]
    pub flow: Option<String>,
    /// Run input as a JSON object.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Where durable state lives.
    #[arg(long, env = "ABSTRACTGATEWAY_DATA_DIR", default_value = "runtime")]
    pub data_dir: PathBuf,
    /// Node plugins (`*.wasm`) to load besides the built-in ones.
    #[arg(long, env = "ABSTRACTGATEWAY_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Print one JSON object per ledger record, then a final summary object.
    #[arg(long)]
    pub json: bool,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs the command.
pub async fn run(args: RunArgs) -> ExitCode {
    let input = match serde_json::from_str::<Value>(&args.input) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return usage("--input must be a JSON object"),
        Err(e) => return usage(format!("--input is not valid JSON: {e}")),
    };
    let bundle = match read_bundle(&args.bundle, &Limits::default()) {
        Ok(b) => Arc::new(b),
        Err(e) => {
            return usage(format!(
                "bundle {} does not load: {e}",
                args.bundle.display()
            ));
        }
    };
    let flow_id = match &args.flow {
        Some(f) => f.rsplit(':').next().unwrap_or(f).to_string(),
        None => match bundle.default_flow() {
            Ok(f) => f.to_string(),
            Err(e) => return usage(e),
        },
    };
    if !bundle.has_flow(&flow_id) {
        return usage(format!(
            "flow '{flow_id}' is not in bundle {}",
            bundle.bundle_ref()
        ));
    }
    let (plugins, warnings) =
        match crate::plugins::setup(&args.data_dir, args.plugins_dir.as_deref()) {
            Ok(p) => p,
            Err(e) => return usage(e),
        };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let (flows, _, problems) = catalog::build(vec![bundle.clone()], &plugins.registry());
    if let Some(p) = problems.first() {
        return usage(format!("bundle does not load: {}", p.message));
    }
    let opts = GatewayOptions {
        data_dir: args.data_dir.clone(),
        runner: true,
        max_steps: 100,
        executor: Some(plugins),
    };
    let gw = match Gateway::open(opts, flows) {
        Ok(g) => g,
        Err(e) => return usage(e),
    };
    let req = StartRequest {
        workflow_id: bundle.workflow_id(&flow_id),
        input,
        session_id: None,
        bundle_sha256: Some(bundle.sha256.clone()),
        idempotency_key: None,
    };
    let run = match gw.start_run(req) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let code = follow(&gw, &run.run_id, args.json).await;
    gw.shutdown();
    code
}

/// True once the run needs nothing more from this process (terminal, or waiting on the outside world).
fn settled(status: Option<RunStatus>, reason: Option<WaitReason>) -> bool {
    match status {
        Some(s) if s.is_terminal() => true,
        Some(RunStatus::Waiting) => matches!(
            reason,
            Some(WaitReason::User | WaitReason::Event | WaitReason::Job)
        ),
        _ => false,
    }
}

async fn follow(gw: &Gateway, run_id: &str, as_json: bool) -> ExitCode {
    let store = gw.store();
    let mut rx = store.watch_run(run_id);
    let mut cursor = 0u64;
    loop {
        let page = match store.ledger_after(run_id, cursor, 2000) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: reading the ledger failed: {e}");
                return ExitCode::from(1);
            }
        };
        for entry in &page {
            cursor = entry.seq;
            if as_json {
                println!("{}", entry.json.get());
            } else {
                let v: Value = serde_json::from_str(entry.json.get()).unwrap_or(Value::Null);
                println!("{}", record_line(entry.seq, &v));
            }
        }
        if !page.is_empty() {
            continue;
        }
        let run = match store.get_run(run_id) {
            Ok(Some(r)) => r,
            Ok(None) => {
                eprintln!("error: run {run_id} vanished");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let reason = run.waiting.as_ref().map(|w| w.reason);
        if settled(Some(run.status), reason) && cursor >= run.ledger_len {
            let summary = json!({"run_id": run.run_id, "status": run.status, "output": run.output, "waiting": run.waiting, "error": run.error});
            if as_json {
                println!("{summary}");
            } else {
                println!("run {} {}", run.run_id, run.status.as_str());
                if let Some(o) = &run.output {
                    println!(
                        "output: {}",
                        serde_json::to_string_pretty(o).unwrap_or_default()
                    );
                }
                if let Some(w) = &run.waiting {
                    println!("waiting: {}", serde_json::to_string(w).unwrap_or_default());
                }
                if let Some(e) = &run.error {
                    println!("error: {e}");
                }
            }
            return if run.status == RunStatus::Failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
        if rx.changed().await.is_err() {
            return ExitCode::from(1);
        }
    }
}

//! Turns loaded bundles into runnable flows; a bundle that does not compile is reported and
//! left out, never blocking the others.

use std::sync::Arc;

use super::flows::Flows;
use crate::bundle::Bundle;
use crate::engine::{BundlePluginsError, NodeRegistry};
use crate::flow::{CompileError, CompiledFlow, compile};

/// Why one bundle (or file) could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProblem {
    /// `bundle@version`, or the file path when the manifest could not be read.
    pub source: String,
    pub message: String,
}

/// Wall-clock time one bundle's flows may take to compile, sandboxed checks included.
pub const COMPILE_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);

/// Why a bundle's flows do not load; the text names the bundle (`bundle@version`) and, where there is one,
/// the flow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleCompileError {
    /// The bundle's components were refused (digest, policy, linking).
    #[error("bundle {bundle}: {source}")]
    Plugins {
        bundle: String,
        source: BundlePluginsError,
    },
    /// Checking the flows took longer than [`COMPILE_BUDGET`]; `flow_id` was not checked.
    #[error(
        "bundle {bundle}: checking its flows took more than {} s (flow {flow_id} not checked); \
         flow functions or pin expressions that do not finish?",
        COMPILE_BUDGET.as_secs()
    )]
    TooSlow { bundle: String, flow_id: String },
    /// A flow does not compile.
    #[error("bundle {bundle} flow {flow_id}: {source}")]
    Flow {
        bundle: String,
        flow_id: String,
        source: CompileError,
    },
}

/// Compiles every flow of `bundle`; the first failure names the flow, node and node type.
pub fn compile_bundle(
    bundle: &Bundle,
    registry: &NodeRegistry,
) -> Result<Vec<CompiledFlow>, BundleCompileError> {
    let registry = &registry
        .for_bundle(bundle)
        .map_err(|source| BundleCompileError::Plugins {
            bundle: bundle.bundle_ref(),
            source,
        })?;
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    for flow_id in bundle.sorted_flow_ids() {
        let Some(raw) = bundle.flow(&flow_id) else {
            continue;
        };
        // Each check of flow functions and pin expressions is bounded by the sandbox; the bundle's
        // checks together are bounded too, so no bundle holds a load or an upload for long.
        if started.elapsed() > COMPILE_BUDGET {
            return Err(BundleCompileError::TooSlow {
                bundle: bundle.bundle_ref(),
                flow_id,
            });
        }
        let compiled = compile(raw, registry).map_err(|source| BundleCompileError::Flow {
            bundle: bundle.bundle_ref(),
            flow_id: flow_id.clone(),
            source,
        })?;
        out.push(compiled);
    }
    Ok(out)
}

/// Compiles loose VisualFlow JSON flows (`ABSTRACTGATEWAY_WORKFLOW_SOURCE=visualflow`), each registered under its
/// own id, with the built-in and operator node types only; `(source, flow)` pairs name where each came from.
/// Returns the flows that compiled and the problems of the others. All of them together get one
/// [`COMPILE_BUDGET`]: past it the rest are refused, so a flows dir cannot hold a start for long.
pub fn build_loose(
    sources: Vec<(String, serde_json::Value)>,
    registry: &NodeRegistry,
) -> (Flows, Vec<LoadProblem>) {
    let mut flows = Flows::new();
    let mut problems = Vec::new();
    let started = std::time::Instant::now();
    for (source, raw) in sources {
        if started.elapsed() > COMPILE_BUDGET {
            problems.push(LoadProblem {
                source,
                message: format!("not compiled: the flows dir took over {COMPILE_BUDGET:?}"),
            });
            continue;
        }
        match compile(&raw, registry) {
            Ok(f) => flows.insert_with_listeners(f),
            Err(e) => problems.push(LoadProblem {
                source,
                message: e.to_string(),
            }),
        }
    }
    (flows, problems)
}

/// Compiles `bundles` into `flows`; returns the bundles that loaded and the problems of the others.
pub fn build(
    bundles: Vec<Arc<Bundle>>,
    registry: &NodeRegistry,
) -> (Flows, Vec<Arc<Bundle>>, Vec<LoadProblem>) {
    let mut flows = Flows::new();
    let mut ok = Vec::new();
    let mut problems = Vec::new();
    for b in bundles {
        match compile_bundle(&b, registry) {
            Ok(compiled) => {
                for f in compiled {
                    flows.insert_with_listeners(f);
                }
                ok.push(b);
            }
            Err(e) => problems.push(LoadProblem {
                source: b.bundle_ref(),
                message: e.to_string(),
            }),
        }
    }
    (flows, ok, problems)
}

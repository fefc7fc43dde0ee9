//! Turns loaded bundles into runnable flows; a bundle that does not compile is reported and
//! left out, never blocking the others.

use std::sync::Arc;

use super::flows::Flows;
use crate::bundle::Bundle;
use crate::engine::NodeRegistry;
use crate::flow::{CompiledFlow, compile};

/// Why one bundle (or file) could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProblem {
    /// `bundle@version`, or the file path when the manifest could not be read.
    pub source: String,
    pub message: String,
}

/// Compiles every flow of `bundle`; the first failure names the flow, node and node type.
pub fn compile_bundle(
    bundle: &Bundle,
    registry: &NodeRegistry,
) -> Result<Vec<CompiledFlow>, String> {
    let registry = &registry
        .for_bundle(bundle)
        .map_err(|e| format!("bundle {}: {e}", bundle.bundle_ref()))?;
    let mut out = Vec::new();
    for flow_id in bundle.sorted_flow_ids() {
        let Some(raw) = bundle.flow(&flow_id) else {
            continue;
        };
        let compiled = compile(raw, registry)
            .map_err(|e| format!("bundle {} flow {flow_id}: {e}", bundle.bundle_ref()))?;
        out.push(compiled);
    }
    Ok(out)
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
            Err(message) => problems.push(LoadProblem {
                source: b.bundle_ref(),
                message,
            }),
        }
    }
    (flows, ok, problems)
}

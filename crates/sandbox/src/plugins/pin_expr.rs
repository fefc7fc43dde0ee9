//! Pin expressions evaluated by a component exporting `pin-eval` (the Python runtime): a synchronous call
//! into a fresh instance, with the component's own memory, CPU-time and output limits.
//!
//! `check` compiles the flow's `functions` and expressions without running them; `evaluate` computes one
//! node's expressions against the run's variables. Nothing is recorded: an expression is pure, and its
//! instance is granted no host call.

use std::sync::Arc;

use serde_json::Value;

use super::PluginHost;
use super::bindings::pin::PinEvaluatorPre;
use super::bindings::pin_eval::{BoundExpression, Expression, PinFailure};
use super::component::LoadedPlugin;
use super::ctx::NodeCtx;
use super::durable::Recorder;
use super::sandbox::{self, Class, Limits, Stop};
use crate::engine::{PinExprError, PinExprEvaluator};
use crate::run::Obj;

/// Seeds the sandbox's randomness: the same for every evaluation, so a replay computes the same value.
const SEED: &str = "pin-expression";

/// The Python component as a [`PinExprEvaluator`].
pub struct ComponentPinExprs {
    host: Arc<PluginHost>,
    plugin: Arc<LoadedPlugin>,
    pre: PinEvaluatorPre<NodeCtx>,
    /// Digests of the checks that passed: a reload (or the upload that compiled a bundle before writing
    /// it) does not run the same code again.
    passed: parking_lot::Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// Passed checks remembered; beyond it the set starts over (a check is only a cache miss away).
const MAX_PASSED_CHECKS: usize = 4096;

impl ComponentPinExprs {
    /// The evaluator `plugin` provides, if it exports `pin-eval`.
    pub fn new(host: Arc<PluginHost>, plugin: Arc<LoadedPlugin>) -> Option<Self> {
        let pre = plugin.pin_eval.clone()?;
        Some(ComponentPinExprs {
            host,
            plugin,
            pre,
            passed: Default::default(),
        })
    }

    /// One call into a fresh instance: its answer (the values of an evaluation, none for a check), or why
    /// the instance stopped.
    fn call(&self, site: &str, op: Op<'_>) -> Result<Result<Vec<String>, PinFailure>, String> {
        let grants = self.plugin.grants.clone();
        let limits = Limits::of(&grants);
        let pre = &self.pre;
        let host = &self.host;
        let g = grants.clone();
        let owner = self.plugin.owner.clone();
        let got = self.host.block_on(async move {
            let _slot = match host.admission.acquire(Class::Reserved).await {
                Ok(slot) => slot,
                Err(stop) => return Ok(Err(stop)),
            };
            // Built once the slot is held: the clock starts now.
            let ctx = NodeCtx::new(
                g,
                host.caps.clone(),
                Recorder::detached("pin-eval"),
                0,
                SEED,
                owner,
            );
            let mut ws = sandbox::store(&host.engine.engine, ctx, limits, None);
            Ok(sandbox::run(&mut ws, limits, None, async |ws| {
                let inst = pre.instantiate_async(&mut *ws).await?;
                let pin = inst.abstractgateway_plugin_pin_eval();
                match op {
                    Op::Check(functions, list) => Ok(pin
                        .call_check(&mut *ws, functions, list)
                        .await?
                        .map(|()| Vec::new())),
                    Op::Evaluate(functions, list, vars) => {
                        pin.call_evaluate(&mut *ws, functions, list, vars).await
                    }
                }
            })
            .await)
        })?;
        got.map_err(|stop| stopped(site, &stop))
    }

    /// The bytes an answer may hold.
    fn max_output(&self) -> u64 {
        self.plugin.grants.max_output_bytes
    }
}

/// Why an instance stopped, in words a flow author can act on.
fn stopped(site: &str, stop: &Stop) -> String {
    let why = match stop {
        Stop::Memory { limit_mb } => format!("it exceeded the memory limit of {limit_mb} MiB"),
        Stop::TimeLimit { limit_ms } => format!("it exceeded the CPU time limit of {limit_ms} ms"),
        Stop::WallClock { limit_ms } => {
            format!("it exceeded the wall-clock limit of {limit_ms} ms")
        }
        Stop::StackOverflow => "it overflowed its stack (unbounded recursion?)".into(),
        other => {
            return format!(
                "pin expression on {site}: {}",
                other.describe("the sandbox")
            );
        }
    };
    format!("pin expression on {site}: stopped: {why}")
}

/// What one call asks: check (functions, expressions) or evaluate (functions, expressions, vars).
enum Op<'a> {
    Check(&'a String, &'a [Expression]),
    Evaluate(&'a String, &'a [BoundExpression], &'a String),
}

/// A failure as the evaluator reports it: the index of the failing expression, and why.
fn failure(f: PinFailure) -> PinExprError {
    PinExprError {
        index: f.index.and_then(|i| usize::try_from(i).ok()),
        message: f.message,
    }
}

impl PinExprEvaluator for ComponentPinExprs {
    fn check(&self, functions: &Value, exprs: &[(&str, &str)]) -> Result<(), PinExprError> {
        let site = exprs.first().map(|(s, _)| *s).unwrap_or("functions");
        let functions = functions.to_string();
        let digest: [u8; 32] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(functions.as_bytes());
            for (site, source) in exprs {
                h.update([0]);
                h.update(site.as_bytes());
                h.update([0]);
                h.update(source.as_bytes());
            }
            h.finalize().into()
        };
        if self.passed.lock().contains(&digest) {
            return Ok(());
        }
        let list: Vec<Expression> = exprs
            .iter()
            .map(|(site, source)| Expression {
                site: site.to_string(),
                source: source.to_string(),
            })
            .collect();
        self.call(site, Op::Check(&functions, &list))
            .map_err(PinExprError::new)?
            .map_err(failure)?;
        let mut passed = self.passed.lock();
        if passed.len() >= MAX_PASSED_CHECKS {
            passed.clear();
        }
        passed.insert(digest);
        Ok(())
    }

    fn eval(
        &self,
        functions: &Value,
        exprs: &[(&str, &str, &Value)],
        vars: &Obj,
    ) -> Result<Vec<Value>, PinExprError> {
        let site = exprs.first().map(|(s, _, _)| *s).unwrap_or("?");
        let list: Vec<BoundExpression> = exprs
            .iter()
            .map(|(site, source, value)| BoundExpression {
                site: site.to_string(),
                source: source.to_string(),
                value: value.to_string(),
            })
            .collect();
        let functions = functions.to_string();
        let vars = serde_json::to_string(vars)
            .map_err(|e| PinExprError::new(format!("pin expression on {site}: {e}")))?;
        let texts = self
            .call(site, Op::Evaluate(&functions, &list, &vars))
            .map_err(PinExprError::new)?
            .map_err(failure)?;
        let size: usize = texts.iter().map(String::len).sum();
        if size as u64 > self.max_output() {
            return Err(PinExprError::new(format!(
                "pin expression on {site} returned {size} bytes; the limit is {}",
                self.max_output()
            )));
        }
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::from_str(t).map_err(|e| PinExprError {
                    index: Some(i),
                    message: format!(
                        "pin expression on {site}: the sandbox answered invalid JSON: {e}"
                    ),
                })
            })
            .collect()
    }
}

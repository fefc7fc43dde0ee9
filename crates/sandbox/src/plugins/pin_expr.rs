//! Pin expressions evaluated by the Python component: a synchronous call into a fresh instance, with the
//! component's own memory, CPU-time and output limits.
//!
//! The component provides the host-internal node type [`PIN_EXPR_TYPE`]; it is never offered to flows.
//! Its `run` gets the flow's `functions` as config and, as inputs, either `{check: [{where, expression}]}`
//! (compile only) or `{eval: [{where, expression, value}], vars}` (one node's expressions); it answers
//! `{ok: true, values?}` or `{ok: false, error, index?}`. Nothing is recorded: an expression is pure, and its instance is granted
//! no host call.

use std::sync::Arc;

use serde_json::{Value, json};

use super::PluginHost;
use super::bindings::node_export::Invocation;
use super::component::LoadedPlugin;
use super::ctx::NodeCtx;
use super::durable::Recorder;
use super::sandbox::{self, Class, Limits, Stop};
use crate::engine::PinExprEvaluator;
use crate::run::Obj;

/// The node type a component declares to evaluate pin expressions.
pub const PIN_EXPR_TYPE: &str = "__pin_expr__";

/// Seeds the sandbox's randomness: the same for every evaluation, so a replay computes the same value.
const SEED: &str = "pin-expression";

/// The Python component as a [`PinExprEvaluator`].
pub struct ComponentPinExprs {
    host: Arc<PluginHost>,
    plugin: Arc<LoadedPlugin>,
    /// Digests of the checks that passed: a reload (or the upload that compiled a bundle before writing
    /// it) does not run the same code again.
    passed: parking_lot::Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// Passed checks remembered; beyond it the set starts over (a check is only a cache miss away).
const MAX_PASSED_CHECKS: usize = 4096;

impl ComponentPinExprs {
    /// The evaluator `plugin` provides, if it declares [`PIN_EXPR_TYPE`].
    pub fn new(host: Arc<PluginHost>, plugin: Arc<LoadedPlugin>) -> Option<Self> {
        plugin
            .types
            .iter()
            .any(|t| t.name == PIN_EXPR_TYPE)
            .then(|| ComponentPinExprs {
                host,
                plugin,
                passed: Default::default(),
            })
    }

    /// One call into a fresh instance; the answer's JSON, or why the instance stopped.
    fn call(&self, functions: &Value, inputs: String, site: &str) -> Result<Value, String> {
        let grants = self.plugin.grants.clone();
        let limits = Limits::of(&grants);
        let inv = Invocation {
            node_type: PIN_EXPR_TYPE.to_string(),
            node_id: site.to_string(),
            config: json!({ "functions": functions }).to_string(),
            inputs,
        };
        let pre = &self.plugin.pre;
        let host = &self.host;
        let g = grants.clone();
        let owner = self.plugin.owner.clone();
        let text = self.host.block_on(async move {
            let _slot = match host.admission.acquire(Class::Reserved).await {
                Ok(slot) => slot,
                Err(stop) => return Ok(Err(stop)),
            };
            // Built once the slot is held: the clock starts now.
            let ctx = NodeCtx::new(
                g,
                host.caps.clone(),
                Recorder::detached(PIN_EXPR_TYPE),
                0,
                SEED,
                owner,
            );
            let mut ws = sandbox::store(&host.engine.engine, ctx, limits, None);
            Ok(sandbox::run(&mut ws, limits, None, async |ws| {
                let inst = pre.instantiate_async(&mut *ws).await?;
                inst.abstractgateway_plugin_node()
                    .call_run(&mut *ws, &inv)
                    .await
            })
            .await)
        })?;
        let text = match text {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => return Err(format!("pin expression on {site}: {}", e.message)),
            Err(stop) => return Err(stopped(site, &stop)),
        };
        if text.len() as u64 > grants.max_output_bytes {
            return Err(format!(
                "pin expression on {site} returned {} bytes; the limit is {}",
                text.len(),
                grants.max_output_bytes
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            format!("pin expression on {site}: the sandbox answered invalid JSON: {e}")
        })
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

/// The `{ok, values | error, index}` answer as a result.
fn answer(v: Value) -> Result<Vec<Value>, (Option<usize>, String)> {
    match v {
        Value::Object(mut m) if m.get("ok") == Some(&Value::Bool(true)) => {
            match m.remove("values") {
                Some(Value::Array(values)) => Ok(values),
                _ => Ok(Vec::new()),
            }
        }
        Value::Object(m) => {
            let index = m
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok());
            let error = m
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("pin expression failed")
                .to_string();
            Err((index, error))
        }
        other => Err((None, format!("the pin-expression sandbox answered {other}"))),
    }
}

impl PinExprEvaluator for ComponentPinExprs {
    fn check(
        &self,
        functions: &Value,
        exprs: &[(&str, &str)],
    ) -> Result<(), (Option<usize>, String)> {
        let check: Vec<Value> = exprs
            .iter()
            .map(|(site, source)| json!({"where": site, "expression": source}))
            .collect();
        let site = exprs.first().map(|(s, _)| *s).unwrap_or("functions");
        let inputs = json!({ "check": check }).to_string();
        let digest: [u8; 32] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(functions.to_string().as_bytes());
            h.update([0]);
            h.update(inputs.as_bytes());
            h.finalize().into()
        };
        if self.passed.lock().contains(&digest) {
            return Ok(());
        }
        let v = self.call(functions, inputs, site).map_err(|e| (None, e))?;
        answer(v)?;
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
    ) -> Result<Vec<Value>, String> {
        let site = exprs.first().map(|(s, _, _)| *s).unwrap_or("?");
        let items: Vec<Value> = exprs
            .iter()
            .map(|(site, source, value)| json!({"where": site, "expression": source, "value": value}))
            .collect();
        // Built by hand so the run's vars are serialized once, never cloned.
        let inputs = format!(
            r#"{{"eval":{},"vars":{}}}"#,
            Value::Array(items),
            serde_json::to_string(vars).map_err(|e| format!("pin expression on {site}: {e}"))?
        );
        answer(self.call(functions, inputs, site)?).map_err(|(_, e)| e)
    }
}

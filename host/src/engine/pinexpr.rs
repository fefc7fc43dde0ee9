//! Pin expressions (§3.6): `data.pinExpressions {pin: "python expr"}` replaces a pin's resolved value.
//!
//! Expressions are Python, so the engine only knows them through [`PinExprEvaluator`], which the plugin
//! host provides with the Python component. An expression is pure (it sees `value`, a read-only `vars`,
//! the sandbox helpers and the flow's `functions`), so, like a pure builtin, it is evaluated again on every
//! pull and never recorded: a replay recomputes the same value.

use std::sync::Arc;

use serde_json::Value;

use crate::builtins::PyException;
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::Obj;

/// The exception class a failing expression raises; effect nodes fail their run with `"<class>: <message>"`.
pub const ERROR_CLASS: &str = "PinExpressionError";

/// One pin expression of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct PinExpr {
    /// The input pin whose value it replaces.
    pub pin: String,
    /// The Python expression, trimmed.
    pub source: String,
    /// `<node label>.<pin>`: how error messages name it (the seed's wording).
    pub site: String,
}

/// Compiles and evaluates pin expressions and flow functions in a sandbox.
pub trait PinExprEvaluator: Send + Sync {
    /// Compiles the flow's `functions` and every `(site, source)` of `exprs`; on failure, the message and
    /// the index in `exprs` of the expression at fault (`None`: the functions are).
    fn check(
        &self,
        functions: &Value,
        exprs: &[(&str, &str)],
    ) -> Result<(), (Option<usize>, String)>;

    /// The values of a node's expressions `(site, source, value)` (`value`: the pin's would-be value), in
    /// order, over the run's `vars`; the first failure ends the batch with its message.
    fn eval(
        &self,
        functions: &Value,
        exprs: &[(&str, &str, &Value)],
        vars: &Obj,
    ) -> Result<Vec<Value>, String>;
}

/// What a flow with pin expressions evaluates them with: the evaluator and the flow's `functions` list.
#[derive(Clone)]
pub struct PinExprs {
    /// The sandbox.
    pub evaluator: Arc<dyn PinExprEvaluator>,
    /// The flow's `functions` (`[{name, code, kind?, description?}]`), as declared.
    pub functions: Arc<Value>,
}

impl std::fmt::Debug for PinExprs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinExprs")
            .field("functions", &self.functions)
            .finish_non_exhaustive()
    }
}

/// A node's `pinExpressions`, keeping only non-empty string expressions on named pins (as the seed does).
pub fn of_node(node: &crate::flow::model::Node, label: &str) -> Vec<PinExpr> {
    let Some(Value::Object(map)) = node.data.get("pinExpressions") else {
        return Vec::new();
    };
    map.iter()
        .filter(|(pin, _)| !pin.is_empty())
        .filter_map(|(pin, v)| {
            let source = v.as_str()?.trim();
            (!source.is_empty()).then(|| PinExpr {
                pin: pin.clone(),
                source: source.to_string(),
                site: format!("{label}.{pin}"),
            })
        })
        .collect()
}

/// Step 4 of §3.3: each expression of `node` replaces its pin's value in `resolved`. An expression sees its
/// own pin's value, never another expression's result, so a node's expressions go to the sandbox together.
pub fn apply(
    flow: &CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
    resolved: &mut Obj,
) -> Result<(), PyException> {
    if node.pin_exprs.is_empty() {
        return Ok(());
    }
    let Some(ctx) = &flow.pin_exprs else {
        return Err(PyException::new(
            ERROR_CLASS,
            format!(
                "pin expressions on node {} cannot be evaluated: no Python sandbox is available",
                node.node.id
            ),
        ));
    };
    let null = Value::Null;
    let batch: Vec<(&str, &str, &Value)> = node
        .pin_exprs
        .iter()
        .map(|e| {
            let value = resolved.get(&e.pin).unwrap_or(&null);
            (e.site.as_str(), e.source.as_str(), value)
        })
        .collect();
    let values = ctx
        .evaluator
        .eval(&ctx.functions, &batch, vars)
        .map_err(|m| PyException::new(ERROR_CLASS, m))?;
    if values.len() != node.pin_exprs.len() {
        return Err(PyException::new(
            ERROR_CLASS,
            format!(
                "pin expressions on node {}: the sandbox returned {} values for {} expressions",
                node.node.id,
                values.len(),
                node.pin_exprs.len()
            ),
        ));
    }
    for (e, v) in node.pin_exprs.iter().zip(values) {
        resolved.insert(e.pin.clone(), v);
    }
    Ok(())
}

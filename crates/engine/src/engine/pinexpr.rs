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
    fn check(&self, functions: &Value, exprs: &[(&str, &str)]) -> Result<(), PinExprError>;

    /// The values of a node's expressions `(site, source, value)` (`value`: the pin's would-be value), in
    /// order, over the run's `vars`; the first failure ends the batch with its message.
    fn eval(
        &self,
        functions: &Value,
        exprs: &[(&str, &str, &Value)],
        vars: &Obj,
    ) -> Result<Vec<Value>, PinExprError>;
}

/// Why a sandbox did not check or evaluate pin expressions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PinExprError {
    /// The expression at fault, by its index in the batch; `None`: the flow's functions, or the sandbox itself
    /// (a limit, an answer it could not give).
    pub index: Option<usize>,
    /// What went wrong, as the run's error shows it.
    pub message: String,
}

impl PinExprError {
    /// A failure of no one expression in particular.
    pub fn new(message: impl Into<String>) -> Self {
        PinExprError {
            index: None,
            message: message.into(),
        }
    }
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
    let values = evaluate(ctx, &batch, vars)?;
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

// ---------------------------------------------------------------------------------------------------------
// Deferral: the runner evaluates expressions off its thread.
//
// An expression may loop until its deadline, so the runner must never wait on one. Inside [`deferring`],
// `apply` does not evaluate: the first batch a step needs becomes a [`PinRequest`], the step is discarded
// (the engine restores the run as it was before the step, see `exec::advance`), and the runner evaluates
// the batch on a thread of its own. The answer goes into the run's [`Memo`] and the step runs again from
// the start; this time the batch is answered from the memo, and the next one (if any) is requested.
// Nothing is recorded before the step completes, so a crash between attempts loses nothing.

/// Batches one step may evaluate; beyond it the run fails instead of retrying forever.
pub const MAX_BATCHES_PER_STEP: usize = 1024;

/// One node's expressions to evaluate, owning what the evaluation needs.
pub struct PinRequest {
    evaluator: Arc<dyn PinExprEvaluator>,
    functions: Arc<Value>,
    /// `(site, source, value)` per expression, in the node's order.
    items: Vec<(String, String, Value)>,
    vars: Obj,
}

impl PinRequest {
    /// Evaluates the batch (blocking: call it off the runner thread); a failing expression is a
    /// [`PinFailure::Error`].
    pub fn evaluate(&self) -> PinResult {
        let batch: Vec<(&str, &str, &Value)> = self
            .items
            .iter()
            .map(|(site, source, value)| (site.as_str(), source.as_str(), value))
            .collect();
        self.evaluator
            .eval(&self.functions, &batch, &self.vars)
            .map_err(|e| PinFailure::Error(e.message))
    }

    /// Where the batch's expressions sit (`<node label>.<pin>`), in order: what an answer is matched on.
    pub fn sites(&self) -> Vec<String> {
        self.items.iter().map(|(s, _, _)| s.clone()).collect()
    }
}

impl std::fmt::Debug for PinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinRequest")
            .field("sites", &self.sites())
            .finish_non_exhaustive()
    }
}

/// Why evaluating a batch off the runner thread gave no values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PinFailure {
    /// The expression failed (raised, ran out of time, escaped): the node gets the message.
    #[error("{0}")]
    Error(String),
    /// The evaluation itself panicked (a gateway bug): the step panics again with this cause when it
    /// runs again, so the run fails through containment like any other panicking step.
    #[error("{0}")]
    Panic(String),
}

/// What evaluating one batch came to.
pub type PinResult = Result<Vec<Value>, PinFailure>;

/// One batch's answer: the sites it was asked for and what their evaluation came to.
type Answer = (Vec<String>, PinResult);

/// The answers a run's current step has received so far, in the order the step asks for them.
#[derive(Debug, Default)]
pub struct Memo {
    answers: Vec<Answer>,
}

impl Memo {
    /// Adds the answer to the request the step made last.
    pub fn answer(&mut self, sites: Vec<String>, result: PinResult) {
        self.answers.push((sites, result));
    }
}

struct Scope {
    memo: Memo,
    /// The index of the next batch the current step attempt asks for.
    next: usize,
    wanted: Option<PinRequest>,
}

thread_local! {
    static SCOPE: std::cell::RefCell<Option<Scope>> = const { std::cell::RefCell::new(None) };
}

/// Restores the thread's previous scope, even when `f` unwinds.
struct Restore(Option<Scope>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        SCOPE.with(|s| *s.borrow_mut() = prev);
    }
}

/// Runs `f` (stepping one run) with evaluation deferred; returns its value, the memo to keep for the
/// next attempt and the batch to evaluate, if a step is waiting for one.
pub fn deferring<T>(memo: Memo, f: impl FnOnce() -> T) -> (T, Memo, Option<PinRequest>) {
    let prev = SCOPE.with(|s| {
        s.borrow_mut().replace(Scope {
            memo,
            next: 0,
            wanted: None,
        })
    });
    let restore = Restore(prev);
    let out = f();
    let scope = SCOPE.with(|s| s.borrow_mut().take());
    drop(restore);
    let (memo, wanted) = scope.map(|s| (s.memo, s.wanted)).unwrap_or_default();
    (out, memo, wanted)
}

/// Runs `f` with no deferral (work on another run, e.g. delivering an event, evaluates in place).
pub fn suspended<T>(f: impl FnOnce() -> T) -> T {
    let prev = SCOPE.with(|s| s.borrow_mut().take());
    let _restore = Restore(prev);
    f()
}

/// True when the step being run is deferring evaluation (the engine snapshots the run before it).
pub fn is_deferring() -> bool {
    SCOPE.with(|s| s.borrow().is_some())
}

/// Called by the engine after each step: true if the step asked for a batch and must be discarded.
/// A step that completed consumed its answers: the memo is emptied for the next one.
pub fn end_step() -> bool {
    SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(scope) = s.as_mut() else {
            return false;
        };
        scope.next = 0;
        if scope.wanted.is_some() {
            return true;
        }
        scope.memo.answers.clear();
        false
    })
}

/// Evaluates `batch` now, or takes its answer from the memo, or asks for it (deferred).
fn evaluate(
    ctx: &PinExprs,
    batch: &[(&str, &str, &Value)],
    vars: &Obj,
) -> Result<Vec<Value>, PyException> {
    let mut panicked = None;
    let asked = SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let scope = s.as_mut()?;
        if scope.wanted.is_some() {
            // The step is already discarded; stop it as soon as possible.
            return Some(Err(PyException::new(ERROR_CLASS, "deferred")));
        }
        let k = scope.next;
        scope.next += 1;
        // Matched on the sites, not the values: an upstream pure node may be volatile (random), and an
        // answer computed from an earlier pull is as valid as one from this pull.
        if let Some((sites, result)) = scope.memo.answers.get(k)
            && sites.len() == batch.len()
            && sites.iter().zip(batch).all(|(a, (b, _, _))| a == b)
        {
            return Some(match result {
                Ok(values) => Ok(values.clone()),
                Err(PinFailure::Error(m)) => Err(PyException::new(ERROR_CLASS, m.clone())),
                Err(PinFailure::Panic(cause)) => {
                    panicked = Some(cause.clone());
                    Err(PyException::new(ERROR_CLASS, "deferred"))
                }
            });
        }
        scope.memo.answers.truncate(k);
        if k >= MAX_BATCHES_PER_STEP {
            return Some(Err(PyException::new(
                ERROR_CLASS,
                format!("a step evaluated more than {MAX_BATCHES_PER_STEP} pin-expression batches"),
            )));
        }
        scope.wanted = Some(PinRequest {
            evaluator: ctx.evaluator.clone(),
            functions: ctx.functions.clone(),
            items: batch
                .iter()
                .map(|(site, source, value)| {
                    (site.to_string(), source.to_string(), (*value).clone())
                })
                .collect(),
            vars: vars.clone(),
        });
        Some(Err(PyException::new(ERROR_CLASS, "deferred")))
    });
    if let Some(cause) = panicked {
        // Raised here, outside the scope's borrow, for the step's containment to catch.
        panic!("{cause}");
    }
    match asked {
        Some(r) => r,
        None => ctx
            .evaluator
            .eval(&ctx.functions, batch, vars)
            .map_err(|e| PyException::new(ERROR_CLASS, e.message)),
    }
}

/// True when the current step has asked for a batch: it will be discarded, so it must start nothing.
pub fn is_waiting() -> bool {
    SCOPE.with(|s| s.borrow().as_ref().is_some_and(|s| s.wanted.is_some()))
}

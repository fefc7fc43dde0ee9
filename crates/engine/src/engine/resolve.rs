//! Lazy data resolution (§3.3): the ambient payload, wires, pin defaults, and volatile pure nodes.

use serde_json::Value;

use super::nodes::NodeKind;
use super::state::{last_output, node_output};
use crate::builtins::{BuiltinCtx, PyException};
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::Obj;

/// Deeper than any real graph; a cycle among pure nodes hits this and is reported.
const MAX_PURE_DEPTH: usize = 256;

/// Pure nodes evaluated for one node's inputs. Pure nodes are volatile (recomputed on every pull), so a data graph
/// that fans out and joins again (a chain of diamonds) costs 2^depth evaluations within the depth cap: forty
/// diamonds would hold a thread for hours. Real graphs stay far below this.
pub const MAX_PURE_EVALS: u32 = 10_000;

thread_local! {
    /// Pure evaluations of the resolution under way on this thread (reset by each top-level resolution).
    static PURE_EVALS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Inputs for an executable node: ambient payload, then wires, then defaults. A failing pull keeps its
/// Python exception class: an effect node fails its run with `"<Class>: <message>"`, where a
/// function-like node only reports the message.
pub fn exec_inputs_typed(
    flow: &CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
) -> Result<Obj, PyException> {
    let mut resolved = match last_output(vars) {
        Some(Value::Object(m)) => m.clone(),
        _ => Obj::new(),
    };
    apply_wires_and_defaults(flow, node, vars, &mut resolved, 0)?;
    Ok(resolved)
}

/// Inputs for a data node (not on the execution path): no ambient payload.
pub fn data_inputs(
    flow: &CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
    depth: usize,
) -> Result<Obj, PyException> {
    // A resolution of its own: the pure-evaluation count starts again.
    PURE_EVALS.with(|n| n.set(0));
    pure_inputs(flow, node, vars, depth)
}

/// Inputs for a pure node: no ambient payload.
fn pure_inputs(
    flow: &CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
    depth: usize,
) -> Result<Obj, PyException> {
    let mut resolved = Obj::new();
    apply_wires_and_defaults(flow, node, vars, &mut resolved, depth)?;
    Ok(resolved)
}

/// Reads output handle `handle` of an already computed output value.
pub fn read_handle(out: &Value, handle: &str) -> Option<Value> {
    match out {
        Value::Object(m) if m.contains_key(handle) => m.get(handle).cloned(),
        _ if handle == "result" || handle == "output" => Some(out.clone()),
        _ => None,
    }
}

/// [`read_handle`] on an output the caller owns: the value is moved out.
fn take_handle(out: Value, handle: &str) -> Option<Value> {
    match out {
        Value::Object(mut m) if m.contains_key(handle) => m.remove(handle),
        out if handle == "result" || handle == "output" => Some(out),
        _ => None,
    }
}

/// Steps 2 to 4 of §3.3: wires, pin defaults, then pin expressions.
pub fn apply_wires_and_defaults(
    flow: &CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
    resolved: &mut Obj,
    depth: usize,
) -> Result<(), PyException> {
    if depth == 0 {
        PURE_EVALS.with(|n| n.set(0));
    }
    for edge in &node.inputs {
        let Some(src) = flow.node(&edge.source) else {
            continue;
        };
        // Only the wired handle is copied out of an exec node's stored output; a pure node's fresh output is
        // moved, not copied.
        let value = if src.exec {
            node_output(vars, &src.node.id).and_then(|o| read_handle(o, &edge.handle))
        } else {
            take_handle(eval_pure(flow, src, vars, depth + 1)?, &edge.handle)
        };
        if let Some(v) = value {
            resolved.insert(edge.pin.clone(), v);
        }
    }
    if let Some(Value::Object(defaults)) = node.node.data.get("pinDefaults") {
        for (pin, v) in defaults {
            if node.inputs.iter().any(|e| &e.pin == pin) {
                continue;
            }
            if node.node.input_pin(pin).is_some() || !resolved.contains_key(pin) {
                resolved.insert(pin.clone(), v.clone());
            }
        }
    }
    super::pinexpr::apply(flow, node, vars, resolved)
}

/// Evaluates a pure node now (pure nodes are volatile: recomputed on every pull).
pub fn eval_pure(
    flow: &CompiledFlow,
    node: &CompiledNode,
    vars: &Obj,
    depth: usize,
) -> Result<Value, PyException> {
    if depth > MAX_PURE_DEPTH {
        return Err(PyException::value_error(format!(
            "Data edge cycle detected at node '{}'",
            node.node.id
        )));
    }
    let evals = PURE_EVALS.with(|n| {
        let v = n.get().saturating_add(1);
        n.set(v);
        v
    });
    if evals > MAX_PURE_EVALS {
        return Err(PyException::new(
            "RunBudgetExceeded",
            format!(
                "resolving the inputs of a node evaluated more than {MAX_PURE_EVALS} pure nodes (at '{}'): \
                 the data graph fans out too much",
                node.node.id
            ),
        ));
    }
    let inputs = pure_inputs(flow, node, vars, depth)?;
    call_node_fn_typed(node, &inputs, vars)
}

/// Runs a builtin or plugin node function on resolved inputs; the error keeps the Python exception class.
pub fn call_node_fn_typed(
    node: &CompiledNode,
    inputs: &Obj,
    vars: &Obj,
) -> Result<Value, PyException> {
    match &node.kind {
        NodeKind::Builtin(f) => {
            let ctx = BuiltinCtx {
                node_type: &node.node.ty,
                node_id: &node.node.id,
                data: &node.node.data,
                pin_order: &node.data_inputs,
                output_pins: &node.data_outputs,
                vars,
            };
            f(inputs, &ctx)
        }
        // A data-only plugin node ran before this pull (`plugin_node::pending_data_node`).
        NodeKind::Plugin(_) => super::plugin_node::data_output(vars, &node.node.id, inputs),
        NodeKind::Missing(m) => Err(PyException::value_error(m.error(&node.node.ty))),
        other => Err(PyException::value_error(format!(
            "node '{}' ({other:?}) cannot be evaluated as a data node",
            node.node.id
        ))),
    }
}

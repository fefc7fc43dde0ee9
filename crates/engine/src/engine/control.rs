//! Control nodes (§3.5): if/switch/loop_limit branch; loop/for/while/sequence/parallel schedule
//! bodies through a control stack kept in `vars._temp._control`, the seed's layout.

use serde_json::{Value, json};

use super::exec::{Plan, complete_output, node_error};
use super::nodes::Control;
use super::resolve;
use super::state::{as_number, num, obj_mut, set_node_output, temp, truthy};
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::{Obj, RunState};

use super::budget::MAX_LOOP_ITERATIONS;

fn ctrl(vars: &mut Obj) -> &mut Obj {
    obj_mut(temp(vars), "_control")
}

fn stack(vars: &mut Obj) -> &mut Vec<Value> {
    let c = ctrl(vars);
    let slot = c.entry("stack").or_insert_with(|| Value::Array(vec![]));
    if !slot.is_array() {
        *slot = Value::Array(vec![]);
    }
    match slot {
        Value::Array(a) => a,
        _ => unreachable!("slot was just made an array"),
    }
}

/// The control node on top of the stack.
pub fn active(vars: &Obj) -> Option<String> {
    vars.get("_temp")?
        .get("_control")?
        .get("stack")?
        .as_array()?
        .last()?
        .as_str()
        .map(String::from)
}

/// Marks that the next visit to `node_id` is a return from one of its bodies.
pub fn mark_return(vars: &mut Obj, node_id: &str) {
    ctrl(vars).insert("return_to".into(), Value::String(node_id.into()));
}

fn consume_return(vars: &mut Obj, node_id: &str) -> bool {
    let c = ctrl(vars);
    if c.get("return_to").and_then(Value::as_str) == Some(node_id) {
        c.remove("return_to");
        true
    } else {
        false
    }
}

fn frame(vars: &mut Obj, node_id: &str) -> Option<Obj> {
    ctrl(vars).get("frames")?.get(node_id)?.as_object().cloned()
}

fn set_frame(vars: &mut Obj, node_id: &str, f: Obj) {
    obj_mut(ctrl(vars), "frames").insert(node_id.into(), Value::Object(f));
}

fn set_prev_handle(vars: &mut Obj, handle: &str) {
    temp(vars).insert("prev_exec_handle".into(), Value::String(handle.into()));
}

/// Gets this node's frame for `kind`; a fresh one (built by `fresh` from the run's vars) on entry,
/// the saved one on a body return. A failing `fresh` leaves the control stack untouched.
fn enter(
    vars: &mut Obj,
    node_id: &str,
    kind: &str,
    fresh: impl FnOnce(&Obj) -> Result<Obj, String>,
) -> Result<Obj, String> {
    let returning = consume_return(vars, node_id);
    let existing =
        frame(vars, node_id).filter(|f| f.get("kind").and_then(Value::as_str) == Some(kind));
    let f = match existing {
        Some(f) if returning => f,
        Some(_) => fresh(vars)?,
        None => {
            let f = fresh(vars)?;
            stack(vars).push(Value::String(node_id.into()));
            f
        }
    };
    let st = stack(vars);
    if st.last().and_then(Value::as_str) != Some(node_id) {
        st.push(Value::String(node_id.into()));
    }
    Ok(f)
}

fn pop(vars: &mut Obj, node_id: &str) {
    if let Some(Value::Object(frames)) = ctrl(vars).get_mut("frames") {
        frames.remove(node_id);
    }
    let st = stack(vars);
    if st.last().and_then(Value::as_str) == Some(node_id) {
        st.pop();
    } else {
        st.retain(|v| v.as_str() != Some(node_id));
    }
}

/// After a scheduler finishes: go to `then`, else return to the parent control node, else complete.
fn leave(run: &mut RunState, node: &CompiledNode, then: Option<&str>, handle: &str) -> Plan {
    pop(&mut run.vars, &node.node.id);
    if let Some(t) = then {
        set_prev_handle(&mut run.vars, handle);
        return Plan::Goto(t.into());
    }
    if let Some(parent) = active(&run.vars) {
        mark_return(&mut run.vars, &parent);
        return Plan::Goto(parent);
    }
    let last = run.vars.get("_last_output").cloned().unwrap_or(Value::Null);
    Plan::Complete(json!({"success": true, "result": last}))
}

fn iteration_output(run: &RunState) -> Obj {
    match run.vars.get("_last_output") {
        Some(Value::Object(m)) => m.clone(),
        other => {
            let mut m = Obj::new();
            m.insert("input".into(), other.cloned().unwrap_or(Value::Null));
            m
        }
    }
}

fn publish(run: &mut RunState, node_id: &str, out: Obj) {
    let v = Value::Object(out);
    run.vars.insert("_last_output".into(), v.clone());
    set_node_output(&mut run.vars, node_id, v);
}

/// Runs one control node.
pub fn run(kind: Control, run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    match kind {
        Control::If | Control::Switch | Control::LoopLimit => branch(kind, run, flow, node),
        Control::Sequence | Control::Parallel => sequence(kind == Control::Parallel, run, node),
        Control::Loop => foreach(run, flow, node),
        Control::For => for_range(run, flow, node),
        Control::While => while_loop(run, flow, node),
    }
}

fn branch(kind: Control, run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let id = node.node.id.clone();
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        Err(e) => return node_error(run, &id, e.message),
    };
    let result = match kind {
        Control::If => {
            let cond = inputs.get("condition").cloned().unwrap_or(Value::Null);
            json!({"branch": if truthy(&cond) { "true" } else { "false" }, "condition": cond})
        }
        Control::Switch => {
            let value = inputs.get("value").cloned().unwrap_or(Value::Null);
            let as_str = |v: &Value| match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => crate::builtins::py_str(other),
            };
            let vs = as_str(&value);
            let cases = node
                .node
                .config("switchConfig", "cases")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let hit = cases.iter().find_map(|c| {
                let cid = c.get("id")?.as_str().filter(|s| !s.is_empty())?;
                let cv = c.get("value").filter(|v| !v.is_null())?;
                (as_str(cv) == vs).then(|| (cid.to_string(), as_str(cv)))
            });
            match hit {
                Some((cid, matched)) => {
                    json!({"branch": format!("case:{cid}"), "value": value, "matched": matched})
                }
                None => json!({"branch": "default", "value": value}),
            }
        }
        _ => {
            let max = inputs
                .get("max")
                .and_then(as_number)
                .unwrap_or(3.0)
                .max(0.0) as u64;
            // Scoped to the current iteration of the enclosing loop.
            let scope = active(&run.vars)
                .and_then(|a| {
                    let f = frame(&mut run.vars, &a)?;
                    Some(format!(
                        "{a}#{}",
                        f.get("idx")
                            .or(f.get("index"))
                            .or(f.get("iters"))
                            .cloned()
                            .unwrap_or(Value::Null)
                    ))
                })
                .unwrap_or_default();
            let key = format!("{id}@{scope}");
            let limits = obj_mut(temp(&mut run.vars), "loop_limits");
            let count = limits.get(&key).and_then(Value::as_u64).unwrap_or(0);
            if count < max && count >= MAX_LOOP_ITERATIONS {
                // An exec-edge cycle through a loop_limit is a loop: the same ceiling as for/while.
                limits.remove(&key);
                return node_error(
                    run,
                    &id,
                    format!("loop_limit exceeded max_iterations={MAX_LOOP_ITERATIONS}"),
                );
            }
            if count < max {
                limits.insert(key, Value::from(count + 1));
                json!({"branch": "again", "count": count + 1, "max": max})
            } else {
                limits.remove(&key);
                json!({"branch": "limit_reached", "count": count, "max": max})
            }
        }
    };
    run.vars.insert("_last_output".into(), result.clone());
    set_node_output(&mut run.vars, &id, result.clone());
    let handle = result
        .get("branch")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match node.handle_target(&handle) {
        Some(t) => {
            set_prev_handle(&mut run.vars, &handle);
            Plan::Goto(t.into())
        }
        None => Plan::Complete(complete_output(&result)),
    }
}

fn sequence(parallel: bool, run: &mut RunState, node: &CompiledNode) -> Plan {
    let id = node.node.id.clone();
    let kind = if parallel { "parallel" } else { "sequence" };
    let entered = enter(&mut run.vars, &id, kind, |_| {
        let mut f = Obj::new();
        f.insert("kind".into(), kind.into());
        f.insert("idx".into(), 0.into());
        Ok(f)
    });
    let mut f = match entered {
        Ok(f) => f,
        Err(e) => return node_error(run, &id, e),
    };
    let mut idx = f.get("idx").and_then(Value::as_u64).unwrap_or(0) as usize;
    while idx < node.then_handles.len() {
        let h = &node.then_handles[idx];
        idx += 1;
        if let Some(t) = node.handle_target(h) {
            f.insert("idx".into(), idx.into());
            set_frame(&mut run.vars, &id, f);
            set_prev_handle(&mut run.vars, h);
            return Plan::Goto(t.into());
        }
    }
    let completed = if parallel {
        node.handle_target("completed")
    } else {
        None
    };
    leave(run, node, completed, "completed")
}

fn foreach(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let id = node.node.id.clone();
    // `items` is resolved once, on entry; body returns reuse the saved list.
    let entered = enter(&mut run.vars, &id, "loop", |vars| {
        let inputs = resolve::exec_inputs_typed(flow, node, vars).map_err(|e| e.message)?;
        let items = match inputs.get("items") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Object(m)) => m.values().cloned().collect(),
            Some(x) => vec![x.clone()],
        };
        let mut f = Obj::new();
        f.insert("kind".into(), "loop".into());
        f.insert("idx".into(), 0.into());
        f.insert("items".into(), Value::Array(items));
        Ok(f)
    });
    let mut f = match entered {
        Ok(f) => f,
        Err(e) => return node_error(run, &id, e),
    };
    let idx = f.get("idx").and_then(Value::as_u64).unwrap_or(0) as usize;
    let list = f
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let body = node.handle_target("loop");
    if body.is_none() || idx >= list.len() {
        return leave(run, node, node.handle_target("done"), "done");
    }
    let mut out = iteration_output(run);
    out.insert("item".into(), list[idx].clone());
    out.insert("index".into(), idx.into());
    out.insert("total".into(), list.len().into());
    publish(run, &id, out);
    f.insert("idx".into(), (idx + 1).into());
    set_frame(&mut run.vars, &id, f);
    set_prev_handle(&mut run.vars, "loop");
    Plan::Goto(body.unwrap_or_default().into())
}

fn for_range(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let id = node.node.id.clone();
    // start/end/step are resolved once, on entry.
    let entered = enter(&mut run.vars, &id, "for", |vars| {
        let inputs = resolve::exec_inputs_typed(flow, node, vars).map_err(|e| e.message)?;
        let start = inputs.get("start").and_then(as_number);
        let end = inputs.get("end").and_then(as_number);
        let step = inputs.get("step").and_then(as_number).unwrap_or(1.0);
        let (Some(start), Some(end)) = (start, end) else {
            return Err("For loop requires numeric 'start' and 'end'.".into());
        };
        if step == 0.0 {
            return Err("For loop requires a non-zero 'step'.".into());
        }
        let span = if step > 0.0 { end - start } else { start - end };
        let total = if span <= 0.0 {
            0
        } else {
            (span / step.abs()).ceil() as u64
        };
        Ok(json!({"kind": "for", "start": start, "end": end, "step": step, "i": start, "index": 0, "total": total})
            .as_object()
            .cloned()
            .unwrap_or_default())
    });
    let mut f = match entered {
        Ok(f) => f,
        Err(e) => return node_error(run, &id, e),
    };
    let Some(body) = node.handle_target("loop") else {
        return leave(run, node, node.handle_target("done"), "done");
    };
    let idx = f.get("index").and_then(Value::as_u64).unwrap_or(0);
    if idx >= MAX_LOOP_ITERATIONS {
        pop(&mut run.vars, &id);
        return node_error(
            run,
            &id,
            format!("For loop exceeded max_iterations={MAX_LOOP_ITERATIONS}"),
        );
    }
    let cur = f.get("i").and_then(Value::as_f64).unwrap_or(0.0);
    let end = f.get("end").and_then(Value::as_f64).unwrap_or(0.0);
    let step = f.get("step").and_then(Value::as_f64).unwrap_or(1.0);
    let done = if step > 0.0 { cur >= end } else { cur <= end };
    if done {
        return leave(run, node, node.handle_target("done"), "done");
    }
    let mut out = iteration_output(run);
    out.insert("i".into(), num(cur));
    out.insert("index".into(), idx.into());
    if let Some(t) = f.get("total") {
        out.insert("total".into(), t.clone());
    }
    publish(run, &id, out);
    f.insert("i".into(), num(cur + step));
    f.insert("index".into(), (idx + 1).into());
    set_frame(&mut run.vars, &id, f);
    set_prev_handle(&mut run.vars, "loop");
    Plan::Goto(body.into())
}

fn while_loop(run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let id = node.node.id.clone();
    let entered = enter(&mut run.vars, &id, "while", |_| {
        let mut f = Obj::new();
        f.insert("kind".into(), "while".into());
        f.insert("iters".into(), 0.into());
        Ok(f)
    });
    let mut f = match entered {
        Ok(f) => f,
        Err(e) => return node_error(run, &id, e),
    };
    let iters = f.get("iters").and_then(Value::as_u64).unwrap_or(0);
    if iters >= MAX_LOOP_ITERATIONS {
        pop(&mut run.vars, &id);
        return node_error(
            run,
            &id,
            format!("While loop exceeded max_iterations={MAX_LOOP_ITERATIONS}"),
        );
    }
    let cond = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i.get("condition").is_some_and(truthy),
        Err(e) => return node_error(run, &id, e.message),
    };
    let body = node.handle_target("loop");
    let Some(body) = body.filter(|_| cond) else {
        return leave(run, node, node.handle_target("done"), "done");
    };
    let base = run.vars.get("_last_output").cloned().unwrap_or(Value::Null);
    let mut out = iteration_output(run);
    out.entry("item").or_insert(base);
    out.insert("index".into(), iters.into());
    publish(run, &id, out);
    f.insert("iters".into(), (iters + 1).into());
    set_frame(&mut run.vars, &id, f);
    set_prev_handle(&mut run.vars, "loop");
    Plan::Goto(body.into())
}

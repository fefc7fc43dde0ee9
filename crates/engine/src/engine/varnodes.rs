//! Pass-through variable writers (set_var, set_vars, set_var_property, add_to_list): they write run
//! variables and leave `_last_output` untouched.

use serde_json::{Value, json};

use super::budget;
use super::exec::{Plan, next_or, node_error};
use super::nodes::VarWrite;
use super::resolve;
use super::state::{get_path, set_node_output, set_path};
use crate::flow::{CompiledFlow, CompiledNode};
use crate::run::{Obj, RunState};

/// Why a variable write is refused: a node error (the run completes with `success: false`, as on the
/// seed) or an exceeded budget (the run fails).
enum Refusal {
    Node(String),
    Budget(budget::BudgetError),
}

impl From<String> for Refusal {
    fn from(e: String) -> Self {
        Refusal::Node(e)
    }
}

impl From<&str> for Refusal {
    fn from(e: &str) -> Self {
        Refusal::Node(e.to_string())
    }
}

/// A dotted path within [`budget::MAX_VAR_PATH_SEGMENTS`].
fn bounded_path(path: String) -> Result<String, Refusal> {
    budget::check_var_path(&path).map_err(Refusal::Budget)?;
    Ok(path)
}

fn var_name(raw: Option<&Value>, what: &str) -> Result<String, Refusal> {
    let name = match raw {
        Some(Value::String(s)) => s.trim().to_string(),
        None | Some(Value::Null) => String::new(),
        Some(other) => crate::builtins::py_str(other).trim().to_string(),
    };
    if name.is_empty() {
        return Err(format!("{what} requires a non-empty variable name.").into());
    }
    if name.starts_with('_') {
        return Err(format!(
            "Invalid variable name '{name}': names starting with '_' are reserved."
        )
        .into());
    }
    bounded_path(name)
}

/// A missing `value` takes the zero value of the pin's declared type.
fn typed_default(node: &CompiledNode) -> Value {
    match node.node.input_pin("value").map(|p| p.ty.as_str()) {
        Some("boolean") => Value::Bool(false),
        Some("number") => json!(0),
        Some("string") => Value::String(String::new()),
        _ => Value::Null,
    }
}

/// Runs one variable-writing node.
pub fn run(kind: VarWrite, run: &mut RunState, flow: &CompiledFlow, node: &CompiledNode) -> Plan {
    let id = node.node.id.clone();
    let inputs = match resolve::exec_inputs_typed(flow, node, &run.vars) {
        Ok(i) => i,
        Err(e) => return node_error(run, &id, e.message),
    };
    let out = match kind {
        VarWrite::SetVar => set_var(run, node, &inputs),
        VarWrite::SetVars => set_vars(run, &inputs),
        VarWrite::SetVarProperty => set_var_property(run, &inputs),
        VarWrite::AddToList => add_to_list(run, node, &inputs),
    };
    match out {
        Ok(v) => {
            set_node_output(&mut run.vars, &id, v.clone());
            let last = run.vars.get("_last_output").cloned().unwrap_or(Value::Null);
            next_or(node, || {
                let mut m = match v {
                    Value::Object(m) if kind == VarWrite::SetVars => m,
                    _ => Obj::new(),
                };
                m.insert("success".into(), Value::Bool(true));
                m.insert("result".into(), last);
                Value::Object(m)
            })
        }
        Err(Refusal::Node(e)) => node_error(run, &id, e),
        Err(Refusal::Budget(e)) => Plan::Fail(e.to_string()),
    }
}

fn set_var(run: &mut RunState, node: &CompiledNode, inputs: &Obj) -> Result<Value, Refusal> {
    let name = var_name(inputs.get("name"), "Set Variable")?;
    let value = match inputs.get("value") {
        Some(v) => v.clone(),
        None => typed_default(node),
    };
    set_path(&mut run.vars, &name, value.clone());
    Ok(json!({"value": value}))
}

fn set_vars(run: &mut RunState, inputs: &Obj) -> Result<Value, Refusal> {
    let updates = match inputs.get("updates") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) if !s.trim().is_empty() => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => Obj::new(),
        },
        _ => Obj::new(),
    };
    let mut normalized = Obj::new();
    for (k, v) in updates {
        let name = var_name(Some(&Value::String(k)), "Set Variables")?;
        normalized.insert(name, v);
    }
    for (k, v) in &normalized {
        set_path(&mut run.vars, k, v.clone());
    }
    Ok(json!({"updates": normalized}))
}

fn set_var_property(run: &mut RunState, inputs: &Obj) -> Result<Value, Refusal> {
    let name = var_name(inputs.get("name"), "Set Variable Property")?;
    let key = match inputs.get("key") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err("Set Variable Property requires a non-empty key.".into()),
    };
    bounded_path(format!("{name}.{key}"))?;
    let value = inputs.get("value").cloned().unwrap_or(Value::Null);
    let mut obj = match get_path(&run.vars, &name) {
        Some(Value::Object(m)) => m.clone(),
        _ => Obj::new(),
    };
    set_path(&mut obj, &key, value);
    let v = Value::Object(obj);
    set_path(&mut run.vars, &name, v.clone());
    Ok(json!({"value": v}))
}

fn add_to_list(run: &mut RunState, node: &CompiledNode, inputs: &Obj) -> Result<Value, Refusal> {
    let name = var_name(inputs.get("name"), "Add to List")?;
    let mut list = match get_path(&run.vars, &name) {
        Some(Value::Array(a)) => a.clone(),
        _ => vec![],
    };
    // `items` only counts when the node declares it: an ambient `items` key from an upstream
    // loop's payload must not be appended.
    match inputs.get("item").filter(|v| !v.is_null()) {
        Some(item) => list.push(item.clone()),
        None if node.node.input_pin("items").is_some() => {
            if let Some(Value::Array(items)) = inputs.get("items") {
                list.extend(items.iter().cloned());
            }
        }
        None => {}
    }
    let v = Value::Array(list);
    set_path(&mut run.vars, &name, v.clone());
    Ok(json!({"list": v}))
}

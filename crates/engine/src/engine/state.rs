//! Helpers over `run.vars`: the seed's reserved namespaces (`_temp`, `_runtime`, `_last_output`) and dotted paths.

use serde_json::{Map, Value};

use crate::run::Obj;

/// `vars[key]` as a mutable object, created (or replaced when not an object) on demand.
pub fn obj_mut<'a>(parent: &'a mut Obj, key: &str) -> &'a mut Obj {
    let slot = parent
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("slot was just made an object"),
    }
}

/// `vars._temp`.
pub fn temp(vars: &mut Obj) -> &mut Obj {
    obj_mut(vars, "_temp")
}

/// Persisted output of an exec node (`vars._temp.node_outputs[node]`).
pub fn node_output<'a>(vars: &'a Obj, node: &str) -> Option<&'a Value> {
    vars.get("_temp")?.get("node_outputs")?.get(node)
}

/// Stores an exec node's output.
pub fn set_node_output(vars: &mut Obj, node: &str, value: Value) {
    obj_mut(temp(vars), "node_outputs").insert(node.to_string(), value);
}

/// The ambient payload (`vars._last_output`).
pub fn last_output(vars: &Obj) -> Option<&Value> {
    vars.get("_last_output")
}

/// Reads a dotted path (`a.b.0.c`); list segments are indices.
pub fn get_path<'a>(root: &'a Obj, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = root.get(first)?;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Writes a dotted path, creating intermediate objects (a non-object on the way is replaced).
pub fn set_path(root: &mut Obj, path: &str, value: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, init)) = parts.split_last() else {
        return;
    };
    let mut cur = root;
    for p in init {
        cur = obj_mut(cur, p);
    }
    cur.insert((*last).to_string(), value);
}

/// Python truthiness of a JSON value.
pub use pycompat::repr::py_truthy as truthy;

/// Numeric view of a value the way Python's `float()` accepts it (bools count, numeric strings parse).
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if !s.trim().is_empty() => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON number that keeps integers integral.
pub fn num(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

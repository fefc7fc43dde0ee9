//! Decision values: `compare`, `and`, `or`, `not`, `coalesce`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{BuiltinCtx, PyException, PyResult, input, input_or};
use pycompat::repr::{py_eq, py_partial_cmp, py_str, py_truthy};

/// `compare(a, op, b)`: Python comparison; an ordering Python refuses is `False`.
pub fn compare(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let a = input(inputs, "a");
    let b = input(inputs, "b");
    let op = py_str(input_or(inputs, "op", &Value::String("==".into())));
    let ord = || py_partial_cmp(a, b);
    let result = match op.as_str() {
        "==" => py_eq(a, b),
        "!=" => !py_eq(a, b),
        "<" => ord() == Some(Ordering::Less),
        "<=" => matches!(ord(), Some(Ordering::Less | Ordering::Equal)),
        ">" => ord() == Some(Ordering::Greater),
        ">=" => matches!(ord(), Some(Ordering::Greater | Ordering::Equal)),
        other => {
            return Err(PyException::value_error(format!(
                "Unknown comparison operator: {other}"
            )));
        }
    };
    Ok(Value::Bool(result))
}

fn truthy_or_false(inputs: &Map<String, Value>, key: &str) -> bool {
    inputs.get(key).is_some_and(py_truthy)
}

/// `not(value)`.
pub fn not(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Bool(!truthy_or_false(inputs, "value")))
}

/// `and(a, b)`, always a bool.
pub fn and(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Bool(
        truthy_or_false(inputs, "a") && truthy_or_false(inputs, "b"),
    ))
}

/// `or(a, b)`, always a bool.
pub fn or(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Bool(
        truthy_or_false(inputs, "a") || truthy_or_false(inputs, "b"),
    ))
}

/// `coalesce`: the first non-null input in declared pin order (`a`, `b` without pins).
pub fn coalesce(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let default_order = ["a".to_string(), "b".to_string()];
    let order: &[String] = if ctx.pin_order.iter().any(|p| !p.is_empty()) {
        ctx.pin_order
    } else {
        &default_order
    };
    Ok(order
        .iter()
        .filter(|pid| !pid.is_empty())
        .filter_map(|pid| inputs.get(pid.as_str()))
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{CtxParts, run};
    use serde_json::json;

    fn cmp(a: serde_json::Value, op: &str, b: serde_json::Value) -> serde_json::Value {
        run("compare", json!({"a": a, "op": op, "b": b})).expect("compare")
    }

    #[test]
    fn compare_uses_python_semantics() {
        assert_eq!(cmp(json!(1), "==", json!(1.0)), json!(true));
        assert_eq!(cmp(json!(true), "==", json!(1)), json!(true));
        assert_eq!(cmp(json!("1"), "==", json!(1)), json!(false));
        assert_eq!(cmp(json!("a"), "!=", json!("b")), json!(true));
        assert_eq!(cmp(json!(2), "<", json!(10)), json!(true));
        assert_eq!(cmp(json!("2"), "<", json!("10")), json!(false));
        assert_eq!(cmp(json!(3), ">=", json!(3.0)), json!(true));
        assert_eq!(cmp(json!([1, 2]), "<=", json!([1, 2])), json!(true));
        // Python raises TypeError for these; the builtin turns that into False.
        assert_eq!(cmp(json!(1), "<", json!("2")), json!(false));
        assert_eq!(cmp(json!(null), "<=", json!(null)), json!(false));
        assert_eq!(cmp(json!({}), ">", json!({})), json!(false));
        // Missing op defaults to ==.
        assert_eq!(
            run("compare", json!({"a": 5, "b": 5})).unwrap(),
            json!(true)
        );
        assert_eq!(run("compare", json!({})).unwrap(), json!(true));
    }

    #[test]
    fn compare_unknown_op_raises() {
        let err = run("compare", json!({"a": 1, "b": 2, "op": "=~"})).unwrap_err();
        assert_eq!(err.kind, "ValueError");
        assert_eq!(err.message, "Unknown comparison operator: =~");
        let err = run("compare", json!({"a": 1, "b": 2, "op": null})).unwrap_err();
        assert_eq!(err.message, "Unknown comparison operator: None");
    }

    #[test]
    fn boolean_ops_use_truthiness() {
        assert_eq!(run("not", json!({"value": ""})).unwrap(), json!(true));
        assert_eq!(run("not", json!({"value": [0]})).unwrap(), json!(false));
        assert_eq!(run("not", json!({})).unwrap(), json!(true));
        assert_eq!(run("and", json!({"a": "x", "b": 1})).unwrap(), json!(true));
        assert_eq!(run("and", json!({"a": "x"})).unwrap(), json!(false));
        assert_eq!(run("or", json!({"a": 0, "b": {}})).unwrap(), json!(false));
        assert_eq!(run("or", json!({"a": 0, "b": "no"})).unwrap(), json!(true));
    }

    #[test]
    fn coalesce_follows_pin_order() {
        let parts = CtxParts::new("coalesce").with_data(json!({
            "inputs": [{"id": "b", "type": "any"}, {"id": "a", "type": "any"}, {"id": "c", "type": "any"}]
        }));
        assert_eq!(parts.run(json!({"a": 1, "b": 2})).unwrap(), json!(2));
        assert_eq!(parts.run(json!({"a": 1, "b": null})).unwrap(), json!(1));
        assert_eq!(parts.run(json!({"c": false})).unwrap(), json!(false));
        assert_eq!(parts.run(json!({"z": 1})).unwrap(), json!(null));
        // Without declared pins: a then b; other keys are ignored.
        assert_eq!(run("coalesce", json!({"z": 9, "b": 3})).unwrap(), json!(3));
    }
}

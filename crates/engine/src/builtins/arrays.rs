//! Array nodes. Non-array inputs are treated the way the reference does (usually as empty).

use std::collections::HashSet;

use rand::seq::IndexedRandom;
use serde_json::{Map, Value};

use super::string::get_path;
use super::{BuiltinCtx, PyResult, input, input_or};
use pycompat::repr::{
    DumpOptions, lenient_index, py_eq, py_iter, py_json_dumps, py_str, py_strip, py_truthy,
    py_type_name,
};

fn pin_order<'a>(ctx: &'a BuiltinCtx) -> Vec<&'a str> {
    let declared: Vec<&str> = ctx
        .pin_order
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    if declared.is_empty() {
        vec!["a", "b"]
    } else {
        declared
    }
}

/// `make_array`: non-null inputs in pin order (`a`, `b` without pins); arrays stay nested.
pub fn make_array(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Array(
        pin_order(ctx)
            .into_iter()
            .filter_map(|pid| inputs.get(pid))
            .filter(|v| !v.is_null())
            .cloned()
            .collect(),
    ))
}

/// `array_concat`: like `make_array`, but array inputs are flattened one level.
pub fn array_concat(inputs: &Map<String, Value>, ctx: &BuiltinCtx) -> PyResult {
    let mut out = Vec::new();
    for v in pin_order(ctx).into_iter().filter_map(|pid| inputs.get(pid)) {
        match v {
            Value::Null => {}
            Value::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    Ok(Value::Array(out))
}

fn array_or_empty(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

fn result_found(result: Value, found: bool) -> Value {
    let mut m = Map::new();
    m.insert("result".into(), result);
    m.insert("found".into(), Value::Bool(found));
    Value::Object(m)
}

/// `get_element(array, index=0, default)`: Python-style negative indices; floats truncate.
pub fn get_element(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let arr = array_or_empty(input(inputs, "array"));
    let idx = lenient_index(input_or(inputs, "index", &Value::from(0)));
    let len = arr.len() as i128;
    let idx = if idx < 0 { len + idx } else { idx };
    if (0..len).contains(&idx) {
        return Ok(result_found(arr[idx as usize].clone(), true));
    }
    Ok(result_found(input(inputs, "default").clone(), false))
}

/// `get_random_element(array, default)`.
pub fn get_random_element(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let arr = array_or_empty(input(inputs, "array"));
    match arr.choose(&mut rand::rng()) {
        Some(v) => Ok(result_found(v.clone(), true)),
        None => Ok(result_found(input(inputs, "default").clone(), false)),
    }
}

fn items_of(inputs: &Map<String, Value>) -> Result<Vec<Value>, super::PyException> {
    py_iter(input_or(inputs, "items", &Value::Array(Vec::new())))
}

/// `array_map(items, key)`: each object's `key` (null if absent); other items pass through.
pub fn array_map(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let key = py_str(input_or(inputs, "key", &Value::String(String::new())));
    let out = items_of(inputs)?
        .into_iter()
        .map(|item| match item {
            Value::Object(m) => m.get(&key).cloned().unwrap_or(Value::Null),
            other => other,
        })
        .collect();
    Ok(Value::Array(out))
}

/// `array_filter(items, key, value)`: objects whose `key` equals `value`, or items equal to it.
pub fn array_filter(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let key = py_str(input_or(inputs, "key", &Value::String(String::new())));
    let value = input(inputs, "value");
    let out = items_of(inputs)?
        .into_iter()
        .filter(|item| match item {
            Value::Object(m) => py_eq(m.get(&key).unwrap_or(&Value::Null), value),
            other => py_eq(other, value),
        })
        .collect();
    Ok(Value::Array(out))
}

/// `array_length(array)`: 0 for anything that is not an array.
pub fn array_length(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::from(array_or_empty(input(inputs, "array")).len()))
}

/// `has_tools(array)`: a non-empty array.
pub fn has_tools(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(Value::Bool(
        !array_or_empty(input(inputs, "array")).is_empty(),
    ))
}

/// `array_append(array, item)`: a new array; a scalar `array` becomes its first element.
pub fn array_append(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let mut out = match input(inputs, "array") {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    out.push(input(inputs, "item").clone());
    Ok(Value::Array(out))
}

/// The reference's dedup fingerprint: `type:str(v)` for scalars, sorted compact JSON otherwise.
fn fingerprint(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => py_json_dumps(
            v,
            DumpOptions {
                sort_keys: true,
                compact: true,
                ..Default::default()
            },
        ),
        scalar => format!("{}:{}", py_type_name(scalar), py_str(scalar)),
    }
}

/// `array_dedup(array, key)`: stable dedup, by the value at path `key` when given.
pub fn array_dedup(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let Value::Array(items) = input(inputs, "array") else {
        return Ok(Value::Array(Vec::new()));
    };
    let key = input(inputs, "key");
    let key_path = if py_truthy(key) {
        py_strip(&py_str(key)).to_string()
    } else {
        String::new()
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let fp = if key_path.is_empty() {
            fingerprint(item)
        } else {
            match get_path(item, &key_path).filter(|v| !v.is_null()) {
                Some(k) => fingerprint(k),
                None => fingerprint(item),
            }
        };
        if seen.insert(fp) {
            out.push(item.clone());
        }
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{CtxParts, run};
    use serde_json::json;

    #[test]
    fn make_and_concat_arrays() {
        let parts = CtxParts::new("make_array").with_data(json!({
            "inputs": [{"id": "a", "type": "any"}, {"id": "b", "type": "any"}, {"id": "c", "type": "any"}]
        }));
        assert_eq!(
            parts.run(json!({"c": 3, "a": [1], "b": null})).unwrap(),
            json!([[1], 3])
        );
        assert_eq!(
            run("make_array", json!({"b": 2, "a": 1, "z": 9})).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            run("array_concat", json!({"a": [1, [2]], "b": 3})).unwrap(),
            json!([1, [2], 3])
        );
        assert_eq!(run("array_concat", json!({"a": null})).unwrap(), json!([]));
    }

    #[test]
    fn get_element_indices() {
        let arr = json!(["x", "y", "z"]);
        let g = |index: serde_json::Value| {
            run(
                "get_element",
                json!({"array": arr, "index": index, "default": "d"}),
            )
            .unwrap()
        };
        assert_eq!(g(json!(0)), json!({"result": "x", "found": true}));
        assert_eq!(g(json!(-1)), json!({"result": "z", "found": true}));
        assert_eq!(g(json!(1.9)), json!({"result": "y", "found": true}));
        assert_eq!(g(json!(" 2 ")), json!({"result": "z", "found": true}));
        assert_eq!(g(json!(true)), json!({"result": "x", "found": true}));
        assert_eq!(g(json!("abc")), json!({"result": "x", "found": true}));
        assert_eq!(g(json!(3)), json!({"result": "d", "found": false}));
        assert_eq!(g(json!(-4)), json!({"result": "d", "found": false}));
        assert_eq!(
            run("get_element", json!({"array": "abc"})).unwrap(),
            json!({"result": null, "found": false})
        );
    }

    #[test]
    fn random_element_is_a_member() {
        for _ in 0..50 {
            let v = run("get_random_element", json!({"array": [1, 2, 3]})).unwrap();
            assert_eq!(v["found"], json!(true));
            assert!([json!(1), json!(2), json!(3)].contains(&v["result"]));
        }
        assert_eq!(
            run("get_random_element", json!({"array": [], "default": 0})).unwrap(),
            json!({"result": 0, "found": false})
        );
    }

    #[test]
    fn map_filter_length() {
        let items = json!([{"k": 1, "n": "a"}, {"n": "b"}, 5, "s"]);
        assert_eq!(
            run("array_map", json!({"items": items, "key": "k"})).unwrap(),
            json!([1, null, 5, "s"])
        );
        assert_eq!(
            run("array_map", json!({"items": "ab"})).unwrap(),
            json!(["a", "b"])
        );
        let e = run("array_map", json!({"items": null})).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            ("TypeError", "'NoneType' object is not iterable")
        );
        assert_eq!(
            run(
                "array_filter",
                json!({"items": [{"k": 1}, {"k": 1.0}, {"k": 2}, 1, true], "key": "k", "value": 1})
            )
            .unwrap(),
            json!([{"k": 1}, {"k": 1.0}, 1, true])
        );
        assert_eq!(
            run(
                "array_filter",
                json!({"items": [{"a": 1}, null], "key": "k"})
            )
            .unwrap(),
            json!([{"a": 1}, null])
        );
        assert_eq!(
            run("array_length", json!({"array": [1, 2]})).unwrap(),
            json!(2)
        );
        assert_eq!(
            run("array_length", json!({"array": "ab"})).unwrap(),
            json!(0)
        );
        assert_eq!(
            run("has_tools", json!({"array": [{}]})).unwrap(),
            json!(true)
        );
        assert_eq!(
            run("has_tools", json!({"array": null})).unwrap(),
            json!(false)
        );
    }

    #[test]
    fn append_and_dedup() {
        assert_eq!(
            run("array_append", json!({"array": [1], "item": 2})).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            run("array_append", json!({"array": "x"})).unwrap(),
            json!(["x", null])
        );
        assert_eq!(
            run("array_append", json!({"item": {"a": 1}})).unwrap(),
            json!([{"a": 1}])
        );
        assert_eq!(
            run("array_dedup", json!({"array": [1, 1.0, "1", true, 1, null, null, {"b": 1, "a": 2}, {"a": 2, "b": 1}]})).unwrap(),
            json!([1, 1.0, "1", true, null, {"b": 1, "a": 2}])
        );
        assert_eq!(
            run("array_dedup", json!({"array": [{"id": 1, "v": "a"}, {"id": 1, "v": "b"}, {"v": "c"}, {"v": "c"}], "key": " id "})).unwrap(),
            json!([{"id": 1, "v": "a"}, {"v": "c"}])
        );
        assert_eq!(
            run("array_dedup", json!({"array": "abc"})).unwrap(),
            json!([])
        );
    }
}

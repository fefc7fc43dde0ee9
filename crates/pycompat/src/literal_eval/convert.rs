//! `literal_eval`'s conversion: the parsed literal to a Python value (`convert`), and that
//! value to JSON the way `parse_json` gives it (`to_json`).

use serde_json::{Map, Value};

use super::PyVal;
use super::errors::malformed;
use super::parse::{Node, NodeKind, UnOp};
use crate::PyException;
use crate::repr::{float_value, int_value, py_float_repr};

/// The JSON form `parse_json` gives a literal (`_jsonify`: tuples become lists, dict keys
/// become `str(key)`, anything else non-JSON becomes its `str()`).
pub fn to_json(v: &PyVal) -> Value {
    match v {
        PyVal::None => Value::Null,
        PyVal::Bool(b) => Value::Bool(*b),
        PyVal::Int(i) => {
            if i64::try_from(*i).is_ok() || u64::try_from(*i).is_ok() {
                int_value(*i)
            } else {
                float_value(*i as f64)
            }
        }
        PyVal::Float(f) => float_value(*f),
        PyVal::Str(s) => Value::String(s.clone()),
        PyVal::Tuple(items) | PyVal::List(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        PyVal::Dict(pairs) => {
            let mut map = Map::new();
            for (k, val) in pairs {
                map.insert(pyval_str(k), to_json(val));
            }
            Value::Object(map)
        }
        other => Value::String(pyval_str(other)),
    }
}

/// Python `str()` of a literal value.
fn pyval_str(v: &PyVal) -> String {
    match v {
        PyVal::Str(s) => s.clone(),
        other => pyval_repr(other),
    }
}

/// Python `repr()` of a literal value.
pub(super) fn pyval_repr(v: &PyVal) -> String {
    match v {
        PyVal::None => "None".into(),
        PyVal::Bool(true) => "True".into(),
        PyVal::Bool(false) => "False".into(),
        PyVal::Int(i) => i.to_string(),
        PyVal::Float(f) => py_float_repr(*f),
        PyVal::Complex(re, im) => complex_repr(*re, *im),
        PyVal::Str(s) => crate::repr::py_str_repr(s),
        PyVal::Bytes(b) => bytes_repr(b),
        PyVal::Tuple(items) => {
            let inner: Vec<String> = items.iter().map(pyval_repr).collect();
            if items.len() == 1 {
                format!("({},)", inner[0])
            } else {
                format!("({})", inner.join(", "))
            }
        }
        PyVal::List(items) => {
            let inner: Vec<String> = items.iter().map(pyval_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        PyVal::Set(items) => {
            if items.is_empty() {
                "set()".into()
            } else {
                let inner: Vec<String> = items.iter().map(pyval_repr).collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
        PyVal::Dict(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", pyval_repr(k), pyval_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        PyVal::Ellipsis => "Ellipsis".into(),
    }
}

fn complex_part(f: f64) -> String {
    let r = py_float_repr(f);
    r.strip_suffix(".0").map(str::to_string).unwrap_or(r)
}

fn complex_repr(re: f64, im: f64) -> String {
    if re == 0.0 && re.is_sign_positive() {
        return format!("{}j", complex_part(im));
    }
    let sign = if im < 0.0 || (im == 0.0 && im.is_sign_negative()) {
        "-"
    } else {
        "+"
    };
    format!("({}{sign}{}j)", complex_part(re), complex_part(im.abs()))
}

fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from("b");
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote);
    out
}

pub(super) fn convert(node: &Node) -> Result<PyVal, PyException> {
    match &node.kind {
        NodeKind::Const(v) => Ok(v.clone()),
        NodeKind::Tuple(items) => Ok(PyVal::Tuple(
            items.iter().map(convert).collect::<Result<_, _>>()?,
        )),
        NodeKind::List(items) => Ok(PyVal::List(
            items.iter().map(convert).collect::<Result<_, _>>()?,
        )),
        NodeKind::Set(items) => {
            let mut out: Vec<PyVal> = Vec::new();
            for item in items {
                let v = convert(item)?;
                check_hashable(&v)?;
                if !out.iter().any(|o| py_val_eq(o, &v)) {
                    out.push(v);
                }
            }
            Ok(PyVal::Set(out))
        }
        NodeKind::Call(func, true) if matches!(&func.kind, NodeKind::Name(n) if n == "set") => {
            Ok(PyVal::Set(Vec::new()))
        }
        NodeKind::Dict(pairs) => {
            let mut out: Vec<(PyVal, PyVal)> = Vec::new();
            for (k, v) in pairs {
                let key = match k {
                    Some(k) => convert(k)?,
                    None => return Err(malformed(None)),
                };
                let value = convert(v)?;
                check_hashable(&key)?;
                match out.iter_mut().find(|(ok, _)| py_val_eq(ok, &key)) {
                    Some(slot) => slot.1 = value,
                    None => out.push((key, value)),
                }
            }
            Ok(PyVal::Dict(out))
        }
        NodeKind::BinOp(true, is_add, left, right) => {
            let l = match convert_signed_num(left)? {
                PyVal::Int(i) => Some(i as f64),
                PyVal::Float(f) => Some(f),
                _ => None,
            };
            match (l, convert_num(right)?) {
                (Some(lf), PyVal::Complex(re, im)) => Ok(if *is_add {
                    PyVal::Complex(lf + re, im)
                } else {
                    PyVal::Complex(lf - re, -im)
                }),
                _ => convert_signed_num(node),
            }
        }
        _ => convert_signed_num(node),
    }
}

fn convert_num(node: &Node) -> Result<PyVal, PyException> {
    match &node.kind {
        NodeKind::Const(v @ (PyVal::Int(_) | PyVal::Float(_) | PyVal::Complex(..))) => {
            Ok(v.clone())
        }
        _ => Err(malformed(Some(node))),
    }
}

fn convert_signed_num(node: &Node) -> Result<PyVal, PyException> {
    if let NodeKind::Unary(op @ (UnOp::Plus | UnOp::Minus), operand) = &node.kind {
        let v = convert_num(operand)?;
        if *op == UnOp::Plus {
            return Ok(v);
        }
        return Ok(match v {
            PyVal::Int(i) => PyVal::Int(-i),
            PyVal::Float(f) => PyVal::Float(-f),
            PyVal::Complex(re, im) => PyVal::Complex(-re, -im),
            other => other,
        });
    }
    convert_num(node)
}

fn check_hashable(v: &PyVal) -> Result<(), PyException> {
    let unhashable = |t: &str| Err(PyException::type_error(format!("unhashable type: '{t}'")));
    match v {
        PyVal::List(_) => unhashable("list"),
        PyVal::Dict(_) => unhashable("dict"),
        PyVal::Set(_) => unhashable("set"),
        PyVal::Tuple(items) => items.iter().try_for_each(check_hashable),
        _ => Ok(()),
    }
}

fn num_of(v: &PyVal) -> Option<(f64, f64, Option<i128>)> {
    match v {
        PyVal::Bool(b) => Some((f64::from(u8::from(*b)), 0.0, Some(i128::from(*b)))),
        PyVal::Int(i) => Some((*i as f64, 0.0, Some(*i))),
        PyVal::Float(f) => Some((*f, 0.0, None)),
        PyVal::Complex(re, im) => Some((*re, *im, None)),
        _ => None,
    }
}

/// Python `==` between literal values (dict-key and set-member identity).
fn py_val_eq(a: &PyVal, b: &PyVal) -> bool {
    if let (Some(x), Some(y)) = (num_of(a), num_of(b)) {
        return match (x.2, y.2) {
            (Some(i), Some(j)) => i == j,
            _ => x.0 == y.0 && x.1 == y.1,
        };
    }
    match (a, b) {
        (PyVal::None, PyVal::None) | (PyVal::Ellipsis, PyVal::Ellipsis) => true,
        (PyVal::Str(x), PyVal::Str(y)) => x == y,
        (PyVal::Bytes(x), PyVal::Bytes(y)) => x == y,
        (PyVal::Tuple(x), PyVal::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_val_eq(p, q))
        }
        _ => false,
    }
}

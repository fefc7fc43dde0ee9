//! Math nodes: Python float arithmetic (`add(2, 3)` is `5.0`), Python's errors and rounding.

use rand::Rng;
use serde_json::{Map, Value};

use super::{BuiltinCtx, PyException, PyResult, input_or};
use pycompat::repr::{float_to_int, float_value, int_value, py_float, py_int};

fn num(inputs: &Map<String, Value>, key: &str, default: i64) -> Result<f64, PyException> {
    let fallback = Value::from(default);
    py_float(input_or(inputs, key, &fallback))
}

/// `add(a, b)` = `float(a) + float(b)`.
pub fn add(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(float_value(num(inputs, "a", 0)? + num(inputs, "b", 0)?))
}

/// `subtract(a, b)` = `float(a) - float(b)`.
pub fn subtract(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(float_value(num(inputs, "a", 0)? - num(inputs, "b", 0)?))
}

/// `multiply(a, b)` = `float(a) * float(b)`.
pub fn multiply(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(float_value(num(inputs, "a", 0)? * num(inputs, "b", 0)?))
}

/// `divide(a, b)`; `b` is converted (and checked) before `a`, as in Python.
pub fn divide(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let b = num(inputs, "b", 1)?;
    if b == 0.0 {
        return Err(PyException::value_error("Division by zero"));
    }
    Ok(float_value(num(inputs, "a", 0)? / b))
}

/// `modulo(a, b)`: Python float `%` (the result takes the divisor's sign).
pub fn modulo(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let b = num(inputs, "b", 1)?;
    if b == 0.0 {
        return Err(PyException::value_error("Modulo by zero"));
    }
    Ok(float_value(py_mod(num(inputs, "a", 0)?, b)))
}

fn py_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) { m + b } else { m }
    } else {
        0.0_f64.copysign(b)
    }
}

/// `power(base, exp)`: Python float `**`, with its `ZeroDivisionError` and `OverflowError`.
///
/// A negative base with a fractional exponent is a complex number in Python; JSON has no
/// such value, so the result is `null`.
pub fn power(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let base = num(inputs, "base", 0)?;
    let exp = num(inputs, "exp", 1)?;
    if base == 0.0 && exp < 0.0 && exp.is_finite() {
        return Err(PyException::new(
            "ZeroDivisionError",
            "0.0 cannot be raised to a negative power",
        ));
    }
    if base < 0.0 && base.is_finite() && exp.is_finite() && exp != exp.floor() {
        return Ok(Value::Null);
    }
    let r = base.powf(exp);
    if r.is_infinite() && base.is_finite() && exp.is_finite() {
        return Err(PyException::new(
            "OverflowError",
            "(34, 'Numerical result out of range')",
        ));
    }
    Ok(float_value(r))
}

/// `abs(value)` = `abs(float(value))`.
pub fn abs(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    Ok(float_value(num(inputs, "value", 0)?.abs()))
}

/// `round(value, decimals)`: Python `round(float, int)`, correctly rounded, ties to even.
pub fn round(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let value = num(inputs, "value", 0)?;
    let decimals = py_int(input_or(inputs, "decimals", &Value::from(0)))?;
    Ok(float_value(py_round(value, decimals)))
}

/// Python `round(x, ndigits)` for a float.
pub(crate) fn py_round(x: f64, ndigits: i128) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    if ndigits > 323 {
        return x;
    }
    if ndigits < -308 {
        return 0.0 * x;
    }
    if ndigits >= 0 {
        let s = format!("{:.*}", ndigits as usize, x);
        let r: f64 = s.parse().unwrap_or(x);
        return if r == 0.0 { 0.0_f64.copysign(x) } else { r };
    }
    round_to_tens(x, (-ndigits) as usize)
}

/// Rounds to a multiple of `10^k` on the exact decimal value of `x`, ties to even.
fn round_to_tens(x: f64, k: usize) -> f64 {
    let negative = x < 0.0;
    let int_part = x.abs().trunc();
    let has_fraction = x.abs() > int_part;
    let digits = format!("{int_part:.0}");
    let r = if digits.len() < k {
        // Fewer integer digits than k: |x| < 10^(k-1), below half of 10^k.
        "0".to_string()
    } else {
        let (head, tail) = digits.split_at(digits.len() - k);
        let half = format!("5{}", "0".repeat(k - 1));
        let round_up = match tail.cmp(half.as_str()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                has_fraction || head.bytes().last().is_some_and(|d| (d - b'0') % 2 == 1)
            }
        };
        let head = if head.is_empty() {
            "0".to_string()
        } else {
            head.to_string()
        };
        let head = if round_up {
            increment_decimal(&head)
        } else {
            head
        };
        format!("{head}{}", "0".repeat(k))
    };
    let magnitude: f64 = r.parse().unwrap_or(0.0);
    if negative { -magnitude } else { magnitude }
}

fn increment_decimal(digits: &str) -> String {
    let mut bytes: Vec<u8> = digits.bytes().collect();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).unwrap_or_default();
        }
    }
    let mut out = String::from("1");
    out.push_str(&String::from_utf8(bytes).unwrap_or_default());
    out
}

/// `int(float(raw))`, or `fallback` when Python would raise.
fn lenient_int(raw: &Value, fallback: i128) -> i128 {
    py_float(raw).and_then(float_to_int).unwrap_or(fallback)
}

/// `float(raw)`, or `fallback` when Python would raise.
fn lenient_float(raw: &Value, fallback: f64) -> f64 {
    py_float(raw).unwrap_or(fallback)
}

/// `random_int(min=0, max=100)`: uniform in the inclusive range (bounds swapped if reversed).
pub fn random_int(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let zero = Value::from(0);
    let hundred = Value::from(100);
    let mut lo = lenient_int(input_or(inputs, "min", &zero), 0);
    let mut hi = lenient_int(input_or(inputs, "max", &hundred), 100);
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    let lo = lo.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let hi = hi.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    Ok(int_value(i128::from(rand::rng().random_range(lo..=hi))))
}

/// `random_float(min=0, max=1)`: `min + (max - min) * random()`.
pub fn random_float(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let zero = Value::from(0);
    let one = Value::from(1);
    let mut lo = lenient_float(input_or(inputs, "min", &zero), 0.0);
    let mut hi = lenient_float(input_or(inputs, "max", &one), 1.0);
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi == lo {
        return Ok(float_value(lo));
    }
    let r: f64 = rand::rng().random();
    Ok(float_value(lo + (hi - lo) * r))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::run;
    use super::py_round;
    use serde_json::json;

    #[test]
    fn arithmetic_returns_floats() {
        let five = run("add", json!({"a": 2, "b": 3})).unwrap();
        assert_eq!(five, json!(5.0));
        assert!(five.is_f64());
        assert_eq!(
            run("add", json!({"a": "1.5", "b": true})).unwrap(),
            json!(2.5)
        );
        assert_eq!(run("add", json!({})).unwrap(), json!(0.0));
        assert_eq!(
            run("subtract", json!({"a": 10, "b": 2.5})).unwrap(),
            json!(7.5)
        );
        assert_eq!(
            run("multiply", json!({"a": "3", "b": " 4 "})).unwrap(),
            json!(12.0)
        );
        assert_eq!(run("divide", json!({"a": 1, "b": 4})).unwrap(), json!(0.25));
        assert_eq!(run("divide", json!({"a": 7})).unwrap(), json!(7.0));
        assert_eq!(run("abs", json!({"value": -3})).unwrap(), json!(3.0));
        assert_eq!(
            run("power", json!({"base": 2, "exp": 10})).unwrap(),
            json!(1024.0)
        );
        assert_eq!(run("power", json!({"base": 9})).unwrap(), json!(9.0));
    }

    #[test]
    fn modulo_follows_the_divisor_sign() {
        assert_eq!(
            run("modulo", json!({"a": -7.5, "b": 2})).unwrap(),
            json!(0.5)
        );
        assert_eq!(
            run("modulo", json!({"a": 7.5, "b": -2})).unwrap(),
            json!(-0.5)
        );
        assert_eq!(run("modulo", json!({"a": 7, "b": 3})).unwrap(), json!(1.0));
        let z = run("modulo", json!({"a": 0, "b": -5})).unwrap();
        assert!(z.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()));
    }

    #[test]
    fn python_errors() {
        let e = run("divide", json!({"a": 1, "b": 0})).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            ("ValueError", "Division by zero")
        );
        // b is checked before a is converted.
        let e = run("divide", json!({"a": "x", "b": 0.0})).unwrap_err();
        assert_eq!(e.message, "Division by zero");
        let e = run("modulo", json!({"a": 1, "b": "0"})).unwrap_err();
        assert_eq!(e.message, "Modulo by zero");
        let e = run("add", json!({"a": null, "b": 1})).unwrap_err();
        assert_eq!(e.kind, "TypeError");
        assert_eq!(
            e.message,
            "float() argument must be a string or a real number, not 'NoneType'"
        );
        let e = run("add", json!({"a": 1, "b": "two"})).unwrap_err();
        assert_eq!(e.message, "could not convert string to float: 'two'");
        let e = run("power", json!({"base": 10, "exp": 400})).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            ("OverflowError", "(34, 'Numerical result out of range')")
        );
        let e = run("power", json!({"base": 0, "exp": -1})).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                "ZeroDivisionError",
                "0.0 cannot be raised to a negative power"
            )
        );
        let e = run("round", json!({"value": 1.5, "decimals": "x"})).unwrap_err();
        assert_eq!(e.message, "invalid literal for int() with base 10: 'x'");
    }

    #[test]
    fn round_matches_python() {
        let cases = [
            (2.5, 0, 2.0),
            (3.5, 0, 4.0),
            (2.675, 2, 2.67),
            (0.125, 2, 0.12),
            (1234.5, -2, 1200.0),
            (1250.0, -2, 1200.0),
            (1350.0, -2, 1400.0),
            (1250.5, -2, 1300.0),
            (-0.4, 0, -0.0),
            (1e300, -400, 0.0),
            (1.5, 400, 1.5),
            (49.0, -2, 0.0),
            (51.0, -2, 100.0),
            (50.0, -2, 0.0),
            (-951.0, -3, -1000.0),
            (999.9, -3, 1000.0),
        ];
        for (x, n, want) in cases {
            let got = py_round(x, n);
            assert_eq!(got, want, "round({x}, {n})");
            assert_eq!(
                got.is_sign_negative(),
                want.is_sign_negative(),
                "sign of round({x}, {n})"
            );
        }
        assert_eq!(
            run("round", json!({"value": "2.71828", "decimals": 2})).unwrap(),
            json!(2.72)
        );
        assert_eq!(run("round", json!({"value": 2.5})).unwrap(), json!(2.0));
        assert_eq!(
            run("round", json!({"value": 2.567, "decimals": 1.9})).unwrap(),
            json!(2.6)
        );
    }

    #[test]
    fn random_nodes_stay_in_range() {
        for _ in 0..200 {
            let v = run("random_int", json!({"min": 5, "max": 3})).unwrap();
            assert!(v.as_i64().is_some_and(|i| (3..=5).contains(&i)), "{v}");
            let f = run("random_float", json!({"min": "2", "max": 2.5})).unwrap();
            assert!(f.as_f64().is_some_and(|x| (2.0..=2.5).contains(&x)), "{f}");
        }
        assert_eq!(
            run("random_int", json!({"min": 7, "max": 7})).unwrap(),
            json!(7)
        );
        // Unparseable bounds fall back to the defaults instead of raising.
        let v = run("random_int", json!({"min": "abc", "max": null})).unwrap();
        assert!(v.as_i64().is_some_and(|i| (0..=100).contains(&i)));
        assert_eq!(
            run("random_float", json!({"min": 4, "max": 4})).unwrap(),
            json!(4.0)
        );
    }
}

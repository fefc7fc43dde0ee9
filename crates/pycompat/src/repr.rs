//! Python semantics for JSON values: `str()`, `repr()`, truthiness, `float()`/`int()`,
//! `==`/`<` and `json.dumps`.
//!
//! The reference runtime is Python; the node outputs a flow author sees are Python's
//! renderings of the values (`True`, `5.0`, `{'a': 1}`), so every builtin goes through
//! these helpers instead of serde's formatting.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::PyException;

/// Python's type name of a JSON value (`NoneType`, `bool`, `int`, `float`, `str`, `list`, `dict`).
pub fn py_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python `str(value)`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python `repr(value)` (dicts and lists render their items with `repr`).
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out);
    out
}

fn write_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number_repr(n)),
        Value::String(s) => out.push_str(&py_str_repr(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&py_str_repr(k));
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

fn number_repr(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        py_float_repr(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Python `repr(float)`: shortest round-trip digits, `1e+16` style exponents, `.0` on integers.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let (negative, digits, exp) = shortest_digits(f);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format_exponent(exp));
    } else {
        out.push_str(&place_decimal_point(&digits, exp, true));
    }
    out
}

/// Shortest round-trip decimal digits of a finite non-zero float: (negative, digits, exponent)
/// where the value is `d.ddd × 10^exponent`.
pub fn shortest_digits(f: f64) -> (bool, String, i32) {
    let split = |s: &str| -> (String, i32) {
        let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        (digits, exp.parse().unwrap_or(0))
    };
    // Rust finds the shortest length; Python then takes the correctly rounded digits of
    // that length (ties to even), which Rust's exact formatting gives.
    let (shortest, _) = split(&format!("{:e}", f.abs()));
    let (digits, exp) = split(&format!(
        "{:.*e}",
        shortest.len().saturating_sub(1),
        f.abs()
    ));
    (f.is_sign_negative(), digits, exp)
}

/// Python's exponent suffix: sign always present, at least two digits.
pub fn format_exponent(exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exp.unsigned_abs())
}

/// Places the decimal point in a digit string `d.ddd × 10^exp` (fixed notation).
pub fn place_decimal_point(digits: &str, exp: i32, add_dot_zero: bool) -> String {
    let n = digits.len() as i32;
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("0.{zeros}{digits}");
    }
    if exp + 1 >= n {
        let zeros = "0".repeat((exp + 1 - n) as usize);
        return if add_dot_zero {
            format!("{digits}{zeros}.0")
        } else {
            format!("{digits}{zeros}")
        };
    }
    let split = (exp + 1) as usize;
    format!("{}.{}", &digits[..split], &digits[split..])
}

/// Python `repr(str)`: single quotes unless the text holds `'` but no `"`, escapes for
/// non-printable characters.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_py_printable(c) => out.push(c),
            c => push_hex_escape(&mut out, c),
        }
    }
    out.push(quote);
    out
}

/// Python `ascii()`-style escape of one character (`\xNN`, `\uNNNN`, `\UNNNNNNNN`).
pub fn push_hex_escape(out: &mut String, c: char) {
    let code = c as u32;
    if code <= 0xff {
        out.push_str(&format!("\\x{code:02x}"));
    } else if code <= 0xffff {
        out.push_str(&format!("\\u{code:04x}"));
    } else {
        out.push_str(&format!("\\U{code:08x}"));
    }
}

/// Python `str.isprintable()` for one character (Unicode categories C*, Z* except space are not).
///
/// Unassigned code points (category Cn) are not tabulated and count as printable.
pub fn is_py_printable(c: char) -> bool {
    let u = c as u32;
    !matches!(
        u,
        0x00..=0x1f
            | 0x7f..=0xa0
            | 0xad
            | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x1680
            | 0x180e
            | 0x2000..=0x200f
            | 0x2028..=0x202f
            | 0x205f..=0x2064
            | 0x2066..=0x206f
            | 0x3000
            | 0xd800..=0xf8ff
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0xfffe..=0xffff
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x13438
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
            | 0xf0000..=0x10ffff
    )
}

/// Python `str.isspace()` for one character.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python truthiness (`bool(value)`).
pub fn py_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i != 0
            } else if let Some(u) = n.as_u64() {
                u != 0
            } else {
                n.as_f64().is_none_or(|f| f != 0.0)
            }
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A float result as JSON; Python's `inf`/`nan` have no JSON form and become `null`.
pub fn float_value(f: f64) -> Value {
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// An integer result as JSON (saturating at the i64 range).
pub fn int_value(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::from(v)
    } else if let Ok(v) = u64::try_from(i) {
        Value::from(v)
    } else if i < 0 {
        Value::from(i64::MIN)
    } else {
        Value::from(u64::MAX)
    }
}

/// Python `float(value)`.
pub fn py_float(v: &Value) -> Result<f64, PyException> {
    match v {
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => Ok(number_as_f64(n)),
        Value::String(s) => parse_py_float(s).ok_or_else(|| {
            PyException::value_error(format!(
                "could not convert string to float: {}",
                py_str_repr(s)
            ))
        }),
        other => Err(PyException::type_error(format!(
            "float() argument must be a string or a real number, not '{}'",
            py_type_name(other)
        ))),
    }
}

fn number_as_f64(n: &Number) -> f64 {
    if let Some(i) = n.as_i64() {
        i as f64
    } else if let Some(u) = n.as_u64() {
        u as f64
    } else {
        n.as_f64().unwrap_or(f64::NAN)
    }
}

/// Parses a string the way Python's `float()` does (surrounding whitespace, `_` between
/// digits, `inf`/`infinity`/`nan` in any case).
pub fn parse_py_float(s: &str) -> Option<f64> {
    let t = py_strip(s);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let magnitude = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if !is_decimal_float_syntax(body) {
                return None;
            }
            body.replace('_', "").parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// `digitpart ["." [digitpart]] | "." digitpart`, then an optional exponent; `_` only between digits.
fn is_decimal_float_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = scan_digit_part(b, &mut i);
    let mut frac_digits = Some(0);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = scan_digit_part(b, &mut i);
    }
    match (int_digits, frac_digits) {
        (None, _) | (_, None) => return false,
        (Some(0), Some(0)) => return false,
        _ => {}
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        match scan_digit_part(b, &mut i) {
            Some(n) if n > 0 => {}
            _ => return false,
        }
    }
    i == b.len()
}

/// Scans `digit (["_"] digit)*`; `None` on a misplaced underscore, else the digit count.
fn scan_digit_part(b: &[u8], i: &mut usize) -> Option<usize> {
    let mut count = 0;
    while *i < b.len() {
        match b[*i] {
            b'0'..=b'9' => {
                count += 1;
                *i += 1;
            }
            b'_' => {
                if count == 0 || *i + 1 >= b.len() || !b[*i + 1].is_ascii_digit() {
                    return None;
                }
                *i += 1;
            }
            _ => break,
        }
    }
    Some(count)
}

/// Python `int(value)` (floats truncate; strings are base-10 integers only).
pub fn py_int(v: &Value) -> Result<i128, PyException> {
    match v {
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else {
                float_to_int(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => parse_py_int(s).ok_or_else(|| {
            PyException::value_error(format!(
                "invalid literal for int() with base 10: {}",
                py_str_repr(s)
            ))
        }),
        other => Err(PyException::type_error(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            py_type_name(other)
        ))),
    }
}

/// `int(x)` for a number, `int(float(s))` for a non-blank string; 0 where the reference falls back.
pub fn lenient_index(v: &Value) -> i128 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(|f| float_to_int(f).ok()))
            .unwrap_or(0),
        Value::String(s) if !py_strip(s).is_empty() => parse_py_float(s)
            .and_then(|f| float_to_int(f).ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Python `int(float)`: truncation toward zero, errors for `inf`/`nan`.
pub fn float_to_int(f: f64) -> Result<i128, PyException> {
    if f.is_nan() {
        return Err(PyException::value_error(
            "cannot convert float NaN to integer",
        ));
    }
    if f.is_infinite() {
        return Err(PyException::new(
            "OverflowError",
            "cannot convert float infinity to integer",
        ));
    }
    // `as` saturates beyond i128; such magnitudes only arise from absurd inputs.
    Ok(f.trunc() as i128)
}

/// Parses a base-10 integer string as Python's `int()` does.
pub fn parse_py_int(s: &str) -> Option<i128> {
    let t = py_strip(s);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let b = body.as_bytes();
    let mut i = 0;
    match scan_digit_part(b, &mut i) {
        Some(n) if n > 0 && i == b.len() => {}
        _ => return None,
    }
    let digits = body.replace('_', "");
    // Beyond 128 bits Python keeps an exact int; saturate instead.
    let magnitude: i128 = digits.parse().unwrap_or(i128::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

/// A number or bool as Python sees it in comparisons.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Number(n) => Some(if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        _ => None,
    }
}

fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f.is_infinite() {
        return Some(if f > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    let floor = f.floor();
    if floor >= 1.7e38 {
        return Some(Ordering::Less);
    }
    if floor < -1.7e38 {
        return Some(Ordering::Greater);
    }
    match i.cmp(&(floor as i128)) {
        Ordering::Equal if f > floor => Some(Ordering::Less),
        o => Some(o),
    }
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// Python `a == b` on JSON values (`1 == 1.0 == True`, deep for lists and dicts).
pub fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return cmp_num(x, y) == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => false,
    }
}

/// Python ordering of two values; `None` where Python raises `TypeError` or the values
/// are unordered (NaN), which the comparison builtins both report as `False`.
pub fn py_partial_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return cmp_num(x, y);
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return py_partial_cmp(p, q);
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

/// Options of [`py_json_dumps`], mirroring `json.dumps` keyword arguments.
#[derive(Debug, Clone, Copy, Default)]
pub struct DumpOptions {
    /// `indent=` (None: single line).
    pub indent: Option<usize>,
    /// `sort_keys=`.
    pub sort_keys: bool,
    /// `separators=(",", ":")` instead of the default `(", ", ": ")`.
    pub compact: bool,
    /// `ensure_ascii=`.
    pub ensure_ascii: bool,
}

/// Python `json.dumps(value, indent=…, sort_keys=…, ensure_ascii=…)` byte for byte.
pub fn py_json_dumps(v: &Value, opts: DumpOptions) -> String {
    let mut out = String::new();
    // Without a limit nothing is refused.
    let _ = write_json(v, &opts, 0, &mut out, usize::MAX);
    out
}

/// [`py_json_dumps`], or `None` as soon as the indentation would take the text past `limit` bytes (an
/// indent is multiplied by the nesting and the number of items, so it is not bounded by the value).
pub fn py_json_dumps_limited(v: &Value, opts: DumpOptions, limit: usize) -> Option<String> {
    let mut out = String::new();
    write_json(v, &opts, 0, &mut out, limit).ok()?;
    Some(out)
}

/// The text went past the limit of [`py_json_dumps_limited`].
struct OverLimit;

fn write_json(
    v: &Value,
    opts: &DumpOptions,
    level: usize,
    out: &mut String,
    limit: usize,
) -> Result<(), OverLimit> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_repr(n)),
        Value::String(s) => write_json_str(s, opts.ensure_ascii, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                write_item_separator(opts, level + 1, i == 0, out, limit)?;
                write_json(item, opts, level + 1, out, limit)?;
            }
            write_closing_indent(opts, level, out, limit)?;
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if opts.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                write_item_separator(opts, level + 1, i == 0, out, limit)?;
                write_json_str(k, opts.ensure_ascii, out);
                out.push_str(if opts.compact { ":" } else { ": " });
                write_json(item, opts, level + 1, out, limit)?;
            }
            write_closing_indent(opts, level, out, limit)?;
            out.push('}');
        }
    }
    Ok(())
}

/// A newline and `width * level` spaces, unless that takes the text past `limit`.
fn push_indent(
    width: usize,
    level: usize,
    out: &mut String,
    limit: usize,
) -> Result<(), OverLimit> {
    let n = width.saturating_mul(level);
    if out.len().saturating_add(n).saturating_add(1) > limit {
        return Err(OverLimit);
    }
    out.push('\n');
    out.push_str(&" ".repeat(n));
    Ok(())
}

fn write_item_separator(
    opts: &DumpOptions,
    level: usize,
    first: bool,
    out: &mut String,
    limit: usize,
) -> Result<(), OverLimit> {
    match opts.indent {
        Some(width) => {
            if !first {
                out.push(',');
            }
            push_indent(width, level, out, limit)?;
        }
        None => {
            if !first {
                out.push_str(if opts.compact { "," } else { ", " });
            }
        }
    }
    Ok(())
}

fn write_closing_indent(
    opts: &DumpOptions,
    level: usize,
    out: &mut String,
    limit: usize,
) -> Result<(), OverLimit> {
    match opts.indent {
        Some(width) => push_indent(width, level, out, limit),
        None => Ok(()),
    }
}

fn write_json_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Decodes the `\n`, `\t`, `\r` escapes the editor stores literally in separators.
pub fn decode_ui_escapes(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\r", "\r")
}

/// Python slice bounds `[start:end]` over a sequence of `len` items.
pub fn py_slice_bounds(len: usize, start: i128, end: Option<i128>) -> (usize, usize) {
    let len_i = len as i128;
    let clamp = |i: i128| -> usize {
        if i < 0 {
            (i + len_i).max(0) as usize
        } else {
            i.min(len_i) as usize
        }
    };
    let s = clamp(start);
    let e = end.map(clamp).unwrap_or(len);
    (s, e.max(s))
}

/// Python `dict(value)` for the shapes JSON can hold (a mapping copy, or pairs).
pub fn py_dict(v: &Value) -> Result<Map<String, Value>, PyException> {
    match v {
        Value::Object(map) => Ok(map.clone()),
        Value::Array(items) => {
            let mut out = Map::new();
            for (i, item) in items.iter().enumerate() {
                let pair: Vec<Value> = match item {
                    Value::Array(p) => p.clone(),
                    Value::String(s) => s.chars().map(|c| Value::String(c.to_string())).collect(),
                    Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
                    _ => {
                        return Err(PyException::type_error(format!(
                            "cannot convert dictionary update sequence element #{i} to a sequence"
                        )));
                    }
                };
                if pair.len() != 2 {
                    return Err(PyException::value_error(format!(
                        "dictionary update sequence element #{i} has length {}; 2 is required",
                        pair.len()
                    )));
                }
                out.insert(json_key(&pair[0])?, pair[1].clone());
            }
            Ok(out)
        }
        Value::String(s) => {
            if s.is_empty() {
                Ok(Map::new())
            } else {
                Err(PyException::value_error(
                    "dictionary update sequence element #0 has length 1; 2 is required",
                ))
            }
        }
        other => Err(PyException::type_error(format!(
            "'{}' object is not iterable",
            py_type_name(other)
        ))),
    }
}

/// The JSON object key Python's `json.dumps` would write for a dict key.
fn json_key(k: &Value) -> Result<String, PyException> {
    match k {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok("null".into()),
        Value::Bool(b) => Ok(if *b { "true" } else { "false" }.into()),
        Value::Number(n) => Ok(number_repr(n)),
        other => Err(PyException::type_error(format!(
            "unhashable type: '{}'",
            py_type_name(other)
        ))),
    }
}

/// Python iteration of a value as a list (`list(value)`): strings give characters,
/// dicts give keys; scalars raise `TypeError`.
pub fn py_iter(v: &Value) -> Result<Vec<Value>, PyException> {
    match v {
        Value::Array(items) => Ok(items.clone()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        Value::Object(map) => Ok(map.keys().map(|k| Value::String(k.clone())).collect()),
        other => Err(PyException::type_error(format!(
            "'{}' object is not iterable",
            py_type_name(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (2.5e300, "2.5e+300"),
            (-0.0, "-0.0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (5.0, "5.0"),
            (1e22, "1e+22"),
            (1.0e-320, "1e-320"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-2.5, "-2.5"),
            (100.25, "100.25"),
            // Two shortest candidates: Python keeps the even one.
            (811_212_085_039_910.0 + 0.25, "811212085039910.2"),
            (221_991_263_332_664.0 + 0.625, "221991263332664.62"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn str_and_repr_match_python() {
        let v = json!({"a": 1, "b": [true, null], "c": "it's", "d": "q\"x",
                       "e": "both ' and \"", "f": "\u{1}\t\u{a0}é\u{200b}😀", "g": 2.0});
        assert_eq!(
            py_str(&v),
            r#"{'a': 1, 'b': [True, None], 'c': "it's", 'd': 'q"x', 'e': 'both \' and "', 'f': '\x01\t\xa0é\u200b😀', 'g': 2.0}"#
        );
        assert_eq!(py_str(&json!("plain")), "plain");
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!(false)), "False");
        assert_eq!(py_str(&json!(-7)), "-7");
        assert_eq!(py_str(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(py_str(&json!([])), "[]");
        assert_eq!(py_str(&json!({})), "{}");
    }

    #[test]
    fn truthiness_matches_python() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!py_truthy(&falsy), "{falsy}");
        }
        for truthy in [
            json!(true),
            json!(-1),
            json!(0.1),
            json!(" "),
            json!([0]),
            json!({"a": null}),
            json!("False"),
        ] {
            assert!(py_truthy(&truthy), "{truthy}");
        }
    }

    #[test]
    fn float_coercion_matches_python() {
        assert_eq!(py_float(&json!(" 1_000.5 ")).ok(), Some(1000.5));
        assert_eq!(py_float(&json!(".5")).ok(), Some(0.5));
        assert_eq!(py_float(&json!("5.")).ok(), Some(5.0));
        assert_eq!(py_float(&json!("-iNf")).ok(), Some(f64::NEG_INFINITY));
        assert_eq!(py_float(&json!("1e1_0")).ok(), Some(1e10));
        assert_eq!(py_float(&json!(true)).ok(), Some(1.0));
        assert!(py_float(&json!("nan")).is_ok_and(f64::is_nan));
        for bad in [
            "1__0", "_1", "1_", "1._5", "1_.5", "0x10", "", " ", "nan(1)", "1e", ".",
        ] {
            let err = py_float(&json!(bad)).unwrap_err();
            assert_eq!(err.kind, "ValueError");
            assert_eq!(
                err.message,
                format!("could not convert string to float: {}", py_str_repr(bad))
            );
        }
        let err = py_float(&json!(null)).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (
                "TypeError",
                "float() argument must be a string or a real number, not 'NoneType'"
            )
        );
        assert!(
            py_float(&json!([1]))
                .unwrap_err()
                .message
                .ends_with("not 'list'")
        );
    }

    #[test]
    fn int_coercion_matches_python() {
        assert_eq!(py_int(&json!(" 12 ")).ok(), Some(12));
        assert_eq!(py_int(&json!("1_2")).ok(), Some(12));
        assert_eq!(py_int(&json!("+5")).ok(), Some(5));
        assert_eq!(py_int(&json!("-0")).ok(), Some(0));
        assert_eq!(py_int(&json!(-2.9)).ok(), Some(-2));
        assert_eq!(py_int(&json!(true)).ok(), Some(1));
        for bad in ["1.5", "", "1e3"] {
            let err = py_int(&json!(bad)).unwrap_err();
            assert_eq!(
                err.message,
                format!(
                    "invalid literal for int() with base 10: {}",
                    py_str_repr(bad)
                )
            );
        }
        assert_eq!(
            py_int(&json!(null)).unwrap_err().message,
            "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"
        );
        assert_eq!(
            float_to_int(f64::INFINITY).unwrap_err().kind,
            "OverflowError"
        );
        assert_eq!(
            float_to_int(f64::NAN).unwrap_err().message,
            "cannot convert float NaN to integer"
        );
    }

    #[test]
    fn equality_and_ordering_match_python() {
        assert!(py_eq(&json!(1), &json!(1.0)));
        assert!(py_eq(&json!(true), &json!(1)));
        assert!(!py_eq(&json!("1"), &json!(1)));
        assert!(py_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!py_eq(&json!(null), &json!(false)));
        assert_eq!(py_partial_cmp(&json!(1), &json!(1.5)), Some(Ordering::Less));
        assert_eq!(
            py_partial_cmp(&json!(9007199254740993_i64), &json!(9007199254740992.0)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            py_partial_cmp(&json!("b"), &json!("a")),
            Some(Ordering::Greater)
        );
        assert_eq!(
            py_partial_cmp(&json!([1, 2]), &json!([1, 3])),
            Some(Ordering::Less)
        );
        assert_eq!(
            py_partial_cmp(&json!([1, 2]), &json!([1])),
            Some(Ordering::Greater)
        );
        assert_eq!(py_partial_cmp(&json!([1, "a"]), &json!([1, 2])), None);
        assert_eq!(py_partial_cmp(&json!(1), &json!("1")), None);
        assert_eq!(py_partial_cmp(&json!(null), &json!(null)), None);
        assert_eq!(py_partial_cmp(&json!({}), &json!({})), None);
    }

    #[test]
    fn json_dumps_matches_python() {
        let v = json!({"a": [1, 2, {"b": null}], "c": {}, "d": []});
        let pretty = py_json_dumps(
            &v,
            DumpOptions {
                indent: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(
            pretty,
            "{\n  \"a\": [\n    1,\n    2,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}"
        );
        let x = json!({"x": "é\u{2028}\u{7f}\u{1}\"\\"});
        assert_eq!(
            py_json_dumps(&x, DumpOptions::default()),
            "{\"x\": \"é\u{2028}\u{7f}\\u0001\\\"\\\\\"}"
        );
        let ascii = DumpOptions {
            ensure_ascii: true,
            ..Default::default()
        };
        assert_eq!(
            py_json_dumps(&json!("é😀"), ascii),
            "\"\\u00e9\\ud83d\\ude00\""
        );
        let compact = DumpOptions {
            compact: true,
            sort_keys: true,
            ..Default::default()
        };
        assert_eq!(
            py_json_dumps(&json!({"b": 1e16, "a": [1.5, true]}), compact),
            "{\"a\":[1.5,true],\"b\":1e+16}"
        );
        assert_eq!(
            py_json_dumps(&json!({"a": 1, "b": 2}), DumpOptions::default()),
            "{\"a\": 1, \"b\": 2}"
        );
    }

    #[test]
    fn dict_conversion_matches_python() {
        let m = py_dict(&json!(["ab", [1, 2]])).unwrap();
        assert_eq!(Value::Object(m), json!({"a": "b", "1": 2}));
        let cases = [
            (json!(null), "'NoneType' object is not iterable"),
            (json!(5), "'int' object is not iterable"),
            (
                json!("a"),
                "dictionary update sequence element #0 has length 1; 2 is required",
            ),
            (
                json!([[1, 2, 3]]),
                "dictionary update sequence element #0 has length 3; 2 is required",
            ),
            (
                json!([5]),
                "cannot convert dictionary update sequence element #0 to a sequence",
            ),
        ];
        for (v, msg) in cases {
            assert_eq!(py_dict(&v).unwrap_err().message, msg);
        }
    }

    #[test]
    fn whitespace_and_slices() {
        assert_eq!(py_strip("\u{1c} a b\u{a0}\n"), "a b");
        assert_eq!(py_slice_bounds(5, -2, None), (3, 5));
        assert_eq!(py_slice_bounds(5, 1, Some(-1)), (1, 4));
        assert_eq!(py_slice_bounds(5, 4, Some(2)), (4, 4));
        assert_eq!(py_slice_bounds(5, -9, Some(99)), (0, 5));
        assert_eq!(decode_ui_escapes("a\\nb\\tc\\\\n"), "a\nb\tc\\\n");
    }
}

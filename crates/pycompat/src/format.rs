//! Python `str.format(**values)` and `format(value, spec)` for JSON values.
//!
//! The `format` node calls `template.format(**values)`; its errors (`KeyError: 'x'` for an
//! unknown field, `IndexError` for `{}`) are part of what flows observe, so the template
//! parser follows CPython's `unicode_format.h` and `formatter_unicode.c`.

use serde_json::{Map, Value};

use crate::repr::{
    format_exponent, push_hex_escape, py_repr, py_str, py_str_repr, py_type_name, shortest_digits,
};
use crate::{MAX_BUILT_TEXT_BYTES, MAX_FORMAT_WIDTH, PyException, too_large};

/// `template.format(**kwargs)` (no positional arguments).
pub fn str_format(template: &str, kwargs: &Map<String, Value>) -> Result<String, PyException> {
    let chars: Vec<char> = template.chars().collect();
    vformat(&chars, kwargs, 2)
}

fn verr(msg: impl Into<String>) -> PyException {
    PyException::value_error(msg)
}

fn vformat(s: &[char], kwargs: &Map<String, Value>, depth: i32) -> Result<String, PyException> {
    if depth <= 0 {
        return Err(verr("Max string recursion exceeded"));
    }
    let mut out = String::new();
    let mut pos = 0;
    while pos < s.len() {
        // Literal text up to the next brace.
        let start = pos;
        let mut brace = None;
        while pos < s.len() {
            let c = s[pos];
            pos += 1;
            if c == '{' || c == '}' {
                brace = Some(c);
                break;
            }
        }
        let at_end = pos >= s.len();
        let mut literal_end = pos;
        let mut markup = brace.is_some();
        if brace == Some('}') && (at_end || s[pos] != '}') {
            return Err(verr("Single '}' encountered in format string"));
        }
        if at_end && brace == Some('{') {
            return Err(verr("Single '{' encountered in format string"));
        }
        if let Some(b) = brace {
            if !at_end && s[pos] == b {
                pos += 1;
                markup = false;
            } else {
                literal_end -= 1;
            }
        }
        grow(&out, literal_end - start)?;
        out.extend(&s[start..literal_end]);
        if !markup {
            continue;
        }
        let field = parse_field(s, &mut pos)?;
        let value = resolve_field(&field.name, kwargs)?;
        let value = match field.conversion {
            None => FmtValue::from_json(&value),
            Some('r') => FmtValue::Str(py_repr(&value)),
            Some('s') => FmtValue::Str(py_str(&value)),
            Some('a') => FmtValue::Str(py_ascii(&value)),
            Some(c) => {
                return Err(verr(format!("Unknown conversion specifier {c}")));
            }
        };
        let spec: String = if field.spec_needs_expanding {
            vformat(&field.spec, kwargs, depth - 1)?
        } else {
            field.spec.iter().collect()
        };
        let piece = value.format(&spec)?;
        grow(&out, piece.len())?;
        out.push_str(&piece);
    }
    Ok(out)
}

/// Refuses to grow the formatted string past [`MAX_BUILT_TEXT_BYTES`]: a template can repeat a large
/// field (`{a}{a}{a}...`), so the result is not bounded by the size of the input.
fn grow(out: &str, more: usize) -> Result<(), PyException> {
    let len = out.len().saturating_add(more);
    if len > MAX_BUILT_TEXT_BYTES {
        return Err(too_large("the formatted string", len));
    }
    Ok(())
}

struct Field {
    name: Vec<char>,
    conversion: Option<char>,
    spec: Vec<char>,
    spec_needs_expanding: bool,
}

/// Parses one replacement field after its `{`, leaving `pos` after the closing `}`.
fn parse_field(s: &[char], pos: &mut usize) -> Result<Field, PyException> {
    let name_start = *pos;
    let mut c = '\0';
    while *pos < s.len() {
        c = s[*pos];
        *pos += 1;
        match c {
            '{' => return Err(verr("unexpected '{' in field name")),
            '[' => {
                while *pos < s.len() && s[*pos] != ']' {
                    *pos += 1;
                }
                continue;
            }
            '}' | ':' | '!' => break,
            _ => continue,
        }
    }
    let stopped_on_delim = matches!(c, '}' | ':' | '!') && *pos > name_start;
    let name_end = if stopped_on_delim { *pos - 1 } else { *pos };
    let mut field = Field {
        name: s[name_start..name_end].to_vec(),
        conversion: None,
        spec: Vec::new(),
        spec_needs_expanding: false,
    };
    if stopped_on_delim && (c == '!' || c == ':') {
        if c == '!' {
            if *pos >= s.len() {
                return Err(verr("end of string while looking for conversion specifier"));
            }
            field.conversion = Some(s[*pos]);
            *pos += 1;
            if *pos < s.len() {
                let next = s[*pos];
                *pos += 1;
                if next == '}' {
                    return Ok(field);
                }
                if next != ':' {
                    return Err(verr("expected ':' after conversion specifier"));
                }
            }
        }
        let spec_start = *pos;
        let mut count = 1;
        while *pos < s.len() {
            let ch = s[*pos];
            *pos += 1;
            match ch {
                '{' => {
                    field.spec_needs_expanding = true;
                    count += 1;
                }
                '}' => {
                    count -= 1;
                    if count == 0 {
                        field.spec = s[spec_start..*pos - 1].to_vec();
                        return Ok(field);
                    }
                }
                _ => {}
            }
        }
        return Err(verr("unmatched '{' in format spec"));
    }
    if !stopped_on_delim || c != '}' {
        return Err(verr("expected '}' before end of string"));
    }
    Ok(field)
}

/// Decimal digits only, as CPython's `get_integer` accepts for indices.
fn as_index(s: &[char]) -> Option<usize> {
    if s.is_empty() || !s.iter().all(char::is_ascii_digit) {
        return None;
    }
    s.iter().collect::<String>().parse().ok()
}

fn resolve_field(name: &[char], kwargs: &Map<String, Value>) -> Result<Value, PyException> {
    let first_len = name
        .iter()
        .position(|c| *c == '.' || *c == '[')
        .unwrap_or(name.len());
    let first = &name[..first_len];
    let mut value = if first.is_empty() || as_index(first).is_some() {
        let index = as_index(first).unwrap_or(0);
        return Err(PyException::new(
            "IndexError",
            format!("Replacement index {index} out of range for positional args tuple"),
        ));
    } else {
        let key: String = first.iter().collect();
        kwargs
            .get(&key)
            .cloned()
            .ok_or_else(|| PyException::new("KeyError", py_str_repr(&key)))?
    };
    let rest = &name[first_len..];
    let mut i = 0;
    while i < rest.len() {
        let c = rest[i];
        i += 1;
        match c {
            '.' => {
                let start = i;
                while i < rest.len() && rest[i] != '.' && rest[i] != '[' {
                    i += 1;
                }
                if start == i {
                    return Err(verr("Empty attribute in format string"));
                }
                let attr: String = rest[start..i].iter().collect();
                return Err(PyException::new(
                    "AttributeError",
                    format!(
                        "'{}' object has no attribute '{attr}'",
                        py_type_name(&value)
                    ),
                ));
            }
            '[' => {
                let start = i;
                while i < rest.len() && rest[i] != ']' {
                    i += 1;
                }
                if i >= rest.len() {
                    return Err(verr("Missing ']' in format string"));
                }
                let key = &rest[start..i];
                i += 1;
                if key.is_empty() {
                    return Err(verr("Empty attribute in format string"));
                }
                if i < rest.len() && rest[i] != '.' && rest[i] != '[' {
                    return Err(verr(
                        "Only '.' or '[' may follow ']' in format field specifier",
                    ));
                }
                value = get_item(&value, key)?;
            }
            _ => {
                return Err(verr(
                    "Only '.' or '[' may follow ']' in format field specifier",
                ));
            }
        }
    }
    Ok(value)
}

fn get_item(value: &Value, key: &[char]) -> Result<Value, PyException> {
    let index = as_index(key);
    let key_str: String = key.iter().collect();
    match (value, index) {
        (Value::Array(items), Some(i)) => items
            .get(i)
            .cloned()
            .ok_or_else(|| PyException::new("IndexError", "list index out of range")),
        (Value::Array(_), None) => Err(PyException::type_error(
            "list indices must be integers or slices, not str",
        )),
        // Digits select an int key, which a JSON object never holds.
        (Value::Object(_), Some(i)) => Err(PyException::new("KeyError", i.to_string())),
        (Value::Object(map), None) => map
            .get(&key_str)
            .cloned()
            .ok_or_else(|| PyException::new("KeyError", py_str_repr(&key_str))),
        (Value::String(s), Some(i)) => s
            .chars()
            .nth(i)
            .map(|c| Value::String(c.to_string()))
            .ok_or_else(|| PyException::new("IndexError", "string index out of range")),
        (Value::String(_), None) => Err(PyException::type_error(
            "string indices must be integers, not 'str'",
        )),
        (other, _) => Err(PyException::type_error(format!(
            "'{}' object is not subscriptable",
            py_type_name(other)
        ))),
    }
}

/// Python `ascii(value)`: `repr` with non-ASCII characters escaped.
fn py_ascii(v: &Value) -> String {
    let mut out = String::new();
    for c in py_repr(v).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            push_hex_escape(&mut out, c);
        }
    }
    out
}

/// A value as Python's formatting machinery sees it.
enum FmtValue {
    Str(String),
    Int(i128, &'static str),
    Float(f64),
    /// None, list, dict: only the empty spec is allowed.
    Other(String, &'static str),
}

impl FmtValue {
    fn from_json(v: &Value) -> Self {
        match v {
            Value::String(s) => FmtValue::Str(s.clone()),
            Value::Bool(b) => FmtValue::Int(i128::from(*b), "bool"),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    FmtValue::Int(i128::from(i), "int")
                } else if let Some(u) = n.as_u64() {
                    FmtValue::Int(i128::from(u), "int")
                } else {
                    FmtValue::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            other => FmtValue::Other(py_str(other), py_type_name(other)),
        }
    }

    fn str_form(&self) -> String {
        match self {
            FmtValue::Str(s) => s.clone(),
            FmtValue::Int(i, "bool") => if *i != 0 { "True" } else { "False" }.into(),
            FmtValue::Int(i, _) => i.to_string(),
            FmtValue::Float(f) => crate::repr::py_float_repr(*f),
            FmtValue::Other(s, _) => s.clone(),
        }
    }

    fn format(&self, spec: &str) -> Result<String, PyException> {
        if spec.is_empty() {
            return Ok(self.str_form());
        }
        match self {
            FmtValue::Str(s) => format_str(s, spec),
            FmtValue::Int(i, tn) => format_int(*i, spec, tn),
            FmtValue::Float(f) => {
                let parsed = Spec::parse(spec, None, '>', "float")?;
                format_float(*f, &parsed, "float")
            }
            FmtValue::Other(_, tn) => Err(PyException::type_error(format!(
                "unsupported format string passed to {tn}.__format__"
            ))),
        }
    }
}

/// A parsed format specification (`[[fill]align][sign][z][#][0][width][,|_][.precision][type]`).
struct Spec {
    fill: char,
    align: char,
    sign: Option<char>,
    no_neg_0: bool,
    alternate: bool,
    width: usize,
    thousands: Option<char>,
    precision: Option<usize>,
    ty: Option<char>,
}

fn is_align(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '^')
}

/// CPython's `get_integer`: the decimal number at `pos`, if any; `ValueError` as soon as it would
/// exceed `sys.maxsize`.
fn read_int(s: &[char], pos: &mut usize) -> Result<Option<usize>, PyException> {
    let start = *pos;
    let mut acc: usize = 0;
    while *pos < s.len()
        && let Some(d) = s[*pos].to_digit(10)
    {
        let d = d as usize;
        if acc > (isize::MAX as usize - d) / 10 {
            return Err(verr("Too many decimal digits in format string"));
        }
        acc = acc * 10 + d;
        *pos += 1;
    }
    Ok((*pos > start).then_some(acc))
}

/// The `MemoryError` of a width or precision over [`MAX_FORMAT_WIDTH`].
fn too_wide(what: &str, n: usize) -> PyException {
    PyException::new(
        "MemoryError",
        format!("format {what} {n} is over the gateway's limit of {MAX_FORMAT_WIDTH}"),
    )
}

fn code_repr(c: char) -> String {
    if (c as u32) > 32 && (c as u32) < 128 {
        format!("'{c}'")
    } else {
        format!("'\\x{:x}'", c as u32)
    }
}

impl Spec {
    fn parse(
        spec: &str,
        default_ty: Option<char>,
        default_align: char,
        type_name: &str,
    ) -> Result<Self, PyException> {
        let s: Vec<char> = spec.chars().collect();
        let mut out = Spec {
            fill: ' ',
            align: default_align,
            sign: None,
            no_neg_0: false,
            alternate: false,
            width: 0,
            thousands: None,
            precision: None,
            ty: default_ty,
        };
        let mut pos = 0;
        let mut fill_specified = false;
        let mut align_specified = false;
        if s.len() >= 2 && is_align(s[1]) {
            out.fill = s[0];
            out.align = s[1];
            fill_specified = true;
            align_specified = true;
            pos = 2;
        } else if !s.is_empty() && is_align(s[0]) {
            out.align = s[0];
            align_specified = true;
            pos = 1;
        }
        if pos < s.len() && matches!(s[pos], '+' | '-' | ' ') {
            out.sign = Some(s[pos]);
            pos += 1;
        }
        if pos < s.len() && s[pos] == 'z' {
            out.no_neg_0 = true;
            pos += 1;
        }
        if pos < s.len() && s[pos] == '#' {
            out.alternate = true;
            pos += 1;
        }
        if !fill_specified && pos < s.len() && s[pos] == '0' {
            out.fill = '0';
            if !align_specified && default_align == '>' {
                out.align = '=';
            }
            pos += 1;
        }
        out.width = read_int(&s, &mut pos)?.unwrap_or(0);
        if pos < s.len() && s[pos] == ',' {
            out.thousands = Some(',');
            pos += 1;
        }
        if pos < s.len() && s[pos] == '_' {
            if out.thousands.is_some() {
                return Err(verr("Cannot specify both ',' and '_'."));
            }
            out.thousands = Some('_');
            pos += 1;
        }
        if pos < s.len() && s[pos] == ',' && out.thousands == Some('_') {
            return Err(verr("Cannot specify both ',' and '_'."));
        }
        if pos < s.len() && s[pos] == '.' {
            pos += 1;
            out.precision = Some(
                read_int(&s, &mut pos)?
                    .ok_or_else(|| verr("Format specifier missing precision"))?,
            );
        }
        if s.len() - pos > 1 {
            return Err(verr(format!(
                "Invalid format specifier '{spec}' for object of type '{type_name}'"
            )));
        }
        if pos < s.len() {
            out.ty = Some(s[pos]);
        }
        if let Some(sep) = out.thousands {
            let ok = match out.ty {
                None | Some('d' | 'e' | 'f' | 'g' | 'E' | 'G' | '%' | 'F') => true,
                Some('b' | 'o' | 'x' | 'X') => sep == '_',
                _ => false,
            };
            if !ok {
                let t = out.ty.unwrap_or('\0');
                return Err(verr(format!(
                    "Cannot specify '{sep}' with {}.",
                    code_repr(t)
                )));
            }
        }
        Ok(out)
    }

    /// Refuses a width that would need more than [`MAX_FORMAT_WIDTH`] characters of padding.
    fn check_width(&self) -> Result<(), PyException> {
        if self.width > MAX_FORMAT_WIDTH {
            return Err(too_wide("width", self.width));
        }
        Ok(())
    }

    /// Pads `body` (already signed and grouped) to the width.
    fn pad(&self, body: &str, sign_and_prefix_len: usize) -> Result<String, PyException> {
        let len = body.chars().count();
        if len >= self.width {
            return Ok(body.to_string());
        }
        self.check_width()?;
        let pad = self.width - len;
        let fill = |n: usize| self.fill.to_string().repeat(n);
        Ok(match self.align {
            '<' => format!("{body}{}", fill(pad)),
            '^' => format!("{}{body}{}", fill(pad / 2), fill(pad - pad / 2)),
            '=' => {
                let split: usize = body
                    .char_indices()
                    .nth(sign_and_prefix_len)
                    .map(|(i, _)| i)
                    .unwrap_or(body.len());
                format!("{}{}{}", &body[..split], fill(pad), &body[split..])
            }
            _ => format!("{}{body}", fill(pad)),
        })
    }
}

fn unknown_code(c: char, type_name: &str) -> PyException {
    verr(format!(
        "Unknown format code {} for object of type '{type_name}'",
        code_repr(c)
    ))
}

fn format_str(s: &str, spec: &str) -> Result<String, PyException> {
    let spec = Spec::parse(spec, Some('s'), '<', "str")?;
    if spec.ty != Some('s') {
        return Err(unknown_code(spec.ty.unwrap_or('\0'), "str"));
    }
    match spec.sign {
        Some(' ') => return Err(verr("Space not allowed in string format specifier")),
        Some(_) => return Err(verr("Sign not allowed in string format specifier")),
        None => {}
    }
    if spec.no_neg_0 {
        return Err(verr(
            "Negative zero coercion (z) not allowed in string format specifier",
        ));
    }
    if spec.alternate {
        return Err(verr(
            "Alternate form (#) not allowed in string format specifier",
        ));
    }
    if spec.align == '=' {
        return Err(verr("'=' alignment not allowed in string format specifier"));
    }
    let text: String = match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    spec.pad(&text, 0)
}

fn group_digits(digits: &str, sep: char, every: usize) -> String {
    let chars: Vec<char> = digits.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && (chars.len() - i).is_multiple_of(every) {
            out.push(sep);
        }
        out.push(*c);
    }
    out
}

/// Assembles sign, prefix, grouped integer digits and the remainder, then pads.
fn assemble_number(
    negative: bool,
    prefix: &str,
    int_digits: &str,
    remainder: &str,
    spec: &Spec,
    every: usize,
) -> Result<String, PyException> {
    let sign = if negative {
        "-"
    } else {
        match spec.sign {
            Some('+') => "+",
            Some(' ') => " ",
            _ => "",
        }
    };
    let lead = sign.len() + prefix.len();
    let mut digits = int_digits.to_string();
    let grouped = match spec.thousands {
        Some(sep) => {
            if spec.fill == '0' && spec.align == '=' {
                // Zero padding goes in front of the digits, so that the grouped text reaches the width:
                // the fewest digits whose grouping is at least `min` characters long.
                let min = spec.width.saturating_sub(lead + remainder.chars().count());
                let grouped_len = |n: usize| n + n.saturating_sub(1) / every;
                if grouped_len(digits.len()) < min {
                    spec.check_width()?;
                    // `grouped_len(n) <= n * (every + 1) / every`, so this start is below the answer.
                    let mut n = (min * every / (every + 1))
                        .saturating_sub(2)
                        .max(digits.len());
                    while grouped_len(n) < min {
                        n += 1;
                    }
                    digits = format!("{}{digits}", "0".repeat(n - digits.len()));
                }
            }
            group_digits(&digits, sep, every)
        }
        None => digits,
    };
    let body = format!("{sign}{prefix}{grouped}{remainder}");
    spec.pad(&body, lead)
}

fn format_int(i: i128, spec_str: &str, type_name: &str) -> Result<String, PyException> {
    let spec = Spec::parse(spec_str, Some('d'), '>', type_name)?;
    let ty = spec.ty.unwrap_or('d');
    match ty {
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%' => return format_float(i as f64, &spec, type_name),
        'b' | 'c' | 'd' | 'o' | 'x' | 'X' | 'n' => {}
        other => return Err(unknown_code(other, type_name)),
    }
    if spec.precision.is_some() {
        return Err(verr("Precision not allowed in integer format specifier"));
    }
    if spec.no_neg_0 {
        return Err(verr(
            "Negative zero coercion (z) not allowed in integer format specifier",
        ));
    }
    if ty == 'c' {
        if spec.sign.is_some() {
            return Err(verr("Sign not allowed with integer format specifier 'c'"));
        }
        if spec.alternate {
            return Err(verr(
                "Alternate form (#) not allowed with integer format specifier 'c'",
            ));
        }
        let ch = u32::try_from(i)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| PyException::new("OverflowError", "%c arg not in range(0x110000)"))?;
        return spec.pad(&ch.to_string(), 0);
    }
    let magnitude = i.unsigned_abs();
    let (digits, prefix, every) = match ty {
        'b' => (format!("{magnitude:b}"), "0b", 4),
        'o' => (format!("{magnitude:o}"), "0o", 4),
        'x' => (format!("{magnitude:x}"), "0x", 4),
        'X' => (format!("{magnitude:X}"), "0X", 4),
        _ => (magnitude.to_string(), "", 3),
    };
    let prefix = if spec.alternate { prefix } else { "" };
    assemble_number(i < 0, prefix, &digits, "", &spec, every)
}

/// More digits than any finite `f64` has in its exact decimal expansion (at most 767 significant digits and
/// 1074 after the point): past this, asking for more only adds zeros, which `dtoa` trims anyway.
const MAX_EXACT_DIGITS: usize = 1100;

/// `_Py_dg_dtoa`-style digits: (digits without trailing zeros, decimal point position).
fn dtoa(x: f64, mode: u8, ndigits: usize) -> (String, i32) {
    // Rust's formatter panics on a precision over `u16::MAX`, and a format spec may ask for up to
    // `MAX_FORMAT_WIDTH`: ask it for no more digits than exist (the result is the same).
    let ndigits = ndigits.min(MAX_EXACT_DIGITS);
    let x = x.abs();
    if x == 0.0 {
        return ("0".into(), 1);
    }
    match mode {
        0 => {
            let (_, digits, exp) = shortest_digits(x);
            (digits, exp + 1)
        }
        2 => {
            let n = ndigits.max(1);
            let s = format!("{:.*e}", n - 1, x);
            let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
            let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
            let digits = digits.trim_end_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            (digits.to_string(), exp.parse::<i32>().unwrap_or(0) + 1)
        }
        _ => {
            let s = format!("{:.*}", ndigits, x);
            let (int_part, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
            let all = format!("{int_part}{frac}");
            let leading = all.len() - all.trim_start_matches('0').len();
            let digits = all.trim_start_matches('0').trim_end_matches('0');
            if digits.is_empty() {
                return (String::new(), -(ndigits as i32));
            }
            (digits.to_string(), int_part.len() as i32 - leading as i32)
        }
    }
}

/// CPython's `format_float_short`: digits to text for codes `e`, `f`, `g`, `r`.
fn float_short(x: f64, code: char, precision: usize, add_dot_0: bool, alt: bool) -> String {
    // CPython passes `precision + 1` significant digits for 'e' and reads 0 as 1 for 'g'.
    let precision = match code {
        'e' => precision + 1,
        'g' => precision.max(1),
        _ => precision,
    };
    let mode = match code {
        'e' | 'g' => 2,
        'f' => 3,
        _ => 0,
    };
    let (digits, mut decpt) = dtoa(x, mode, precision);
    let digits_len = digits.len() as i32;
    let precision = precision as i32;
    let mut use_exp = false;
    let mut vdigits_end = digits_len;
    match code {
        'e' => {
            use_exp = true;
            vdigits_end = precision;
        }
        'f' => vdigits_end = decpt + precision,
        'g' => {
            let limit = if add_dot_0 { precision - 1 } else { precision };
            if decpt <= -4 || decpt > limit {
                use_exp = true;
            }
            if alt {
                vdigits_end = precision;
            }
        }
        _ => {
            if decpt <= -4 || decpt > 16 {
                use_exp = true;
            }
        }
    }
    let mut exp = 0;
    if use_exp {
        exp = decpt - 1;
        decpt = 1;
    }
    let vdigits_start = if decpt <= 0 { decpt - 1 } else { 0 };
    vdigits_end = if !use_exp && add_dot_0 {
        vdigits_end.max(decpt + 1)
    } else {
        vdigits_end.max(decpt)
    };
    let mut p = String::new();
    if decpt <= 0 {
        p.push_str(&"0".repeat((decpt - vdigits_start) as usize));
        p.push('.');
        p.push_str(&"0".repeat((-decpt) as usize));
    } else {
        p.push_str(&"0".repeat((-vdigits_start).max(0) as usize));
    }
    if 0 < decpt && decpt <= digits_len {
        p.push_str(&digits[..decpt as usize]);
        p.push('.');
        p.push_str(&digits[decpt as usize..]);
    } else {
        p.push_str(&digits);
    }
    if digits_len < decpt {
        p.push_str(&"0".repeat((decpt - digits_len) as usize));
        p.push('.');
        p.push_str(&"0".repeat((vdigits_end - decpt).max(0) as usize));
    } else {
        p.push_str(&"0".repeat((vdigits_end - digits_len).max(0) as usize));
    }
    if p.ends_with('.') && !alt {
        p.pop();
    }
    if use_exp {
        p.push_str(&format_exponent(exp));
    }
    p
}

fn format_float(value: f64, spec: &Spec, type_name: &str) -> Result<String, PyException> {
    let mut ty = spec.ty;
    let mut add_dot_0 = false;
    let mut default_precision = 6;
    match ty {
        None => {
            add_dot_0 = true;
            ty = Some('r');
            default_precision = 0;
        }
        Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'n' | '%') => {}
        Some(other) => return Err(unknown_code(other, type_name)),
    }
    let mut code = ty.unwrap_or('r');
    if code == 'n' {
        code = 'g';
    }
    let mut val = value;
    let mut add_pct = false;
    if code == '%' {
        code = 'f';
        val *= 100.0;
        add_pct = true;
    }
    let precision = match spec.precision {
        None => default_precision,
        Some(p) => {
            if code == 'r' {
                code = 'g';
            }
            p
        }
    };
    if precision > i32::MAX as usize {
        return Err(verr("precision too big"));
    }
    if precision > MAX_FORMAT_WIDTH {
        return Err(too_wide("precision", precision));
    }
    let upper = code.is_ascii_uppercase();
    let mut text = if val.is_finite() {
        float_short(
            val,
            code.to_ascii_lowercase(),
            precision,
            add_dot_0,
            spec.alternate,
        )
    } else if val.is_nan() {
        "nan".to_string()
    } else {
        "inf".to_string()
    };
    if upper {
        text = text.to_ascii_uppercase();
    }
    let mut negative = val.is_sign_negative() && !val.is_nan();
    if negative && spec.no_neg_0 && text.chars().all(|c| !c.is_ascii_digit() || c == '0') {
        negative = false;
    }
    if add_pct {
        text.push('%');
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (int_digits, remainder) = text.split_at(split);
    assemble_number(negative, "", int_digits, remainder, spec, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt(template: &str, kwargs: Value) -> Result<String, PyException> {
        let map = match kwargs {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        str_format(template, &map)
    }

    fn spec(v: Value, s: &str) -> String {
        FmtValue::from_json(&v)
            .format(s)
            .unwrap_or_else(|e| format!("{}: {}", e.kind, e.message))
    }

    #[test]
    fn precisions_past_what_rust_formats_match_python() {
        // Rust's formatter takes precisions up to u16::MAX; Python pads the exact expansion with zeros.
        let exact = "1000000000000000055511151231257827021181583404541015625";
        let f = spec(json!(0.1), ".70000f");
        assert_eq!(f, format!("0.{exact}{}", "0".repeat(70000 - exact.len())));
        let e = spec(json!(0.1), ".70000e");
        assert_eq!(
            e,
            format!("1.{}{}e-01", &exact[1..], "0".repeat(70001 - exact.len()))
        );
        let g = spec(json!(5e-324), ".70000g");
        assert_eq!(
            (g.len(), &g[..12], &g[g.len() - 10..]),
            (757, "4.9406564584", "65625e-324")
        );
        assert_eq!(
            fmt("{m:.222222%}", json!({"m": 0.1})).unwrap().len(),
            222_226
        );
    }

    #[test]
    fn fields_and_errors_match_python() {
        let kw = json!({"a": "hello", "b": 5, "c": 1, "l": [1], "d": {"x": 2, "0": 3}});
        assert_eq!(fmt("{a} {b}!", kw.clone()).unwrap(), "hello 5!");
        assert_eq!(fmt("{{x}} {l[0]} {d[x]}", kw.clone()).unwrap(), "{x} 1 2");
        assert_eq!(fmt("{d}", kw.clone()).unwrap(), "{'x': 2, '0': 3}");
        assert_eq!(fmt("{a!r:>10}", kw.clone()).unwrap(), "   'hello'");
        assert_eq!(fmt("{b:{c}}", kw.clone()).unwrap(), "5");
        let cases = [
            ("{role, winner, why}", "KeyError", "'role, winner, why'"),
            (
                "{}",
                "IndexError",
                "Replacement index 0 out of range for positional args tuple",
            ),
            (
                "{1}",
                "IndexError",
                "Replacement index 1 out of range for positional args tuple",
            ),
            ("{d[0]}", "KeyError", "0"),
            (
                "{d.x}",
                "AttributeError",
                "'dict' object has no attribute 'x'",
            ),
            (
                "{l[x]}",
                "TypeError",
                "list indices must be integers or slices, not str",
            ),
            ("{l[3]}", "IndexError", "list index out of range"),
            (
                "{a[x]}",
                "TypeError",
                "string indices must be integers, not 'str'",
            ),
            ("{b[x]}", "TypeError", "'int' object is not subscriptable"),
            ("{a!x}", "ValueError", "Unknown conversion specifier x"),
            ("{a!}", "ValueError", "unmatched '{' in format spec"),
            (
                "{a!",
                "ValueError",
                "end of string while looking for conversion specifier",
            ),
            ("{a!r", "ValueError", "unmatched '{' in format spec"),
            (
                "{a!rx}",
                "ValueError",
                "expected ':' after conversion specifier",
            ),
            ("{a[0}", "ValueError", "expected '}' before end of string"),
            (
                "{a[0]x}",
                "ValueError",
                "Only '.' or '[' may follow ']' in format field specifier",
            ),
            ("{a.}", "ValueError", "Empty attribute in format string"),
            ("{a[]}", "ValueError", "Empty attribute in format string"),
            ("{a:{b:{c}}}", "ValueError", "Max string recursion exceeded"),
            ("{", "ValueError", "Single '{' encountered in format string"),
            ("}", "ValueError", "Single '}' encountered in format string"),
            (
                "x}y",
                "ValueError",
                "Single '}' encountered in format string",
            ),
            ("{a:{b}", "ValueError", "unmatched '{' in format spec"),
            ("{x{y}", "ValueError", "unexpected '{' in field name"),
        ];
        for (template, kind, msg) in cases {
            let err = match fmt(template, kw.clone()) {
                Ok(v) => panic!("{template} formatted as {v:?}"),
                Err(e) => e,
            };
            assert_eq!((err.kind, err.message.as_str()), (kind, msg), "{template}");
        }
    }

    #[test]
    fn sizes_from_the_input_are_refused_before_allocating() {
        let kw = json!({"s": "x", "i": 7, "f": 1.5, "w": 99_999_999_999_i64});
        let err = |t: &str| fmt(t, kw.clone()).unwrap_err();
        // Past sys.maxsize: CPython's get_integer.
        for t in [
            "{s:>99999999999999999999}",
            "{i:99999999999999999999}",
            "{f:.99999999999999999999}",
            "{s:>9223372036854775808}",
            "{s:.9223372036854775808}",
        ] {
            let e = err(t);
            assert_eq!(
                (e.kind, e.message.as_str()),
                ("ValueError", "Too many decimal digits in format string"),
                "{t}"
            );
        }
        // Representable: CPython would try to allocate it; the gateway refuses first.
        for t in [
            "{s:>99999999999}",
            "{s:>9223372036854775807}",
            "{i:0>99999999999}",
            "{i:099999999999,}",
            "{f:>99999999999.2f}",
            "{f:.99999999f}",
            "{s:>{w}}",
        ] {
            let e = err(t);
            assert_eq!(e.kind, "MemoryError", "{t}");
            assert!(
                e.message.contains("over the gateway's limit"),
                "{t}: {}",
                e.message
            );
        }
        assert_eq!(err("{f:.9999999999f}").message, "precision too big");
        // Other errors of the spec come first, as in CPython; no padding needed is no allocation.
        assert_eq!(
            err("{s:=99999999999}").message,
            "'=' alignment not allowed in string format specifier"
        );
        assert_eq!(fmt("{s:.99999999999}", kw.clone()).unwrap(), "x");
        // Up to the limit, widths work; zero padding with grouping takes linear time.
        assert_eq!(fmt("{s:>1000000}", kw.clone()).unwrap().len(), 1_000_000);
        let grouped = fmt("{i:01000000,}", kw.clone()).unwrap();
        assert!((1_000_000..=1_000_001).contains(&grouped.len()));
        assert!(grouped.starts_with("0,000") || grouped.starts_with("000,"));
        assert!(grouped.ends_with("000,007"));
        // A template repeating a large field stops at the limit of the result.
        let big = "y".repeat(1 << 20);
        let e = fmt(&"{b}".repeat(100), json!({"b": big})).unwrap_err();
        assert_eq!(e.kind, "MemoryError");
    }

    #[test]
    fn format_specs_match_python() {
        let cases = [
            (json!(12.0), ".2", "1.2e+01"),
            (json!(1.0), ".3", "1.0"),
            (json!(1234.5), ".2", "1.2e+03"),
            (json!(0.0001), ".2", "0.0001"),
            (json!(123.456), ".5", "123.46"),
            (json!(1e16), ".20", "10000000000000000.0"),
            (json!(100.0), ".3", "1e+02"),
            (json!(1.5), "", "1.5"),
            (json!(1e-5), "g", "1e-05"),
            (json!(123456789.0), "g", "1.23457e+08"),
            (json!(0.5), "%", "50.000000%"),
            (json!(-0.0), "z.1f", "0.0"),
            (json!(1.0), "#g", "1.00000"),
            (json!(2.5), "e", "2.500000e+00"),
            (json!(-1.5), "+010.2f", "-000001.50"),
            (json!(1234567.891), ",.2f", "1,234,567.89"),
            (json!(1234567.891), "_", "1_234_567.891"),
            (json!(5.0), "=+8", "+    5.0"),
            (json!(3), ".2f", "3.00"),
            (json!(3), "e", "3.000000e+00"),
            (json!(-3), "x", "-3"),
            (json!(255), "#o", "0o377"),
            (json!(97), "c", "a"),
            (json!(12345), "_d", "12_345"),
            (json!(1.0), "n", "1"),
            (json!(123456.0), ".3", "1.23e+05"),
            (json!(999.95), ".1f", "1000.0"),
            (json!(0.000012345), ".3g", "1.23e-05"),
            (json!(0.1), "10.3%", "   10.000%"),
            (json!(12345678), ",", "12,345,678"),
            (json!(255), "#x", "0xff"),
            (json!(255), "_b", "1111_1111"),
            (json!(-5), "05", "-0005"),
            (json!(5), "+", "+5"),
            (json!(1234), "08,", "0,001,234"),
            (json!(true), "", "True"),
            (json!(true), ">5", "    1"),
            (json!(true), "d", "1"),
            (json!(null), "", "None"),
            (json!("ab"), "05", "ab000"),
            (json!("abc"), ".2", "ab"),
            (json!("abc"), "^7", "  abc  "),
            (json!("abc"), "*>5", "**abc"),
            (json!(0.005), ".2f", "0.01"),
            (json!(0.001), ".2f", "0.00"),
            (json!(-0.001), ".2f", "-0.00"),
            (json!(7.0), "#.0f", "7."),
            (json!(7.0), ".0e", "7e+00"),
        ];
        for (v, s, want) in cases {
            assert_eq!(spec(v.clone(), s), want, "format({v}, {s:?})");
        }
        let errors = [
            (
                json!(null),
                ">5",
                "TypeError: unsupported format string passed to NoneType.__format__",
            ),
            (
                json!([1]),
                ">5",
                "TypeError: unsupported format string passed to list.__format__",
            ),
            (
                json!("a"),
                "d",
                "ValueError: Unknown format code 'd' for object of type 'str'",
            ),
            (
                json!("a"),
                "+",
                "ValueError: Sign not allowed in string format specifier",
            ),
            (
                json!("a"),
                " ",
                "ValueError: Space not allowed in string format specifier",
            ),
            (
                json!("a"),
                "z",
                "ValueError: Negative zero coercion (z) not allowed in string format specifier",
            ),
            (
                json!("a"),
                "#",
                "ValueError: Alternate form (#) not allowed in string format specifier",
            ),
            (
                json!("a"),
                "=5",
                "ValueError: '=' alignment not allowed in string format specifier",
            ),
            (json!("a"), ",", "ValueError: Cannot specify ',' with 's'."),
            (
                json!(1),
                ".2",
                "ValueError: Precision not allowed in integer format specifier",
            ),
            (
                json!(1.5),
                "abc",
                "ValueError: Invalid format specifier 'abc' for object of type 'float'",
            ),
            (
                json!(12),
                ".",
                "ValueError: Format specifier missing precision",
            ),
            (
                json!(12),
                ",_",
                "ValueError: Cannot specify both ',' and '_'.",
            ),
            (
                json!(12),
                "_,",
                "ValueError: Cannot specify both ',' and '_'.",
            ),
            (json!(12), ",x", "ValueError: Cannot specify ',' with 'x'."),
            (
                json!(12),
                "xx",
                "ValueError: Invalid format specifier 'xx' for object of type 'int'",
            ),
            (
                json!(12),
                "\u{1}",
                "ValueError: Unknown format code '\\x1' for object of type 'int'",
            ),
            (
                json!(true),
                "q",
                "ValueError: Unknown format code 'q' for object of type 'bool'",
            ),
        ];
        for (v, s, want) in errors {
            assert_eq!(spec(v.clone(), s), want, "format({v}, {s:?})");
        }
    }
}

//! Python's `json.loads` / `JSONDecoder.raw_decode` acceptance rules.
//!
//! Python accepts `NaN`/`Infinity`, arbitrary-size integers and duplicate keys, and
//! `raw_decode` stops after the first value; the lenient `parse_json` node relies on
//! exactly where those succeed, so this is a small dedicated parser rather than serde's.

mod dumps;

pub use dumps::dumps;

use serde_json::{Map, Number, Value};

use crate::repr::float_value;

/// Python's recursion limit makes very deep documents fail; this keeps the same spirit.
const MAX_DEPTH: usize = 900;

/// `json.loads(s)`: one value, optional JSON whitespace around it, nothing else.
pub fn loads(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    let mut p = Parser {
        s,
        b,
        pos: skip_ws(b, 0),
    };
    let v = p.value(0)?;
    (skip_ws(b, p.pos) == b.len()).then_some(v)
}

/// `JSONDecoder().raw_decode(s)`: the value at the very start of `s`, trailing text ignored.
pub fn raw_decode(s: &str) -> Option<Value> {
    let mut p = Parser {
        s,
        b: s.as_bytes(),
        pos: 0,
    };
    p.value(0)
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() && matches!(b[pos], b' ' | b'\t' | b'\n' | b'\r') {
        pos += 1;
    }
    pos
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn starts_with(&self, lit: &str) -> bool {
        self.b[self.pos..].starts_with(lit.as_bytes())
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let c = *self.b.get(self.pos)?;
        match c {
            b'"' => {
                self.pos += 1;
                self.string().map(Value::String)
            }
            b'{' => {
                self.pos += 1;
                self.object(depth + 1)
            }
            b'[' => {
                self.pos += 1;
                self.array(depth + 1)
            }
            b'n' if self.starts_with("null") => {
                self.pos += 4;
                Some(Value::Null)
            }
            b't' if self.starts_with("true") => {
                self.pos += 4;
                Some(Value::Bool(true))
            }
            b'f' if self.starts_with("false") => {
                self.pos += 5;
                Some(Value::Bool(false))
            }
            b'N' if self.starts_with("NaN") => {
                self.pos += 3;
                Some(float_value(f64::NAN))
            }
            b'I' if self.starts_with("Infinity") => {
                self.pos += 8;
                Some(float_value(f64::INFINITY))
            }
            b'-' if self.starts_with("-Infinity") => {
                self.pos += 9;
                Some(float_value(f64::NEG_INFINITY))
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`
    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        let b = self.b;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            _ => return None,
        }
        let int_end = i;
        let mut is_float = false;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            is_float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
                is_float = true;
            }
        }
        self.pos = i;
        let text = &self.s[start..i];
        if is_float {
            return Some(float_value(text.parse::<f64>().ok()?));
        }
        let int_text = &self.s[start..int_end];
        if let Ok(v) = int_text.parse::<i64>() {
            Some(Value::Number(Number::from(v)))
        } else if let Ok(v) = int_text.parse::<u64>() {
            Some(Value::Number(Number::from(v)))
        } else {
            // Beyond 64 bits Python keeps an exact int; JSON here can only hold a float.
            Some(float_value(int_text.parse::<f64>().ok()?))
        }
    }

    /// A string body after its opening quote (strict: no raw control characters).
    fn string(&mut self) -> Option<String> {
        let mut out = String::new();
        loop {
            let rest = &self.s[self.pos..];
            let stop = rest.find(|c: char| c == '"' || c == '\\' || (c as u32) < 0x20)?;
            out.push_str(&rest[..stop]);
            self.pos += stop;
            match self.b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let esc = *self.b.get(self.pos)?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// `\uXXXX` after the `u`, joining surrogate pairs; a lone surrogate (which Python
    /// keeps) cannot live in a Rust string and becomes U+FFFD.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xd800..0xdc00).contains(&hi) && self.starts_with("\\u") {
            let save = self.pos;
            self.pos += 2;
            if let Some(lo) = self.hex4()
                && (0xdc00..0xe000).contains(&lo)
            {
                let code = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                return char::from_u32(code);
            }
            self.pos = save;
        }
        Some(char::from_u32(hi).unwrap_or('\u{fffd}'))
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        self.pos = skip_ws(self.b, self.pos);
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Some(Value::Object(map));
        }
        loop {
            if self.b.get(self.pos) != Some(&b'"') {
                return None;
            }
            self.pos += 1;
            let key = self.string()?;
            self.pos = skip_ws(self.b, self.pos);
            if self.b.get(self.pos) != Some(&b':') {
                return None;
            }
            self.pos = skip_ws(self.b, self.pos + 1);
            let v = self.value(depth)?;
            map.insert(key, v);
            self.pos = skip_ws(self.b, self.pos);
            match self.b.get(self.pos) {
                Some(b',') => self.pos = skip_ws(self.b, self.pos + 1),
                Some(b'}') => {
                    self.pos += 1;
                    return Some(Value::Object(map));
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        let mut items = Vec::new();
        self.pos = skip_ws(self.b, self.pos);
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.pos = skip_ws(self.b, self.pos);
            match self.b.get(self.pos) {
                Some(b',') => self.pos = skip_ws(self.b, self.pos + 1),
                Some(b']') => {
                    self.pos += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loads_accepts_what_python_accepts() {
        assert_eq!(
            loads(" {\"a\": [1, 2.5, -0, 1e3, true, null]} \n"),
            Some(json!({"a": [1, 2.5, 0, 1000.0, true, null]}))
        );
        assert_eq!(loads("\"\\ud83d\\ude00 \\u00e9\\/\""), Some(json!("😀 é/")));
        assert_eq!(loads("{\"a\": 1, \"a\": 2}"), Some(json!({"a": 2})));
        assert_eq!(
            loads("[NaN, Infinity, -Infinity]"),
            Some(json!([null, null, null]))
        );
        assert_eq!(
            loads("123456789012345678901234567890"),
            Some(json!(1.2345678901234568e29))
        );
        assert_eq!(loads("18446744073709551615"), Some(json!(u64::MAX)));
        let one = loads("1.0").unwrap();
        assert!(one.is_f64());
        assert!(loads("-0").unwrap().is_i64());
    }

    #[test]
    fn loads_rejects_what_python_rejects() {
        for bad in [
            "",
            "[1,]",
            "{\"a\":1,}",
            "{'a': 1}",
            "01",
            "1.",
            ".5",
            "+1",
            "\"a\nb\"",
            "[1] x",
            "\"\\x41\"",
            "tru",
            "{\"a\" 1}",
            "1e",
            "--1",
        ] {
            assert_eq!(loads(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn raw_decode_ignores_trailing_text() {
        assert_eq!(raw_decode("{\"a\": 1} and more"), Some(json!({"a": 1})));
        assert_eq!(raw_decode("[1, 2]]"), Some(json!([1, 2])));
        assert_eq!(raw_decode("{\"a\": "), None);
        assert_eq!(raw_decode(" {}"), None);
        let deep = "[".repeat(2000);
        assert_eq!(raw_decode(&deep), None);
    }
}

//! Python's `json.dumps` default spacing (`", "` and `": "`), which the seed puts on the wire for middleware
//! errors and SSE `data:` lines.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// `serde_json` formatter producing Python's default separators; `ascii` also escapes non-ASCII as `\uXXXX`.
struct PyFormatter {
    ascii: bool,
}

impl Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if !self.ascii || fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut buf = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        esc: CharEscape,
    ) -> io::Result<()> {
        serde_json::ser::CompactFormatter.write_char_escape(w, esc)
    }
}

/// Encodes `v` the way Python's `json.dumps(v)` does (`ascii`) or `json.dumps(v, ensure_ascii=False)`.
pub fn dumps<T: Serialize + ?Sized>(v: &T, ascii: bool) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = Serializer::with_formatter(&mut out, PyFormatter { ascii });
    if v.serialize(&mut ser).is_err() {
        return "null".into();
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn python_spacing_and_escapes() {
        let v = json!({"detail": "Unauthorized", "a": [1, 2.5, null], "é": "ü\n"});
        assert_eq!(
            super::dumps(&v, true),
            r#"{"detail": "Unauthorized", "a": [1, 2.5, null], "\u00e9": "\u00fc\n"}"#
        );
        assert_eq!(
            super::dumps(&v, false),
            "{\"detail\": \"Unauthorized\", \"a\": [1, 2.5, null], \"é\": \"ü\\n\"}"
        );
        assert_eq!(super::dumps(&json!({}), true), "{}");
    }
}

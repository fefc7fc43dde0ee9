//! Python 3.11 `ast.literal_eval` on text, including its error messages.
//!
//! `parse_json` falls back to `ast.literal_eval` for Python-style dict/list output and
//! reports `Invalid JSON: <str(exc)>` when that fails. Flows show that message (for LLM
//! prose it is typically `invalid syntax (<unknown>, line 1)` or
//! `unterminated string literal (detected at line 14) (<unknown>, line 14)`), so this
//! module reproduces CPython's tokenizer, the expression grammar, the error-reporting
//! passes of its PEG parser (the common `invalid_*` rules, and the full-source tokenizer
//! scan whose errors take precedence), and `literal_eval`'s conversion rules.

mod convert;
mod errors;
mod parse;
mod tokenize;

use crate::PyException;

use convert::convert;
pub use convert::to_json;
use errors::{PErr, SynErr};
use parse::Parser;
use tokenize::Tok;

/// A Python value `literal_eval` can produce.
#[derive(Debug, Clone, PartialEq)]
pub enum PyVal {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An int (beyond 128 bits Python stays exact; here it degrades to a float).
    Int(i128),
    /// A float.
    Float(f64),
    /// A complex number (real, imaginary).
    Complex(f64, f64),
    /// A str.
    Str(String),
    /// A bytes object.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<PyVal>),
    /// A list.
    List(Vec<PyVal>),
    /// A set (insertion order; Python's hash order is not reproduced).
    Set(Vec<PyVal>),
    /// A dict (keys unique under Python equality).
    Dict(Vec<(PyVal, PyVal)>),
    /// `...`.
    Ellipsis,
}

/// Stack for the parser thread: CPython allows 6000 nested rules, far more Rust frames
/// than a default 2 MiB thread stack holds.
pub const PARSER_STACK_BYTES: usize = 64 << 20;

/// `ast.literal_eval(text)`.
pub fn literal_eval(text: &str) -> Result<PyVal, PyException> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("literal_eval".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, || literal_eval_here(text))
            .map_err(|_| PyException::new("MemoryError", ""))?
            .join()
            .unwrap_or_else(|_| Err(PyException::new("MemoryError", "")))
    })
}

pub fn literal_eval_here(text: &str) -> Result<PyVal, PyException> {
    if text.contains('\0') {
        return Err(PyException::new(
            "SyntaxError",
            "source code string cannot contain null bytes",
        ));
    }
    let src = text
        .trim_start_matches([' ', '\t'])
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut parser = Parser::new(&src);
    // First pass: the grammar alone.
    let first_error = match parser.parse_eval() {
        Ok(node) => return convert(&node),
        Err(PErr::Fatal(e)) if e.from_tokenizer => return Err(e.into_exception()),
        Err(PErr::Fatal(e)) => Some(*e),
        Err(PErr::Fail) => None,
    };
    // Second pass, as CPython does on failure: the `invalid_*` rules name the mistake.
    let last = parser.tokens.get(parser.furthest).cloned();
    parser.pos = 0;
    parser.quiet = false;
    parser.memo.clear();
    let specific = match parser.parse_eval() {
        Err(PErr::Fatal(e)) if e.from_tokenizer => return Err(e.into_exception()),
        Err(PErr::Fatal(e)) => Some(*e),
        _ => first_error,
    };
    if let Some(e) = specific {
        return Err(parser.full_scan(e).into_exception());
    }
    let (kind, line) = match &last {
        Some(t) => (t.kind.clone(), t.line),
        None => (Tok::EndMarker, 1),
    };
    let err = match kind {
        Tok::Indent => SynErr::new("IndentationError", "unexpected indent", line),
        Tok::Dedent => SynErr::new("IndentationError", "unexpected unindent", line),
        _ => parser.full_scan(SynErr::new("SyntaxError", "invalid syntax", line)),
    };
    Err(err.into_exception())
}

#[cfg(test)]
mod tests {
    use super::convert::pyval_repr;
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> (String, String) {
        match literal_eval(text) {
            Ok(v) => ("OK".into(), pyval_repr(&v)),
            Err(e) => (e.kind.to_string(), e.message),
        }
    }

    /// Expected values are CPython 3.11 `ast.literal_eval` results.
    #[test]
    fn errors_match_cpython() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "echo:hello world",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "hello world",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "Hello\n  world",
                "IndentationError",
                "unexpected indent (<unknown>, line 2)",
            ),
            (
                "x\n  y\n z",
                "IndentationError",
                "unexpected indent (<unknown>, line 2)",
            ),
            (
                "[1, 2",
                "SyntaxError",
                "'[' was never closed (<unknown>, line 1)",
            ),
            (
                "{'a': [1, 2",
                "SyntaxError",
                "'[' was never closed (<unknown>, line 1)",
            ),
            (
                "{\"a\": 1 \"b\": 2}",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "[hello world]",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "don't",
                "SyntaxError",
                "unterminated string literal (detected at line 1) (<unknown>, line 1)",
            ),
            (
                "echo:You said don't",
                "SyntaxError",
                "unterminated string literal (detected at line 1) (<unknown>, line 1)",
            ),
            (
                "a\n# it's\nb",
                "SyntaxError",
                "invalid syntax (<unknown>, line 3)",
            ),
            (
                "3rd place",
                "SyntaxError",
                "invalid decimal literal (<unknown>, line 1)",
            ),
            (
                "2024-01-05",
                "SyntaxError",
                "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers (<unknown>, line 1)",
            ),
            ("x = 1", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            (
                "a \u{2014} b",
                "SyntaxError",
                "invalid character '\u{2014}' (U+2014) (<unknown>, line 1)",
            ),
            (
                "caf\u{e9} au lait",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "x\u{a0}y",
                "SyntaxError",
                "invalid non-printable character U+00A0 (<unknown>, line 1)",
            ),
            (
                "'''abc",
                "SyntaxError",
                "unterminated triple-quoted string literal (detected at line 1) (<unknown>, line 1)",
            ),
            (
                "x\n'''abc\ndef",
                "SyntaxError",
                "unterminated triple-quoted string literal (detected at line 3) (<unknown>, line 2)",
            ),
            (
                "\u{0}",
                "SyntaxError",
                "source code string cannot contain null bytes",
            ),
            (
                "a\\b",
                "SyntaxError",
                "unexpected character after line continuation character (<unknown>, line 1)",
            ),
            (
                "a \\\n b",
                "SyntaxError",
                "invalid syntax (<unknown>, line 2)",
            ),
            (
                "[1,\n 2,\n ']",
                "SyntaxError",
                "unterminated string literal (detected at line 3) (<unknown>, line 3)",
            ),
            (
                "{]",
                "SyntaxError",
                "closing parenthesis ']' does not match opening parenthesis '{' (<unknown>, line 1)",
            ),
            (
                "(]\n",
                "SyntaxError",
                "closing parenthesis ']' does not match opening parenthesis '(' (<unknown>, line 1)",
            ),
            (
                "[\n)",
                "SyntaxError",
                "closing parenthesis ')' does not match opening parenthesis '[' on line 1 (<unknown>, line 2)",
            ),
            (
                "0o8",
                "SyntaxError",
                "invalid digit '8' in octal literal (<unknown>, line 1)",
            ),
            (
                "0b2",
                "SyntaxError",
                "invalid digit '2' in binary literal (<unknown>, line 1)",
            ),
            (
                "1__0",
                "SyntaxError",
                "invalid decimal literal (<unknown>, line 1)",
            ),
            (
                "1e",
                "SyntaxError",
                "invalid decimal literal (<unknown>, line 1)",
            ),
            ("x :=1", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            ("@", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            ("$", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            ("a ? b", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            ("1 2", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            (
                "echo:Return JSON only (no markdown",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "{\n  \"a\": 1,\n  \"b\": tru",
                "SyntaxError",
                "'{' was never closed (<unknown>, line 1)",
            ),
            ("{[1]: 2}", "TypeError", "unhashable type: 'list'"),
            ("{1, [2]}", "TypeError", "unhashable type: 'list'"),
            ("if", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            (
                "yield x",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            ("*a", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            ("a, *b", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            (
                "print 'x'",
                "SyntaxError",
                "Missing parentheses in call to 'print'. Did you mean print(...)? (<unknown>, line 1)",
            ),
            ("a b c", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            (
                "{'a': 1 'b': 2}",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "1 if 2",
                "SyntaxError",
                "expected 'else' after 'if' expression (<unknown>, line 1)",
            ),
            (
                "\u{3c0} = 3",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "\u{2705} done",
                "SyntaxError",
                "invalid character '\u{2705}' (U+2705) (<unknown>, line 1)",
            ),
            (
                "x\u{200b}y",
                "SyntaxError",
                "invalid non-printable character U+200B (<unknown>, line 1)",
            ),
            (
                "\u{b}",
                "SyntaxError",
                "invalid non-printable character U+000B (<unknown>, line 1)",
            ),
            (
                "'\\x4'",
                "SyntaxError",
                "(unicode error) 'unicodeescape' codec can't decode bytes in position 0-2: truncated \\xXX escape (<unknown>, line 1)",
            ),
            (
                "u'x' b'y'",
                "SyntaxError",
                "cannot mix bytes and nonbytes literals (<unknown>, line 1)",
            ),
            (
                "b'\u{e9}'",
                "SyntaxError",
                "bytes can only contain ASCII literal characters (<unknown>, line 1)",
            ),
            (
                "{\"a\": 1, \"b\"}",
                "SyntaxError",
                "':' expected after dictionary key (<unknown>, line 1)",
            ),
            (
                "{\"a\": }",
                "SyntaxError",
                "expression expected after dictionary key and ':' (<unknown>, line 1)",
            ),
            (
                "{\"a\" 1}",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "{\"a\": 1,, \"b\": 2}",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "{\"a\": 1}\n{\"b\": 2}",
                "SyntaxError",
                "invalid syntax (<unknown>, line 2)",
            ),
            (
                "{\"a\": [1, 2}",
                "SyntaxError",
                "closing parenthesis '}' does not match opening parenthesis '[' (<unknown>, line 1)",
            ),
            (
                "(a b)",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "f(a b)",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "x = [1 2]",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "echo:hi\n{\n  \"x\": 1 2\n}",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "[a = 1]",
                "SyntaxError",
                "invalid syntax. Maybe you meant '==' or ':=' instead of '='? (<unknown>, line 1)",
            ),
            (
                "{\"k\": \"v\"}\nThanks!",
                "SyntaxError",
                "invalid syntax (<unknown>, line 2)",
            ),
            (
                "```\nnot json\n```",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "[x for x in]",
                "SyntaxError",
                "invalid syntax (<unknown>, line 1)",
            ),
            (
                "[1, 2 3]",
                "SyntaxError",
                "invalid syntax. Perhaps you forgot a comma? (<unknown>, line 1)",
            ),
            (
                "x\n\n    ",
                "IndentationError",
                "unexpected indent (<unknown>, line 3)",
            ),
            (
                "abc\"",
                "SyntaxError",
                "unterminated string literal (detected at line 1) (<unknown>, line 1)",
            ),
            (
                "it's a test.\nmore",
                "SyntaxError",
                "unterminated string literal (detected at line 1) (<unknown>, line 1)",
            ),
            ("a.1", "SyntaxError", "invalid syntax (<unknown>, line 1)"),
            (
                "1.a",
                "SyntaxError",
                "invalid decimal literal (<unknown>, line 1)",
            ),
            (
                "0_7",
                "SyntaxError",
                "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers (<unknown>, line 1)",
            ),
            (
                "1_",
                "SyntaxError",
                "invalid decimal literal (<unknown>, line 1)",
            ),
            (
                "0x",
                "SyntaxError",
                "invalid hexadecimal literal (<unknown>, line 1)",
            ),
            (
                "0xg",
                "SyntaxError",
                "invalid hexadecimal literal (<unknown>, line 1)",
            ),
            (
                "0b",
                "SyntaxError",
                "invalid binary literal (<unknown>, line 1)",
            ),
            (
                "0o",
                "SyntaxError",
                "invalid octal literal (<unknown>, line 1)",
            ),
            (
                "1.__class__",
                "SyntaxError",
                "invalid decimal literal (<unknown>, line 1)",
            ),
        ];
        for (text, kind, msg) in cases {
            assert_eq!(err(text), (kind.to_string(), msg.to_string()), "{text:?}");
        }
    }

    #[test]
    fn malformed_nodes_match_cpython() {
        let cases: &[(&str, &str)] = &[
            ("hello", "Name"),
            ("--5", "UnaryOp"),
            ("+True", "Constant"),
            ("{'a': true}", "Name"),
            ("(a for a in b)", "GeneratorExp"),
            ("lambda: 1", "Lambda"),
            ("f'x{1}'", "JoinedStr"),
            ("a if b else c", "IfExp"),
            ("not a", "UnaryOp"),
            ("a.b", "Attribute"),
            ("a[1:2]", "Subscript"),
            ("(x := 1)", "NamedExpr"),
            ("(yield x)", "Yield"),
            ("await x", "Await"),
            ("[*a]", "Starred"),
            ("[1] [2]", "Subscript"),
            ("{\"a\": 1 // c\n}", "BinOp"),
            ("print(x)", "Call"),
            ("{'a': 1 for x in y}", "DictComp"),
            ("1if 1 else 2", "IfExp"),
            ("\t x", "Name"),
            ("x\n  \n", "Name"),
        ];
        for (text, class) in cases {
            let (kind, msg) = err(text);
            assert_eq!(kind, "ValueError", "{text:?}");
            let want = format!("malformed node or string on line 1: <ast.{class} object at 0x");
            assert!(msg.starts_with(&want), "{text:?}: {msg}");
        }
        assert_eq!(
            err("{**a}"),
            ("ValueError".into(), "malformed node or string: None".into())
        );
        assert_eq!(err("{\"a\": 1, **b}").1, "malformed node or string: None");
    }

    #[test]
    fn literals_convert_like_python() {
        let cases: &[(&str, &str)] = &[
            ("(1, 2)", "(1, 2)"),
            ("{1, 2}", "{1, 2}"),
            ("b'abc'", "b'abc'"),
            ("1+2j", "(1+2j)"),
            ("-5", "-5"),
            ("set()", "set()"),
            ("1_000", "1000"),
            ("0x1F", "31"),
            ("1.5j", "1.5j"),
            ("...", "Ellipsis"),
            ("[1, 2, 3,]", "[1, 2, 3]"),
            ("{'a': 1, 'a': 2}", "{'a': 2}"),
            ("{1: 'a', True: 'b', 1.0: 'c'}", "{1: 'c'}"),
            (" \t1", "1"),
            ("{'a' 'b'}", "{'ab'}"),
            ("'a\\\nb'", "'ab'"),
            ("1.e5", "100000.0"),
            ("00", "0"),
            ("09.5", "9.5"),
            ("0e5", "0.0"),
            (
                "{\"a\": \"x\",\n \"b\": \"it's\"}",
                "{'a': 'x', 'b': \"it's\"}",
            ),
            (
                "{'a': [1, None, True, -2.5], 'b': (3,)}",
                "{'a': [1, None, True, -2.5], 'b': (3,)}",
            ),
            ("'\\u00e9\\t\\x41'", "'é\\tA'"),
            ("r'\\n'", "'\\\\n'"),
        ];
        for (text, repr) in cases {
            assert_eq!(err(text), ("OK".to_string(), repr.to_string()), "{text:?}");
        }
    }

    /// CPython's parser stack: deep nesting ends with `MemoryError` (thresholds measured
    /// on CPython 3.11), and the Rust side does not overflow its stack on the way. (Just
    /// below the limit CPython may instead fail building the AST with a `RecursionError`
    /// that depends on its caller's stack depth; that is not reproduced.)
    #[test]
    fn deep_inputs_hit_the_parser_limit() {
        let kind = |t: String| literal_eval(&t).map(|_| "OK").unwrap_or_else(|e| e.kind);
        assert_eq!(kind(vec!["w"; 1494].join(" ")), "SyntaxError");
        assert_eq!(kind(vec!["w"; 1495].join(" ")), "MemoryError");
        assert_eq!(kind(format!("{}1", "-".repeat(5976))), "MemoryError");
        assert_eq!(kind(format!("{}x", "not ".repeat(5976))), "MemoryError");
        assert_eq!(
            kind(format!("{}c", "a if b else ".repeat(5976))),
            "MemoryError"
        );
        assert_eq!(
            kind(format!("{}1{}", "[".repeat(150), "]".repeat(150))),
            "OK"
        );
        let nested_minus = format!(
            "{}{}1{}",
            "[".repeat(150),
            "-".repeat(2900),
            "]".repeat(150)
        );
        assert_eq!(kind(nested_minus), "MemoryError");
        assert_eq!(kind(format!("{}2", "2**".repeat(2988))), "MemoryError");
        assert_eq!(kind(format!("{}1", "lambda: ".repeat(2988))), "MemoryError");
        let e = literal_eval(&"(".repeat(300)).unwrap_err();
        assert_eq!(e.message, "too many nested parentheses (<unknown>, line 1)");
        assert_eq!(
            literal_eval(&vec!["w"; 5000].join(" "))
                .unwrap_err()
                .message,
            ""
        );
    }

    #[test]
    fn json_form_follows_jsonify() {
        let v = literal_eval("{'a': (1, 2), 1: {3, 4}, None: b'x', 'c': 1j}").unwrap();
        assert_eq!(
            to_json(&v),
            json!({"a": [1, 2], "1": "{3, 4}", "None": "b'x'", "c": "1j"})
        );
    }
}

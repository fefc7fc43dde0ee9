//! Python 3.11 `ast.literal_eval` on text, including its error messages.
//!
//! `parse_json` falls back to `ast.literal_eval` for Python-style dict/list output and
//! reports `Invalid JSON: <str(exc)>` when that fails. Flows show that message (for LLM
//! prose it is typically `invalid syntax (<unknown>, line 1)` or
//! `unterminated string literal (detected at line 14) (<unknown>, line 14)`), so this
//! module reproduces CPython's tokenizer, the expression grammar, the error-reporting
//! passes of its PEG parser (the common `invalid_*` rules, and the full-source tokenizer
//! scan whose errors take precedence), and `literal_eval`'s conversion rules.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::PyException;
use crate::repr::{float_value, int_value, is_py_printable, py_float_repr};

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
fn pyval_repr(v: &PyVal) -> String {
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

// ---------------------------------------------------------------------------------------
// Errors

/// A SyntaxError-family exception with its location.
#[derive(Debug, Clone)]
struct SynErr {
    kind: &'static str,
    msg: String,
    line: usize,
    /// Raised by the tokenizer while the parser fetched a token: reported as is.
    from_tokenizer: bool,
}

impl SynErr {
    fn new(kind: &'static str, msg: impl Into<String>, line: usize) -> Self {
        Self {
            kind,
            msg: msg.into(),
            line,
            from_tokenizer: false,
        }
    }

    fn into_exception(self) -> PyException {
        if self.kind == "MemoryError" {
            return PyException::new(self.kind, "");
        }
        PyException::new(
            self.kind,
            format!("{} (<unknown>, line {})", self.msg, self.line),
        )
    }
}

/// Tokenizer failures: either an exception (`syntaxerror()` in CPython) or an error
/// token that leaves the decision to the parser.
#[derive(Debug, Clone)]
enum TokErr {
    Raised(SynErr),
    Silent(Silent),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Silent {
    /// End of input inside brackets, or right after a line continuation.
    Eof,
    /// A backslash not followed by a newline.
    LineCont,
    /// Dedent to a column matching no outer level.
    Dedent,
    /// Tabs and spaces used inconsistently.
    TabSpace,
    /// More than 100 indentation levels.
    TooDeep,
}

// ---------------------------------------------------------------------------------------
// Tokenizer (CPython 3.11 `Parser/tokenizer.c`, string input)

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Number(String),
    Str(String),
    Op(&'static str),
    Newline,
    Indent,
    Dedent,
    EndMarker,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    line: usize,
    /// Bracket nesting level after this token.
    level: usize,
}

struct Tokenizer {
    chars: Vec<char>,
    /// Line number of each char position (1-based).
    lines: Vec<usize>,
    pos: usize,
    atbol: bool,
    parens: Vec<(char, usize)>,
    indstack: Vec<usize>,
    altindstack: Vec<usize>,
    pendin: i32,
    failed: bool,
}

const TWO_CHAR_OPS: &[&str] = &[
    "!=", "%=", "&=", "**", "*=", "+=", "-=", "->", "//", "/=", ":=", "<<", "<=", "<>", "==", ">=",
    ">>", "@=", "^=", "|=",
];
const THREE_CHAR_OPS: &[&str] = &["**=", "//=", "<<=", ">>="];
const ONE_CHAR_OPS: &[&str] = &[
    "%", "&", "(", ")", "*", "+", ",", "-", ".", "/", ":", ";", "<", "=", ">", "@", "[", "]", "^",
    "{", "|", "}", "~",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (c as u32) >= 128
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

impl Tokenizer {
    fn new(src: &str) -> Self {
        let chars: Vec<char> = src.chars().collect();
        let mut lines = Vec::with_capacity(chars.len() + 1);
        let mut line = 1;
        for c in &chars {
            lines.push(line);
            if *c == '\n' {
                line += 1;
            }
        }
        Self {
            chars,
            lines,
            pos: 0,
            atbol: true,
            parens: Vec::new(),
            indstack: vec![0],
            altindstack: vec![0],
            pendin: 0,
            failed: false,
        }
    }

    fn peek_at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn peek(&self) -> Option<char> {
        self.peek_at(self.pos)
    }

    /// The line of the char at `i`; at the end, the last line that holds a character.
    fn line_at(&self, i: usize) -> usize {
        self.lines
            .get(i)
            .or_else(|| self.lines.last())
            .copied()
            .unwrap_or(1)
    }

    fn level(&self) -> usize {
        self.parens.len()
    }

    fn raised(&self, msg: impl Into<String>, at: usize) -> TokErr {
        TokErr::Raised(SynErr {
            kind: "SyntaxError",
            msg: msg.into(),
            line: self.line_at(at),
            from_tokenizer: true,
        })
    }

    fn token(&self, kind: Tok, start: usize) -> Token {
        Token {
            kind,
            line: self.line_at(start),
            level: self.level(),
        }
    }

    fn next_token(&mut self) -> Result<Token, TokErr> {
        if self.failed {
            return Err(TokErr::Silent(Silent::Eof));
        }
        let r = self.next_token_inner();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn next_token_inner(&mut self) -> Result<Token, TokErr> {
        'nextline: loop {
            let mut blankline = false;
            if self.atbol {
                self.atbol = false;
                let (mut col, mut altcol, mut cont_line_col) = (0usize, 0usize, 0usize);
                loop {
                    match self.peek() {
                        Some(' ') => {
                            col += 1;
                            altcol += 1;
                        }
                        Some('\t') => {
                            col = (col / 8 + 1) * 8;
                            altcol += 1;
                        }
                        Some('\x0c') => {
                            col = 0;
                            altcol = 0;
                        }
                        Some('\\') => {
                            if cont_line_col == 0 {
                                cont_line_col = col;
                            }
                            self.continuation()?;
                            continue;
                        }
                        _ => break,
                    }
                    self.pos += 1;
                }
                if matches!(self.peek(), Some('#' | '\n')) {
                    blankline = true;
                }
                if !blankline && self.level() == 0 {
                    if cont_line_col != 0 {
                        col = cont_line_col;
                        altcol = cont_line_col;
                    }
                    let top = *self.indstack.last().unwrap_or(&0);
                    let alttop = *self.altindstack.last().unwrap_or(&0);
                    if col == top {
                        if altcol != alttop {
                            return Err(TokErr::Silent(Silent::TabSpace));
                        }
                    } else if col > top {
                        if self.indstack.len() >= 100 {
                            return Err(TokErr::Silent(Silent::TooDeep));
                        }
                        if altcol <= alttop {
                            return Err(TokErr::Silent(Silent::TabSpace));
                        }
                        self.pendin += 1;
                        self.indstack.push(col);
                        self.altindstack.push(altcol);
                    } else {
                        while self.indstack.len() > 1 && col < *self.indstack.last().unwrap_or(&0) {
                            self.pendin -= 1;
                            self.indstack.pop();
                            self.altindstack.pop();
                        }
                        if col != *self.indstack.last().unwrap_or(&0) {
                            return Err(TokErr::Silent(Silent::Dedent));
                        }
                        if altcol != *self.altindstack.last().unwrap_or(&0) {
                            return Err(TokErr::Silent(Silent::TabSpace));
                        }
                    }
                }
            }
            if self.pendin != 0 {
                let kind = if self.pendin < 0 {
                    self.pendin += 1;
                    Tok::Dedent
                } else {
                    self.pendin -= 1;
                    Tok::Indent
                };
                return Ok(self.token(kind, self.pos));
            }
            loop {
                while matches!(self.peek(), Some(' ' | '\t' | '\x0c')) {
                    self.pos += 1;
                }
                let start = self.pos;
                if self.peek() == Some('#') {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                let Some(c) = self.peek() else {
                    if self.level() > 0 {
                        return Err(TokErr::Silent(Silent::Eof));
                    }
                    return Ok(self.token(Tok::EndMarker, self.chars.len()));
                };
                if is_ident_start(c) {
                    return self.name_or_prefixed_string(start);
                }
                if c == '\n' {
                    self.pos += 1;
                    self.atbol = true;
                    if blankline || self.level() > 0 {
                        continue 'nextline;
                    }
                    return Ok(self.token(Tok::Newline, start));
                }
                if c == '.' {
                    if self.peek_at(start + 1).is_some_and(|d| d.is_ascii_digit()) {
                        return self.number(start);
                    }
                    if self.peek_at(start + 1) == Some('.') && self.peek_at(start + 2) == Some('.')
                    {
                        self.pos += 3;
                        return Ok(self.token(Tok::Op("..."), start));
                    }
                    self.pos += 1;
                    return Ok(self.token(Tok::Op("."), start));
                }
                if c.is_ascii_digit() {
                    return self.number(start);
                }
                if c == '\'' || c == '"' {
                    return self.string(start);
                }
                if c == '\\' {
                    self.continuation()?;
                    continue;
                }
                return self.operator(start, c);
            }
        }
    }

    /// A backslash at `pos`: it must end the line; input must continue after it.
    fn continuation(&mut self) -> Result<(), TokErr> {
        self.pos += 1;
        if self.peek() != Some('\n') {
            return Err(TokErr::Silent(Silent::LineCont));
        }
        self.pos += 1;
        if self.peek().is_none() {
            return Err(TokErr::Silent(Silent::Eof));
        }
        Ok(())
    }

    fn operator(&mut self, start: usize, c: char) -> Result<Token, TokErr> {
        let rest: String = self.chars[start..(start + 3).min(self.chars.len())]
            .iter()
            .collect();
        for op in THREE_CHAR_OPS {
            if rest.starts_with(op) {
                self.pos += 3;
                return Ok(self.token(Tok::Op(op), start));
            }
        }
        for op in TWO_CHAR_OPS {
            if rest.starts_with(op) {
                self.pos += 2;
                return Ok(self.token(Tok::Op(op), start));
            }
        }
        match c {
            '(' | '[' | '{' => {
                if self.level() >= 200 {
                    return Err(self.raised("too many nested parentheses", start));
                }
                self.parens.push((c, self.line_at(start)));
            }
            ')' | ']' | '}' => {
                let Some((opening, open_line)) = self.parens.pop() else {
                    return Err(self.raised(format!("unmatched '{c}'"), start));
                };
                let matching = matches!((opening, c), ('(', ')') | ('[', ']') | ('{', '}'));
                if !matching {
                    let line = self.line_at(start);
                    let msg = if open_line != line {
                        format!(
                            "closing parenthesis '{c}' does not match opening parenthesis '{opening}' on line {open_line}"
                        )
                    } else {
                        format!(
                            "closing parenthesis '{c}' does not match opening parenthesis '{opening}'"
                        )
                    };
                    return Err(self.raised(msg, start));
                }
            }
            _ => {}
        }
        if !is_py_printable(c) {
            return Err(self.raised(
                format!("invalid non-printable character U+{:04X}", c as u32),
                start,
            ));
        }
        self.pos += 1;
        let op = ONE_CHAR_OPS
            .iter()
            .find(|op| op.starts_with(c))
            .copied()
            .unwrap_or("?");
        Ok(self.token(Tok::Op(op), start))
    }

    fn name_or_prefixed_string(&mut self, start: usize) -> Result<Token, TokErr> {
        let (mut saw_b, mut saw_r, mut saw_u, mut saw_f) = (false, false, false, false);
        while let Some(c) = self.peek() {
            if !(saw_b || saw_u || saw_f) && (c == 'b' || c == 'B') {
                saw_b = true;
            } else if !(saw_b || saw_u || saw_r || saw_f) && (c == 'u' || c == 'U') {
                saw_u = true;
            } else if !(saw_r || saw_u) && (c == 'r' || c == 'R') {
                saw_r = true;
            } else if !(saw_f || saw_b || saw_u) && (c == 'f' || c == 'F') {
                saw_f = true;
            } else {
                break;
            }
            self.pos += 1;
            if matches!(self.peek(), Some('\'' | '"')) {
                return self.string(start);
            }
        }
        let mut nonascii = false;
        while let Some(c) = self.peek() {
            if !is_ident_char(c) {
                break;
            }
            nonascii |= !c.is_ascii();
            self.pos += 1;
        }
        let ident: Vec<char> = self.chars[start..self.pos].to_vec();
        if nonascii {
            let invalid = ident.iter().enumerate().position(|(i, &ch)| {
                if i == 0 {
                    !(ch == '_' || unicode_ident::is_xid_start(ch))
                } else {
                    !unicode_ident::is_xid_continue(ch)
                }
            });
            if let Some(i) = invalid {
                let ch = ident[i];
                let msg = if is_py_printable(ch) {
                    format!("invalid character '{ch}' (U+{:04X})", ch as u32)
                } else {
                    format!("invalid non-printable character U+{:04X}", ch as u32)
                };
                return Err(self.raised(msg, start + i));
            }
        }
        Ok(self.token(Tok::Name(ident.into_iter().collect()), start))
    }

    fn string(&mut self, start: usize) -> Result<Token, TokErr> {
        let Some(quote) = self.peek() else {
            return Err(TokErr::Silent(Silent::Eof));
        };
        let quote_pos = self.pos;
        self.pos += 1;
        let mut quote_size = 1;
        let mut end_quote_size = 0;
        if self.peek() == Some(quote) {
            self.pos += 1;
            if self.peek() == Some(quote) {
                self.pos += 1;
                quote_size = 3;
            } else {
                end_quote_size = 1;
            }
        }
        while end_quote_size != quote_size {
            let c = self.peek();
            match c {
                None => return Err(self.unterminated(quote_size, quote_pos, self.chars.len())),
                Some('\n') if quote_size == 1 => {
                    return Err(self.unterminated(quote_size, quote_pos, self.pos));
                }
                _ => {}
            }
            self.pos += 1;
            if c == Some(quote) {
                end_quote_size += 1;
            } else {
                end_quote_size = 0;
                if c == Some('\\') && self.peek().is_some() {
                    self.pos += 1;
                }
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        Ok(self.token(Tok::Str(text), start))
    }

    fn unterminated(&self, quote_size: usize, quote_pos: usize, detected_at: usize) -> TokErr {
        let what = if quote_size == 3 {
            "unterminated triple-quoted string literal"
        } else {
            "unterminated string literal"
        };
        TokErr::Raised(SynErr {
            kind: "SyntaxError",
            msg: format!("{what} (detected at line {})", self.line_at(detected_at)),
            line: self.line_at(quote_pos),
            from_tokenizer: true,
        })
    }

    /// `lookahead()`: the exact keyword text follows and is not glued to an identifier.
    fn lookahead(&self, at: usize, word: &str) -> bool {
        let n = word.chars().count();
        let matches = word
            .chars()
            .enumerate()
            .all(|(k, w)| self.peek_at(at + k) == Some(w));
        matches && !self.peek_at(at + n).is_some_and(is_ident_char)
    }

    /// `verify_end_of_number`: the char at `at` may not glue an identifier to a number,
    /// except keywords that can legally follow one.
    fn verify_end(&self, at: usize, kind: &str) -> Result<(), TokErr> {
        let c = self.peek_at(at);
        let keyword_follows = match c {
            Some('a') => self.lookahead(at + 1, "nd"),
            Some('e') => self.lookahead(at + 1, "lse"),
            Some('f') => self.lookahead(at + 1, "or"),
            Some('i') => matches!(self.peek_at(at + 1), Some('f' | 'n' | 's')),
            Some('o') => self.lookahead(at + 1, "r"),
            Some('n') => self.lookahead(at + 1, "ot"),
            _ => false,
        };
        // A non-ASCII char ends the number; the tokenizer then reports it as a character.
        if !keyword_follows && c.is_some_and(|c| c.is_ascii() && is_ident_char(c)) {
            return Err(self.raised(format!("invalid {kind} literal"), at));
        }
        Ok(())
    }

    fn is_digit_at(&self, i: usize) -> bool {
        self.peek_at(i).is_some_and(|c| c.is_ascii_digit())
    }

    /// `tok_decimal_tail`: digits with single underscores between them.
    fn decimal_tail(&mut self) -> Result<(), TokErr> {
        loop {
            while self.is_digit_at(self.pos) {
                self.pos += 1;
            }
            if self.peek() != Some('_') {
                return Ok(());
            }
            self.pos += 1;
            if !self.is_digit_at(self.pos) {
                return Err(self.raised("invalid decimal literal", self.pos));
            }
        }
    }

    fn radix_digits(
        &mut self,
        valid: fn(char) -> bool,
        kind: &str,
        check_decimal: bool,
    ) -> Result<(), TokErr> {
        self.pos += 1; // the x/o/b marker
        loop {
            if self.peek() == Some('_') {
                self.pos += 1;
            }
            match self.peek() {
                Some(c) if valid(c) => {}
                Some(c) if check_decimal && c.is_ascii_digit() => {
                    return Err(
                        self.raised(format!("invalid digit '{c}' in {kind} literal"), self.pos)
                    );
                }
                _ => return Err(self.raised(format!("invalid {kind} literal"), self.pos)),
            }
            while self.peek().is_some_and(valid) {
                self.pos += 1;
            }
            if self.peek() != Some('_') {
                break;
            }
        }
        if check_decimal && let Some(c) = self.peek().filter(char::is_ascii_digit) {
            return Err(self.raised(format!("invalid digit '{c}' in {kind} literal"), self.pos));
        }
        self.verify_end(self.pos, kind)
    }

    fn number(&mut self, start: usize) -> Result<Token, TokErr> {
        let first = self.chars[start];
        self.pos = start + 1;
        let done = |t: &mut Self| -> Result<Token, TokErr> {
            let text: String = t.chars[start..t.pos].iter().collect();
            Ok(t.token(Tok::Number(text), start))
        };
        if first == '.' {
            self.fraction_rest()?;
            return done(self);
        }
        if first == '0' {
            match self.peek() {
                Some('x' | 'X') => {
                    self.radix_digits(|c| c.is_ascii_hexdigit(), "hexadecimal", false)?;
                    return done(self);
                }
                Some('o' | 'O') => {
                    self.radix_digits(|c| ('0'..='7').contains(&c), "octal", true)?;
                    return done(self);
                }
                Some('b' | 'B') => {
                    self.radix_digits(|c| c == '0' || c == '1', "binary", true)?;
                    return done(self);
                }
                _ => {}
            }
            let mut nonzero = false;
            loop {
                if self.peek() == Some('_') {
                    self.pos += 1;
                    if !self.is_digit_at(self.pos) {
                        return Err(self.raised("invalid decimal literal", self.pos));
                    }
                }
                if self.peek() != Some('0') {
                    break;
                }
                self.pos += 1;
            }
            if self.is_digit_at(self.pos) {
                nonzero = true;
                self.pos += 1;
                self.decimal_tail()?;
            }
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    self.fraction_rest()?;
                }
                Some('e' | 'E') => self.exponent_rest()?,
                Some('j' | 'J') => {
                    self.pos += 1;
                    self.verify_end(self.pos, "imaginary")?;
                }
                _ if nonzero => {
                    return Err(self.raised(
                        "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers",
                        start,
                    ));
                }
                _ => self.verify_end(self.pos, "decimal")?,
            }
            return done(self);
        }
        self.decimal_tail()?;
        if self.peek() == Some('.') {
            self.pos += 1;
            self.fraction_rest()?;
        } else {
            self.exponent_or_end()?;
        }
        done(self)
    }

    /// After the decimal point: digits, then exponent/imaginary/end checks.
    fn fraction_rest(&mut self) -> Result<(), TokErr> {
        if self.is_digit_at(self.pos) {
            self.pos += 1;
            self.decimal_tail()?;
        }
        self.exponent_or_end()
    }

    fn exponent_or_end(&mut self) -> Result<(), TokErr> {
        if matches!(self.peek(), Some('e' | 'E')) {
            return self.exponent_rest();
        }
        self.imaginary_or_end()
    }

    fn exponent_rest(&mut self) -> Result<(), TokErr> {
        let e_pos = self.pos;
        self.pos += 1;
        if matches!(self.peek(), Some('+' | '-')) {
            self.pos += 1;
            if !self.is_digit_at(self.pos) {
                return Err(self.raised("invalid decimal literal", self.pos));
            }
        } else if !self.is_digit_at(self.pos) {
            // Not an exponent after all: `1else` is fine, `1e` is not.
            self.verify_end(e_pos, "decimal")?;
            self.pos = e_pos;
            return Ok(());
        }
        self.pos += 1;
        self.decimal_tail()?;
        self.imaginary_or_end()
    }

    fn imaginary_or_end(&mut self) -> Result<(), TokErr> {
        if matches!(self.peek(), Some('j' | 'J')) {
            self.pos += 1;
            return self.verify_end(self.pos, "imaginary");
        }
        self.verify_end(self.pos, "decimal")
    }
}

// ---------------------------------------------------------------------------------------
// Parser (the eval-mode expression grammar of CPython 3.11)

#[derive(Debug, Clone, Copy, PartialEq)]
enum UnOp {
    Plus,
    Minus,
    Not,
    Invert,
}

#[derive(Debug, Clone)]
enum NodeKind {
    Const(PyVal),
    Name(String),
    Tuple(Vec<Node>),
    List(Vec<Node>),
    Set(Vec<Node>),
    Dict(Vec<(Option<Node>, Node)>),
    Unary(UnOp, Rc<Node>),
    /// `+`/`-` (true) or another operator (false).
    BinOp(bool, bool, Rc<Node>, Rc<Node>),
    Call(Rc<Node>, bool),
    /// `*value`.
    Starred(Rc<Node>),
    /// A comparison: whether its first operator is `in`, and its left operand.
    Compare(bool, Rc<Node>),
    /// Any other AST node, by class name.
    Other(&'static str),
}

#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    line: usize,
}

impl Node {
    fn new(kind: NodeKind, line: usize) -> Self {
        Self { kind, line }
    }

    fn class(&self) -> &'static str {
        match &self.kind {
            NodeKind::Const(_) => "Constant",
            NodeKind::Name(_) => "Name",
            NodeKind::Tuple(_) => "Tuple",
            NodeKind::List(_) => "List",
            NodeKind::Set(_) => "Set",
            NodeKind::Dict(_) => "Dict",
            NodeKind::Unary(..) => "UnaryOp",
            NodeKind::BinOp(..) => "BinOp",
            NodeKind::Call(..) => "Call",
            NodeKind::Starred(_) => "Starred",
            NodeKind::Compare(..) => "Compare",
            NodeKind::Other(c) => c,
        }
    }

    /// `_PyPegen_get_expr_name`, used in "cannot assign to … here".
    fn expr_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Const(PyVal::None) => "None",
            NodeKind::Const(PyVal::Bool(true)) => "True",
            NodeKind::Const(PyVal::Bool(false)) => "False",
            NodeKind::Const(PyVal::Ellipsis) => "ellipsis",
            NodeKind::Const(_) => "literal",
            NodeKind::Name(_) => "name",
            NodeKind::Tuple(_) => "tuple",
            NodeKind::List(_) => "list",
            NodeKind::Set(_) => "set display",
            NodeKind::Dict(_) => "dict literal",
            NodeKind::Unary(..) | NodeKind::BinOp(..) => "expression",
            NodeKind::Call(..) => "function call",
            NodeKind::Starred(_) => "starred",
            NodeKind::Compare(..) => "comparison",
            NodeKind::Other(c) => match *c {
                "Attribute" => "attribute",
                "Subscript" => "subscript",
                "Starred" => "starred",
                "Lambda" => "lambda",
                "BoolOp" => "expression",
                "GeneratorExp" => "generator expression",
                "Yield" | "YieldFrom" => "yield expression",
                "Await" => "await expression",
                "ListComp" => "list comprehension",
                "SetComp" => "set comprehension",
                "DictComp" => "dict comprehension",
                "JoinedStr" => "f-string expression",
                "Compare" => "comparison",
                "IfExp" => "conditional expression",
                "NamedExpr" => "named expression",
                _ => "expression",
            },
        }
    }
}

enum PErr {
    /// No alternative matched (backtrack or report a generic error).
    Fail,
    /// A definite error; aborts the parse.
    Fatal(Box<SynErr>),
}

type PResult<T> = Result<T, PErr>;

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Memo key: rule and start token. Like CPython's, it ignores whether the `invalid_*`
/// rules were on, so a result computed without them is reused with them.
type MemoKey = (u8, usize);

struct Parser {
    tokenizer: Tokenizer,
    tokens: Vec<Token>,
    pos: usize,
    /// Furthest token index the parse looked at.
    furthest: usize,
    /// `invalid_*` diagnostic rules off: the first pass, or `*_without_invalid` in the second.
    quiet: bool,
    /// Results of the memoized rules (`expression`, `disjunction`), as in CPython.
    memo: HashMap<MemoKey, Option<(Node, usize)>>,
    /// Skip the `invalid_*` alternatives of the next `expression` only.
    skip_invalid_once: bool,
    /// Nesting of the recursive rules, bounded like CPython's parser stack.
    depth: usize,
}

/// CPython's parser gives up with `MemoryError` past 6000 nested rule calls (`MAXSTACK`).
/// Each rule here counts the levels of its CPython counterpart (left-recursive rules
/// count twice: the rule and its `_raw` body), which reproduces the measured thresholds
/// (1495 bare words, 5976 unary minus signs or `not`, 2988 `**` or `lambda:` levels).
const MAX_DEPTH: usize = 6000;

const MEMO_EXPRESSION: u8 = 0;
const MEMO_DISJUNCTION: u8 = 1;
const MEMO_CONJUNCTION: u8 = 2;
const MEMO_INVERSION: u8 = 3;
const MEMO_BITWISE_OR: u8 = 4;
const MEMO_FACTOR: u8 = 5;

impl Parser {
    fn new(src: &str) -> Self {
        Self {
            tokenizer: Tokenizer::new(src),
            tokens: Vec::new(),
            pos: 0,
            furthest: 0,
            quiet: true,
            memo: HashMap::new(),
            skip_invalid_once: false,
            depth: 0,
        }
    }

    /// Runs a rule one level deeper, failing with `MemoryError` past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.nested_by(1, f)
    }

    /// Like [`Self::nested`] for a rule worth `levels` CPython stack levels.
    fn nested_by<T>(
        &mut self,
        levels: usize,
        f: impl FnOnce(&mut Self) -> PResult<T>,
    ) -> PResult<T> {
        self.depth += levels;
        let r = if self.depth > MAX_DEPTH {
            let mut err = SynErr::new("MemoryError", "", 0);
            // Not a SyntaxError: it ends the parse at once, without a second pass.
            err.from_tokenizer = true;
            Err(PErr::Fatal(Box::new(err)))
        } else {
            f(self)
        };
        self.depth -= levels;
        r
    }

    /// Runs a memoized rule at the current position.
    fn memoized(&mut self, rule: u8, f: fn(&mut Self) -> PResult<Node>) -> PResult<Node> {
        let key = (rule, self.pos);
        if let Some(hit) = self.memo.get(&key) {
            return match hit.clone() {
                Some((node, end)) => {
                    self.pos = end;
                    Ok(node)
                }
                None => Err(PErr::Fail),
            };
        }
        let start = self.pos;
        let r = f(self);
        match &r {
            Ok(node) => {
                self.memo.insert(key, Some((node.clone(), self.pos)));
            }
            Err(PErr::Fail) => {
                self.pos = start;
                self.memo.insert(key, None);
            }
            Err(PErr::Fatal(_)) => {}
        }
        r
    }

    /// Runs `f`; on a plain failure the position is restored and `None` returned.
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<Option<T>> {
        let start = self.pos;
        match f(self) {
            Ok(v) => Ok(Some(v)),
            Err(PErr::Fail) => {
                self.pos = start;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn fetch(&mut self, i: usize) -> PResult<&Token> {
        while self.tokens.len() <= i {
            match self.tokenizer.next_token() {
                Ok(t) => self.tokens.push(t),
                Err(e) => return Err(PErr::Fatal(Box::new(self.tokenizer_error(e)))),
            }
        }
        if i > self.furthest {
            self.furthest = i;
        }
        Ok(&self.tokens[i])
    }

    /// CPython's `_Pypegen_tokenizer_error` for an error token reached by the parser.
    fn tokenizer_error(&self, e: TokErr) -> SynErr {
        let line = self.tokenizer.line_at(self.tokenizer.pos);
        let mut err = match e {
            TokErr::Raised(err) => err,
            TokErr::Silent(Silent::Eof) => match self.tokenizer.parens.last() {
                Some((c, l)) => SynErr::new("SyntaxError", format!("'{c}' was never closed"), *l),
                None => SynErr::new("SyntaxError", "unexpected EOF while parsing", line),
            },
            TokErr::Silent(Silent::LineCont) => SynErr::new(
                "SyntaxError",
                "unexpected character after line continuation character",
                line,
            ),
            TokErr::Silent(Silent::Dedent) => SynErr::new(
                "IndentationError",
                "unindent does not match any outer indentation level",
                line,
            ),
            TokErr::Silent(Silent::TabSpace) => SynErr::new(
                "TabError",
                "inconsistent use of tabs and spaces in indentation",
                line,
            ),
            TokErr::Silent(Silent::TooDeep) => {
                SynErr::new("IndentationError", "too many levels of indentation", line)
            }
        };
        err.from_tokenizer = true;
        err
    }

    fn peek(&mut self) -> PResult<Tok> {
        let i = self.pos;
        Ok(self.fetch(i)?.kind.clone())
    }

    fn peek_n(&mut self, n: usize) -> PResult<Tok> {
        let i = self.pos + n;
        Ok(self.fetch(i)?.kind.clone())
    }

    fn line(&mut self) -> PResult<usize> {
        let i = self.pos;
        Ok(self.fetch(i)?.line)
    }

    fn is_op(&mut self, op: &str) -> PResult<bool> {
        Ok(matches!(self.peek()?, Tok::Op(o) if o == op))
    }

    fn is_kw(&mut self, kw: &str) -> PResult<bool> {
        Ok(matches!(self.peek()?, Tok::Name(n) if n == kw))
    }

    fn accept_op(&mut self, op: &str) -> PResult<bool> {
        if self.is_op(op)? {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn accept_kw(&mut self, kw: &str) -> PResult<bool> {
        if self.is_kw(kw)? {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect_op(&mut self, op: &str) -> PResult<()> {
        if self.accept_op(op)? {
            Ok(())
        } else {
            Err(PErr::Fail)
        }
    }

    fn fatal<T>(&self, msg: impl Into<String>, line: usize) -> PResult<T> {
        Err(PErr::Fatal(Box::new(SynErr::new("SyntaxError", msg, line))))
    }

    /// Runs `f` with the diagnostic rules off (`*_without_invalid`); the position is restored.
    fn speculate<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> PResult<T>,
    ) -> PResult<Option<(T, usize)>> {
        let (pos, quiet) = (self.pos, self.quiet);
        self.quiet = true;
        let r = f(self);
        let end = self.pos;
        self.pos = pos;
        self.quiet = quiet;
        match r {
            Ok(v) => Ok(Some((v, end))),
            Err(PErr::Fail) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `eval: expressions NEWLINE* ENDMARKER`
    fn parse_eval(&mut self) -> PResult<Node> {
        self.nested(Self::parse_eval_rule)
    }

    fn parse_eval_rule(&mut self) -> PResult<Node> {
        let node = self.expressions()?;
        while self.peek()? == Tok::Newline {
            self.pos += 1;
        }
        if self.peek()? != Tok::EndMarker {
            return Err(PErr::Fail);
        }
        Ok(node)
    }

    fn starts_expression(&mut self) -> PResult<bool> {
        Ok(match self.peek()? {
            Tok::Name(n) => {
                !KEYWORDS.contains(&n.as_str())
                    || matches!(
                        n.as_str(),
                        "True" | "False" | "None" | "not" | "lambda" | "await"
                    )
            }
            Tok::Number(_) | Tok::Str(_) => true,
            Tok::Op(o) => matches!(o, "(" | "[" | "{" | "-" | "+" | "~" | "..."),
            _ => false,
        })
    }

    /// `expressions: expression (',' expression)* [',']`
    fn expressions(&mut self) -> PResult<Node> {
        self.nested(Self::expressions_rule)
    }

    fn expressions_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let first = self.expression()?;
        if !self.is_op(",")? {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.accept_op(",")? {
            if !self.starts_expression()? {
                break;
            }
            items.push(self.expression()?);
        }
        Ok(Node::new(NodeKind::Tuple(items), line))
    }

    /// `star_expressions`, used after a legacy `print`.
    fn star_expressions(&mut self) -> PResult<Node> {
        self.nested(Self::star_expressions_rule)
    }

    fn star_expressions_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let first = self.star_expression()?;
        if !self.is_op(",")? {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.accept_op(",")? {
            if !(self.starts_expression()? || self.is_op("*")?) {
                break;
            }
            items.push(self.star_expression()?);
        }
        Ok(Node::new(NodeKind::Tuple(items), line))
    }

    fn star_expression(&mut self) -> PResult<Node> {
        self.nested(Self::star_expression_rule)
    }

    fn star_expression_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        if self.accept_op("*")? {
            let value = self.bitwise_or()?;
            return Ok(Node::new(NodeKind::Starred(Rc::new(value)), line));
        }
        self.expression()
    }

    /// `expression` (memoized).
    fn expression(&mut self) -> PResult<Node> {
        self.nested(|p| p.memoized(MEMO_EXPRESSION, Self::expression_rule))
    }

    /// `expression`: in the second pass the `invalid_expression` and
    /// `invalid_legacy_expression` alternatives come first.
    fn expression_rule(&mut self) -> PResult<Node> {
        let start = self.pos;
        let line = self.line()?;
        let skip = std::mem::take(&mut self.skip_invalid_once);
        if !self.quiet && !skip {
            self.invalid_expression(start, line)?;
            self.pos = start;
            self.invalid_legacy_expression(start, line)?;
            self.pos = start;
        }
        self.expression_without_invalid()
    }

    /// `expression_without_invalid`: the plain alternatives (a distinct, unmemoized rule).
    fn expression_without_invalid(&mut self) -> PResult<Node> {
        let line = self.line()?;
        if self.is_kw("lambda")? {
            return self.lambdef();
        }
        let a = self.disjunction()?;
        let after_a = self.pos;
        if self.accept_kw("if")? {
            let if_else = self.attempt(|p| {
                p.disjunction()?;
                if !p.accept_kw("else")? {
                    return Err(PErr::Fail);
                }
                p.expression()
            })?;
            if if_else.is_some() {
                return Ok(Node::new(NodeKind::Other("IfExp"), line));
            }
            self.pos = after_a;
        }
        Ok(a)
    }

    /// `invalid_expression`: two expressions side by side inside brackets ("Perhaps you
    /// forgot a comma?"), or `a if b` without `else`.
    fn invalid_expression(&mut self, start: usize, line: usize) -> PResult<()> {
        self.nested(|p| p.invalid_expression_rule(start, line))
    }

    fn invalid_expression_rule(&mut self, start: usize, line: usize) -> PResult<()> {
        if !self.starts_with_name_string_or_soft_kw(start)?
            && let Some(a) = self.attempt(Self::disjunction)?
            && let Some((_, end)) =
                self.speculate(|p| p.nested(Self::expression_without_invalid))?
        {
            let last_level = self
                .tokens
                .get(end.saturating_sub(1))
                .map_or(0, |t| t.level);
            let legacy = matches!(&a.kind, NodeKind::Name(n) if n == "print" || n == "exec");
            if last_level > 0 && !legacy {
                return self.fatal("invalid syntax. Perhaps you forgot a comma?", line);
            }
        }
        self.pos = start;
        if self.attempt(Self::disjunction)?.is_some()
            && self.accept_kw("if")?
            && self.attempt(Self::disjunction)?.is_some()
            && !self.is_kw("else")?
            && !self.is_op(":")?
        {
            return self.fatal("expected 'else' after 'if' expression", line);
        }
        Ok(())
    }

    /// `invalid_legacy_expression: a=NAME !'(' b=star_expressions`, an error only for
    /// `print`/`exec`; parsing `b` still runs the diagnostics further along the text.
    fn invalid_legacy_expression(&mut self, start: usize, line: usize) -> PResult<()> {
        self.nested(|p| p.invalid_legacy_expression_rule(start, line))
    }

    fn invalid_legacy_expression_rule(&mut self, start: usize, line: usize) -> PResult<()> {
        let Tok::Name(name) = self.peek()? else {
            return Ok(());
        };
        if KEYWORDS.contains(&name.as_str()) || self.peek_n(1)? == Tok::Op("(") {
            return Ok(());
        }
        self.pos = start + 1;
        let b = self.attempt(Self::star_expressions)?;
        if b.is_some() && (name == "print" || name == "exec") {
            return self.fatal(
                format!("Missing parentheses in call to '{name}'. Did you mean {name}(...)?"),
                line,
            );
        }
        Ok(())
    }

    /// `!(NAME STRING | SOFT_KEYWORD)` at `start`.
    fn starts_with_name_string_or_soft_kw(&mut self, start: usize) -> PResult<bool> {
        let first = self.fetch(start)?.kind.clone();
        if let Tok::Name(n) = &first
            && !KEYWORDS.contains(&n.as_str())
        {
            // CPython compares only the token's length (`strncmp`), so any prefix of a
            // soft keyword (`c`, `ma`, ...) counts as one.
            if !n.is_empty()
                && ["_", "case", "match"]
                    .iter()
                    .any(|kw| kw.starts_with(n.as_str()))
            {
                return Ok(true);
            }
            if matches!(self.fetch(start + 1)?.kind, Tok::Str(_)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn lambdef(&mut self) -> PResult<Node> {
        self.nested(Self::lambdef_rule)
    }

    fn lambdef_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        self.pos += 1; // lambda
        if !self.is_op(":")? {
            loop {
                if self.accept_op("**")? || self.accept_op("*")? {
                    if matches!(self.peek()?, Tok::Name(_)) {
                        self.name()?;
                    }
                } else if self.accept_op("/")? {
                } else {
                    self.name()?;
                    if self.accept_op("=")? {
                        self.expression()?;
                    }
                }
                if !self.accept_op(",")? || self.is_op(":")? {
                    break;
                }
            }
        }
        self.expect_op(":")?;
        self.expression()?;
        Ok(Node::new(NodeKind::Other("Lambda"), line))
    }

    /// The current token is a NAME (keywords are separate token types in CPython).
    fn at_name(&mut self) -> PResult<bool> {
        Ok(matches!(self.peek()?, Tok::Name(n) if !KEYWORDS.contains(&n.as_str())))
    }

    fn name(&mut self) -> PResult<String> {
        match self.peek()? {
            Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => {
                self.pos += 1;
                Ok(n)
            }
            _ => Err(PErr::Fail),
        }
    }

    /// `disjunction` (memoized).
    fn disjunction(&mut self) -> PResult<Node> {
        self.nested(|p| p.memoized(MEMO_DISJUNCTION, |p| p.bool_chain("or", Self::conjunction)))
    }

    fn conjunction(&mut self) -> PResult<Node> {
        self.nested(|p| p.memoized(MEMO_CONJUNCTION, |p| p.bool_chain("and", Self::inversion)))
    }

    /// `first (kw next)+ | first`, backtracking over a dangling keyword.
    fn bool_chain(&mut self, kw: &str, next: fn(&mut Self) -> PResult<Node>) -> PResult<Node> {
        let line = self.line()?;
        let first = next(self)?;
        let mut chained = false;
        loop {
            let save = self.pos;
            if !self.accept_kw(kw)? {
                break;
            }
            if self.attempt(next)?.is_none() {
                self.pos = save;
                break;
            }
            chained = true;
        }
        Ok(if chained {
            Node::new(NodeKind::Other("BoolOp"), line)
        } else {
            first
        })
    }

    fn inversion(&mut self) -> PResult<Node> {
        self.nested(|p| p.memoized(MEMO_INVERSION, Self::inversion_rule))
    }

    fn inversion_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        if self.accept_kw("not")? {
            let operand = self.inversion()?;
            return Ok(Node::new(
                NodeKind::Unary(UnOp::Not, Rc::new(operand)),
                line,
            ));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> PResult<Node> {
        self.nested(Self::comparison_rule)
    }

    fn comparison_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let first = self.bitwise_or()?;
        let mut compared = false;
        let mut first_is_in = false;
        loop {
            let save = self.pos;
            let tok = self.peek()?;
            let matched = match &tok {
                Tok::Op(o) => matches!(*o, "==" | "!=" | "<" | "<=" | ">" | ">="),
                Tok::Name(n) if n == "in" => true,
                Tok::Name(n) if n == "is" => {
                    if self.peek_n(1)? == Tok::Name("not".into()) {
                        self.pos += 1;
                    }
                    true
                }
                Tok::Name(n) if n == "not" && self.peek_n(1)? == Tok::Name("in".into()) => {
                    self.pos += 1;
                    true
                }
                _ => false,
            };
            if !matched {
                self.pos = save;
                break;
            }
            self.pos += 1;
            if self.attempt(Self::bitwise_or)?.is_none() {
                self.pos = save;
                break;
            }
            if !compared {
                first_is_in = tok == Tok::Name("in".into());
            }
            compared = true;
        }
        Ok(if compared {
            Node::new(NodeKind::Compare(first_is_in, Rc::new(first)), line)
        } else {
            first
        })
    }

    fn binary_level(
        &mut self,
        ops: &[&str],
        next: fn(&mut Self) -> PResult<Node>,
    ) -> PResult<Node> {
        let line = self.line()?;
        let mut left = next(self)?;
        loop {
            let op = match self.peek()? {
                Tok::Op(o) if ops.contains(&o) => o,
                _ => return Ok(left),
            };
            let save = self.pos;
            self.pos += 1;
            let Some(right) = self.attempt(next)? else {
                self.pos = save;
                return Ok(left);
            };
            left = Node::new(
                NodeKind::BinOp(
                    op == "+" || op == "-",
                    op == "+",
                    Rc::new(left),
                    Rc::new(right),
                ),
                line,
            );
        }
    }

    fn bitwise_or(&mut self) -> PResult<Node> {
        self.nested_by(2, |p| {
            p.memoized(MEMO_BITWISE_OR, |p| {
                p.binary_level(&["|"], Self::bitwise_xor)
            })
        })
    }

    fn bitwise_xor(&mut self) -> PResult<Node> {
        self.nested_by(2, |p| p.binary_level(&["^"], Self::bitwise_and))
    }

    fn bitwise_and(&mut self) -> PResult<Node> {
        self.nested_by(2, |p| p.binary_level(&["&"], Self::shift_expr))
    }

    fn shift_expr(&mut self) -> PResult<Node> {
        self.nested_by(2, |p| p.binary_level(&["<<", ">>"], Self::sum))
    }

    fn sum(&mut self) -> PResult<Node> {
        self.nested_by(2, |p| p.binary_level(&["+", "-"], Self::term))
    }

    fn term(&mut self) -> PResult<Node> {
        self.nested_by(2, |p| {
            p.binary_level(&["*", "/", "//", "%", "@"], Self::factor)
        })
    }

    fn factor(&mut self) -> PResult<Node> {
        self.nested(|p| p.memoized(MEMO_FACTOR, Self::factor_rule))
    }

    fn factor_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let op = match self.peek()? {
            Tok::Op("+") => Some(UnOp::Plus),
            Tok::Op("-") => Some(UnOp::Minus),
            Tok::Op("~") => Some(UnOp::Invert),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let operand = self.factor()?;
            return Ok(Node::new(NodeKind::Unary(op, Rc::new(operand)), line));
        }
        self.power()
    }

    /// `power` with its `await_primary` level.
    fn power(&mut self) -> PResult<Node> {
        self.nested_by(2, Self::power_rule)
    }

    fn power_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let base = if self.accept_kw("await")? {
            self.primary()?;
            Node::new(NodeKind::Other("Await"), line)
        } else {
            self.primary()?
        };
        let save = self.pos;
        if self.accept_op("**")? {
            if let Some(exp) = self.attempt(Self::factor)? {
                return Ok(Node::new(
                    NodeKind::BinOp(false, false, Rc::new(base), Rc::new(exp)),
                    line,
                ));
            }
            self.pos = save;
        }
        Ok(base)
    }

    fn primary(&mut self) -> PResult<Node> {
        self.nested_by(2, Self::primary_rule)
    }

    fn primary_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let mut node = self.atom()?;
        loop {
            let save = self.pos;
            let extended = if self.accept_op(".")? {
                self.attempt(Self::name)?
                    .map(|_| Node::new(NodeKind::Other("Attribute"), line))
            } else if self.accept_op("(")? {
                self.attempt(Self::call_arguments)?
                    .map(|no_args| Node::new(NodeKind::Call(Rc::new(node.clone()), no_args), line))
            } else if self.accept_op("[")? {
                self.attempt(|p| {
                    p.slices()?;
                    p.expect_op("]")
                })?
                .map(|_| Node::new(NodeKind::Other("Subscript"), line))
            } else {
                None
            };
            match extended {
                Some(n) => node = n,
                None => {
                    self.pos = save;
                    return Ok(node);
                }
            }
        }
    }

    /// Call arguments after `(`, through `)`; returns whether there were none.
    fn call_arguments(&mut self) -> PResult<bool> {
        if self.accept_op(")")? {
            return Ok(true);
        }
        let mut count = 0;
        loop {
            if self.accept_op("*")? || self.accept_op("**")? {
                self.expression()?;
            } else if self.at_name()? && self.peek_n(1)? == Tok::Op("=") {
                self.name()?;
                self.pos += 1;
                self.expression()?;
            } else {
                if self.at_name()? && self.peek_n(1)? == Tok::Op(":=") {
                    self.named_expression()?;
                } else {
                    self.expression()?;
                }
                if count == 0 && (self.is_kw("for")? || self.is_kw("async")?) {
                    self.for_if_clauses()?;
                    self.expect_op(")")?;
                    return Ok(false);
                }
            }
            count += 1;
            if !self.accept_op(",")? {
                break;
            }
            if self.is_op(")")? {
                break;
            }
        }
        self.expect_op(")")?;
        Ok(false)
    }

    fn slices(&mut self) -> PResult<()> {
        loop {
            self.slice()?;
            if !self.accept_op(",")? || self.is_op("]")? {
                return Ok(());
            }
        }
    }

    /// `slice: [expression] ':' [expression] [':' [expression]] | named_expression | '*' …`
    fn slice(&mut self) -> PResult<()> {
        if self.accept_op("*")? {
            self.bitwise_or()?;
            return Ok(());
        }
        let has_lower = !self.is_op(":")?;
        if has_lower {
            if self.at_name()? && self.peek_n(1)? == Tok::Op(":=") {
                self.named_expression()?;
                return Ok(());
            }
            self.expression()?;
            if !self.is_op(":")? {
                return Ok(());
            }
        }
        self.expect_op(":")?;
        if self.starts_expression()? {
            self.expression()?;
        }
        if self.accept_op(":")? && self.starts_expression()? {
            self.expression()?;
        }
        Ok(())
    }

    /// `named_expression`, with the `invalid_named_expression` diagnostics for `=`.
    fn named_expression(&mut self) -> PResult<Node> {
        self.nested(Self::named_expression_rule)
    }

    fn named_expression_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        if self.at_name()? && self.peek_n(1)? == Tok::Op(":=") {
            self.name()?;
            self.pos += 1;
            self.expression()?;
            return Ok(Node::new(NodeKind::Other("NamedExpr"), line));
        }
        let start = self.pos;
        let node = self.expression()?;
        if self.is_op(":=")? {
            if !self.quiet {
                let save = self.pos;
                self.pos += 1;
                let rhs = self.attempt(Self::expression)?;
                self.pos = save;
                if rhs.is_some() {
                    return self.fatal(
                        format!(
                            "cannot use assignment expressions with {}",
                            node.expr_name()
                        ),
                        line,
                    );
                }
            }
            return Err(PErr::Fail);
        }
        if !self.quiet && self.is_op("=")? {
            self.assignment_hint(start, &node, line)?;
        }
        Ok(node)
    }

    fn assignment_hint(&mut self, start: usize, node: &Node, line: usize) -> PResult<()> {
        let eq = self.pos;
        let bare_name = matches!(node.kind, NodeKind::Name(_)) && eq == start + 1;
        self.pos += 1;
        let rhs = self.speculate(|p| p.bitwise_or())?;
        self.pos = eq;
        let Some((_, end)) = rhs else { return Ok(()) };
        let after = self.fetch(end)?.kind.clone();
        if after == Tok::Op("=") || after == Tok::Op(":=") {
            return Ok(());
        }
        if bare_name {
            return self.fatal(
                "invalid syntax. Maybe you meant '==' or ':=' instead of '='?",
                line,
            );
        }
        // `!(list|tuple|genexp|'True'|'None'|'False') a=bitwise_or '='`
        let first = self.fetch(start)?.kind.clone();
        let excluded = matches!(&first, Tok::Op("[" | "("))
            || matches!(&first, Tok::Name(n) if matches!(n.as_str(), "True" | "None" | "False"));
        let not_bitwise_or = matches!(node.class(), "BoolOp" | "Compare" | "IfExp" | "Lambda")
            || matches!(node.kind, NodeKind::Unary(UnOp::Not, _));
        if excluded || not_bitwise_or {
            return Ok(());
        }
        self.fatal(
            format!(
                "cannot assign to {} here. Maybe you meant '==' instead of '='?",
                node.expr_name()
            ),
            line,
        )
    }

    fn star_named_expression(&mut self) -> PResult<Node> {
        self.nested(Self::star_named_expression_rule)
    }

    fn star_named_expression_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        if self.accept_op("*")? {
            let value = self.bitwise_or()?;
            return Ok(Node::new(NodeKind::Starred(Rc::new(value)), line));
        }
        self.named_expression()
    }

    fn for_if_clauses(&mut self) -> PResult<()> {
        if !(self.is_kw("for")? || self.is_kw("async")?) {
            return Err(PErr::Fail);
        }
        while self.is_kw("for")? || self.is_kw("async")? {
            self.for_if_clause()?;
        }
        Ok(())
    }

    /// `['async'] 'for' star_targets 'in' ~ disjunction ('if' disjunction)*`, then
    /// `invalid_for_target` in the second pass.
    fn for_if_clause(&mut self) -> PResult<()> {
        self.accept_kw("async")?;
        if !self.accept_kw("for")? {
            return Err(PErr::Fail);
        }
        let after_for = self.pos;
        let head = self.attempt(|p| {
            p.star_targets()?;
            if p.accept_kw("in")? {
                Ok(())
            } else {
                Err(PErr::Fail)
            }
        })?;
        if head.is_some() {
            // The cut after `in`: no other alternative once the iterable is being read.
            self.disjunction()?;
            while self.accept_kw("if")? {
                self.disjunction()?;
            }
            return Ok(());
        }
        if !self.quiet {
            self.pos = after_for;
            if let Some(node) = self.attempt(Self::star_expressions)?
                && let Some(bad) = invalid_target(&node)
            {
                return self.fatal(format!("cannot assign to {}", bad.expr_name()), bad.line);
            }
        }
        Err(PErr::Fail)
    }

    /// `star_targets`: comma-separated assignment targets.
    fn star_targets(&mut self) -> PResult<()> {
        loop {
            let target = if self.is_op("*")? {
                self.star_named_expression()?
            } else {
                self.bitwise_or()?
            };
            if !is_valid_target(&target) {
                return Err(PErr::Fail);
            }
            let save = self.pos;
            if !self.accept_op(",")? {
                return Ok(());
            }
            if self.is_kw("in")? || !(self.starts_expression()? || self.is_op("*")?) {
                self.pos = if self.is_kw("in")? { self.pos } else { save };
                return Ok(());
            }
        }
    }

    fn atom(&mut self) -> PResult<Node> {
        self.nested(Self::atom_rule)
    }

    fn atom_rule(&mut self) -> PResult<Node> {
        let line = self.line()?;
        match self.peek()? {
            Tok::Name(n) => {
                let node = match n.as_str() {
                    "True" => NodeKind::Const(PyVal::Bool(true)),
                    "False" => NodeKind::Const(PyVal::Bool(false)),
                    "None" => NodeKind::Const(PyVal::None),
                    n if KEYWORDS.contains(&n) => return Err(PErr::Fail),
                    _ => NodeKind::Name(n),
                };
                self.pos += 1;
                Ok(Node::new(node, line))
            }
            Tok::Number(text) => {
                self.pos += 1;
                Ok(Node::new(NodeKind::Const(number_value(&text)), line))
            }
            Tok::Str(_) => self.strings(),
            Tok::Op("...") => {
                self.pos += 1;
                Ok(Node::new(NodeKind::Const(PyVal::Ellipsis), line))
            }
            Tok::Op("(") => self.nested_by(3, |p| p.with_invalid_comprehension(Self::paren_atom)),
            Tok::Op("[") => self.nested_by(3, |p| p.with_invalid_comprehension(Self::list_atom)),
            Tok::Op("{") => self.nested_by(3, |p| p.with_invalid_comprehension(Self::brace_atom)),
            _ => Err(PErr::Fail),
        }
    }

    fn strings(&mut self) -> PResult<Node> {
        let line = self.line()?;
        let mut parts = Vec::new();
        while let Tok::Str(text) = self.peek()? {
            let tok_line = self.line()?;
            parts.push((text, tok_line));
            self.pos += 1;
        }
        // Errors raised after the whole run was read point at the token that follows it.
        let after_line = self.line()?;
        let mut is_bytes = None;
        let mut fstring = false;
        let mut text = String::new();
        let mut bytes = Vec::new();
        for (raw, tok_line) in &parts {
            let lit = StrLit::parse(raw);
            match is_bytes {
                None => is_bytes = Some(lit.bytes),
                Some(b) if b != lit.bytes => {
                    return self.fatal("cannot mix bytes and nonbytes literals", after_line);
                }
                _ => {}
            }
            if lit.fstring {
                fstring = true;
                continue;
            }
            if lit.bytes {
                if !lit.body.is_ascii() {
                    return self
                        .fatal("bytes can only contain ASCII literal characters", *tok_line);
                }
                match decode_escapes(&lit.body, lit.raw, true) {
                    Ok(s) => bytes.extend(s.chars().map(|c| c as u32 as u8)),
                    Err(msg) => return self.fatal(format!("(value error) {msg}"), after_line),
                }
            } else {
                match decode_escapes(&lit.body, lit.raw, false) {
                    Ok(s) => text.push_str(&s),
                    Err(msg) => {
                        return self.fatal(
                            format!(
                                "(unicode error) 'unicodeescape' codec can't decode bytes in position {msg}"
                            ),
                            after_line,
                        );
                    }
                }
            }
        }
        if fstring {
            return Ok(Node::new(NodeKind::Other("JoinedStr"), line));
        }
        let value = if is_bytes == Some(true) {
            PyVal::Bytes(bytes)
        } else {
            PyVal::Str(text)
        };
        Ok(Node::new(NodeKind::Const(value), line))
    }

    fn paren_atom(&mut self) -> PResult<Node> {
        let line = self.line()?;
        self.pos += 1;
        if self.accept_op(")")? {
            return Ok(Node::new(NodeKind::Tuple(Vec::new()), line));
        }
        if self.is_kw("yield")? {
            self.pos += 1;
            if self.accept_kw("from")? {
                self.expression()?;
            } else if !self.is_op(")")? {
                self.star_expressions()?;
            }
            self.expect_op(")")?;
            return Ok(Node::new(NodeKind::Other("Yield"), line));
        }
        let first = self.star_named_expression()?;
        if self.is_kw("for")? || self.is_kw("async")? {
            self.for_if_clauses()?;
            self.expect_op(")")?;
            return Ok(Node::new(NodeKind::Other("GeneratorExp"), line));
        }
        if self.is_op(",")? {
            let mut items = vec![first];
            while self.accept_op(",")? {
                if self.is_op(")")? {
                    break;
                }
                items.push(self.star_named_expression()?);
            }
            self.expect_op(")")?;
            return Ok(Node::new(NodeKind::Tuple(items), line));
        }
        self.expect_op(")")?;
        if first.class() == "Starred" {
            return Err(PErr::Fail);
        }
        Ok(first)
    }

    /// A bracketed display, then (second pass) `invalid_comprehension` when it fails.
    fn with_invalid_comprehension(
        &mut self,
        display: fn(&mut Self) -> PResult<Node>,
    ) -> PResult<Node> {
        let start = self.pos;
        match display(self) {
            Err(PErr::Fail) if !self.quiet => {
                self.pos = start;
                self.invalid_comprehension()?;
                self.pos = start;
                Err(PErr::Fail)
            }
            other => other,
        }
    }

    /// `invalid_comprehension`: `[*a for ...]`, and `[a, b for ...]` without parentheses.
    fn invalid_comprehension(&mut self) -> PResult<()> {
        let open = self.peek()?;
        let start = self.pos;
        self.pos += 1;
        let starred_line = self.line()?;
        if self.accept_op("*")?
            && self.attempt(Self::expression)?.is_some()
            && self.attempt(Self::for_if_clauses)?.is_some()
        {
            return self.fatal(
                "iterable unpacking cannot be used in comprehension",
                starred_line,
            );
        }
        if open == Tok::Op("(") {
            return Ok(());
        }
        self.pos = start + 1;
        let line = self.line()?;
        if self.attempt(Self::star_named_expression)?.is_none() || !self.accept_op(",")? {
            return Ok(());
        }
        let after_comma = self.pos;
        let with_rest = self.attempt(|p| {
            p.star_named_expression()?;
            while p.accept_op(",")? {
                if p.attempt(Self::star_named_expression)?.is_none() {
                    break;
                }
            }
            p.for_if_clauses()
        })?;
        if with_rest.is_some() {
            return self.fatal(
                "did you forget parentheses around the comprehension target?",
                line,
            );
        }
        self.pos = after_comma;
        if self.attempt(Self::for_if_clauses)?.is_some() {
            return self.fatal(
                "did you forget parentheses around the comprehension target?",
                line,
            );
        }
        Ok(())
    }

    fn list_atom(&mut self) -> PResult<Node> {
        let line = self.line()?;
        self.pos += 1;
        if self.accept_op("]")? {
            return Ok(Node::new(NodeKind::List(Vec::new()), line));
        }
        let first = self.star_named_expression()?;
        if self.is_kw("for")? || self.is_kw("async")? {
            self.for_if_clauses()?;
            self.expect_op("]")?;
            return Ok(Node::new(NodeKind::Other("ListComp"), line));
        }
        let mut items = vec![first];
        while self.accept_op(",")? {
            if self.is_op("]")? {
                break;
            }
            items.push(self.star_named_expression()?);
        }
        self.expect_op("]")?;
        Ok(Node::new(NodeKind::List(items), line))
    }

    fn brace_atom(&mut self) -> PResult<Node> {
        let line = self.line()?;
        self.pos += 1;
        if self.accept_op("}")? {
            return Ok(Node::new(NodeKind::Dict(Vec::new()), line));
        }
        if self.is_op("**")? {
            return self.dict_rest(line, Vec::new());
        }
        if self.is_op("*")? {
            return self.set_rest(line);
        }
        let start = self.pos;
        let key = self.expression()?;
        if self.is_op(":")? {
            let colon_line = self.line()?;
            self.pos += 1;
            self.dict_value_check(colon_line)?;
            let value = self.expression()?;
            if self.is_kw("for")? || self.is_kw("async")? {
                self.for_if_clauses()?;
                self.expect_op("}")?;
                return Ok(Node::new(NodeKind::Other("DictComp"), line));
            }
            return self.dict_rest(line, vec![(Some(key), value)]);
        }
        self.pos = start;
        self.set_rest(line)
    }

    /// `invalid_double_starred_kvpairs` after `key ':'`.
    fn dict_value_check(&mut self, colon_line: usize) -> PResult<()> {
        if self.quiet {
            return Ok(());
        }
        if self.is_op("}")? || self.is_op(",")? {
            return self.fatal(
                "expression expected after dictionary key and ':'",
                colon_line,
            );
        }
        if self.is_op("*")? {
            let line = self.line()?;
            return self.fatal(
                "cannot use a starred expression in a dictionary value",
                line,
            );
        }
        Ok(())
    }

    fn dict_rest(&mut self, line: usize, mut pairs: Vec<(Option<Node>, Node)>) -> PResult<Node> {
        let mut need_comma = !pairs.is_empty();
        loop {
            if need_comma {
                if !self.accept_op(",")? {
                    break;
                }
                if self.is_op("}")? {
                    break;
                }
            }
            need_comma = true;
            if self.accept_op("**")? {
                let v = self.bitwise_or()?;
                pairs.push((None, v));
                continue;
            }
            let key_line = self.line()?;
            // CPython reports a bad key after the first pair as a missing ':' rather than
            // through the key expression's own diagnostics.
            self.skip_invalid_once = true;
            let key = self.expression();
            self.skip_invalid_once = false;
            let key = key?;
            if !self.is_op(":")? {
                if !self.quiet && !pairs.is_empty() {
                    return self.fatal("':' expected after dictionary key", key_line);
                }
                return Err(PErr::Fail);
            }
            let colon_line = self.line()?;
            self.pos += 1;
            self.dict_value_check(colon_line)?;
            let value = self.expression()?;
            pairs.push((Some(key), value));
        }
        self.expect_op("}")?;
        Ok(Node::new(NodeKind::Dict(pairs), line))
    }

    fn set_rest(&mut self, line: usize) -> PResult<Node> {
        let first = self.star_named_expression()?;
        if self.is_kw("for")? || self.is_kw("async")? {
            self.for_if_clauses()?;
            self.expect_op("}")?;
            return Ok(Node::new(NodeKind::Other("SetComp"), line));
        }
        let mut items = vec![first];
        while self.accept_op(",")? {
            if self.is_op("}")? {
                break;
            }
            items.push(self.star_named_expression()?);
        }
        self.expect_op("}")?;
        Ok(Node::new(NodeKind::Set(items), line))
    }

    /// `_PyPegen_tokenize_full_source_to_check_for_errors`: a tokenizer error anywhere in
    /// the rest of the input replaces a parser error.
    fn full_scan(&mut self, err: SynErr) -> SynErr {
        let current_err_line = self.tokens.last().map_or(err.line, |t| t.line);
        loop {
            match self.tokenizer.next_token() {
                Ok(t) if t.kind == Tok::EndMarker => return err,
                Ok(_) => continue,
                Err(TokErr::Raised(e)) => return e,
                Err(TokErr::Silent(_)) => {
                    if let Some((c, line)) = self.tokenizer.parens.last()
                        && current_err_line > *line
                    {
                        return SynErr::new(
                            "SyntaxError",
                            format!("'{c}' was never closed"),
                            *line,
                        );
                    }
                    return err;
                }
            }
        }
    }
}

/// The value of a NUMBER token.
fn number_value(text: &str) -> PyVal {
    let t = text.replace('_', "");
    let lower = t.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some(16)
    } else if lower.starts_with("0o") {
        Some(8)
    } else if lower.starts_with("0b") {
        Some(2)
    } else {
        None
    };
    if let Some(r) = radix {
        return match i128::from_str_radix(&t[2..], r) {
            Ok(i) => PyVal::Int(i),
            Err(_) => PyVal::Float(f64::INFINITY),
        };
    }
    if let Some(im) = lower.strip_suffix('j') {
        return PyVal::Complex(0.0, im.parse().unwrap_or(0.0));
    }
    if lower.contains(['.', 'e']) {
        return PyVal::Float(t.parse().unwrap_or(0.0));
    }
    match t.parse::<i128>() {
        Ok(i) => PyVal::Int(i),
        Err(_) => PyVal::Float(t.parse().unwrap_or(f64::INFINITY)),
    }
}

/// A string token split into prefix flags and body.
struct StrLit {
    bytes: bool,
    raw: bool,
    fstring: bool,
    body: String,
}

impl StrLit {
    fn parse(token: &str) -> Self {
        let prefix_len = token.find(['\'', '"']).unwrap_or(0);
        let prefix = token[..prefix_len].to_ascii_lowercase();
        let rest = &token[prefix_len..];
        let q = if rest.starts_with("'''") || rest.starts_with("\"\"\"") {
            3
        } else {
            1
        };
        let body = if rest.len() >= 2 * q {
            &rest[q..rest.len() - q]
        } else {
            ""
        };
        Self {
            bytes: prefix.contains('b'),
            raw: prefix.contains('r'),
            fstring: prefix.contains('f'),
            body: body.to_string(),
        }
    }
}

/// Python string escapes; `Err` carries the `position a-b: reason` of a bad escape.
fn decode_escapes(body: &str, raw: bool, bytes: bool) -> Result<String, String> {
    if raw {
        return Ok(body.to_string());
    }
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = chars[i + 1];
        i += 2;
        match e {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.get(i).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                let v = if bytes { v & 0xff } else { v };
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            'x' | 'u' | 'U' if !(bytes && e != 'x') => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let start = i - 2;
                let hex: String = chars.iter().skip(i).take(n).collect();
                if hex.chars().count() < n || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    let got = hex.chars().take_while(char::is_ascii_hexdigit).count();
                    let what = match e {
                        'x' => "truncated \\xXX escape",
                        'u' => "truncated \\uXXXX escape",
                        _ => "truncated \\UXXXXXXXX escape",
                    };
                    if bytes {
                        return Err(format!("invalid \\x escape at position {start}"));
                    }
                    return Err(format!("{start}-{}: {what}", start + 1 + got));
                }
                i += n;
                let code = u32::from_str_radix(&hex, 16).unwrap_or(0xfffd);
                match char::from_u32(code) {
                    Some(ch) => out.push(ch),
                    None if code > 0x10ffff => {
                        return Err(format!(
                            "{start}-{}: illegal Unicode character",
                            start + 1 + n
                        ));
                    }
                    None => out.push('\u{fffd}'),
                }
            }
            'N' if !bytes => {
                // Unicode names are not tabulated here; the character is unknown.
                let close = chars[i..].iter().position(|c| *c == '}');
                i += close.map_or(0, |p| p + 1);
                out.push('\u{fffd}');
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// literal_eval's conversion

/// A node `star_targets` accepts: names, attributes, subscripts, and bracketed or starred
/// groups of them.
fn is_valid_target(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Name(_) => true,
        NodeKind::Other(c) => matches!(*c, "Attribute" | "Subscript"),
        NodeKind::Tuple(items) | NodeKind::List(items) => items.iter().all(is_valid_target),
        NodeKind::Starred(inner) => is_valid_target(inner),
        _ => false,
    }
}

/// `_PyPegen_get_invalid_target` for `for` targets.
fn invalid_target(node: &Node) -> Option<&Node> {
    match &node.kind {
        NodeKind::Tuple(items) | NodeKind::List(items) => items.iter().find_map(invalid_target),
        NodeKind::Starred(inner) => invalid_target(inner),
        NodeKind::Compare(first_in, left) => {
            if *first_in {
                invalid_target(left)
            } else {
                None
            }
        }
        NodeKind::Name(_) => None,
        NodeKind::Other("Attribute" | "Subscript") => None,
        _ => Some(node),
    }
}

fn malformed(node: Option<&Node>) -> PyException {
    match node {
        Some(n) => PyException::value_error(format!(
            "malformed node or string on line {}: <ast.{} object at 0x7f5e3c2a1b40>",
            n.line,
            n.class()
        )),
        None => PyException::value_error("malformed node or string: None"),
    }
}

fn convert(node: &Node) -> Result<PyVal, PyException> {
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

#[cfg(test)]
mod tests {
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

//! The tokenizer (CPython 3.11 `Parser/tokenizer.c`, string input).

use super::errors::{Silent, SynErr, TokErr};
use crate::repr::is_py_printable;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) kind: Tok,
    pub(super) line: usize,
    /// Bracket nesting level after this token.
    pub(super) level: usize,
}

pub(super) struct Tokenizer {
    chars: Vec<char>,
    /// Line number of each char position (1-based).
    lines: Vec<usize>,
    pub(super) pos: usize,
    atbol: bool,
    pub(super) parens: Vec<(char, usize)>,
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
    pub(super) fn new(src: &str) -> Self {
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
    pub(super) fn line_at(&self, i: usize) -> usize {
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

    pub(super) fn next_token(&mut self) -> Result<Token, TokErr> {
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

//! The errors of `literal_eval` and their texts: the SyntaxError family as CPython reports it
//! (`SynErr`, with the `(<unknown>, line N)` suffix), the tokenizer's error tokens and the
//! messages the parser gives them, and the ValueError of a node `literal_eval` refuses.

use super::parse::Node;
use super::tokenize::Tokenizer;
use crate::PyException;

/// A SyntaxError-family exception with its location.
#[derive(Debug, Clone)]
pub(super) struct SynErr {
    pub(super) kind: &'static str,
    pub(super) msg: String,
    pub(super) line: usize,
    /// Raised by the tokenizer while the parser fetched a token: reported as is.
    pub(super) from_tokenizer: bool,
}

impl SynErr {
    pub(super) fn new(kind: &'static str, msg: impl Into<String>, line: usize) -> Self {
        Self {
            kind,
            msg: msg.into(),
            line,
            from_tokenizer: false,
        }
    }

    pub(super) fn into_exception(self) -> PyException {
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
pub(super) enum TokErr {
    Raised(SynErr),
    Silent(Silent),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Silent {
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

pub(super) enum PErr {
    /// No alternative matched (backtrack or report a generic error).
    Fail,
    /// A definite error; aborts the parse.
    Fatal(Box<SynErr>),
}

pub(super) type PResult<T> = Result<T, PErr>;

/// CPython's `_Pypegen_tokenizer_error` for an error token reached by the parser.
pub(super) fn tokenizer_error(tokenizer: &Tokenizer, e: TokErr) -> SynErr {
    let line = tokenizer.line_at(tokenizer.pos);
    let mut err = match e {
        TokErr::Raised(err) => err,
        TokErr::Silent(Silent::Eof) => match tokenizer.parens.last() {
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

pub(super) fn malformed(node: Option<&Node>) -> PyException {
    match node {
        Some(n) => PyException::value_error(format!(
            "malformed node or string on line {}: <ast.{} object at 0x7f5e3c2a1b40>",
            n.line,
            n.class()
        )),
        None => PyException::value_error("malformed node or string: None"),
    }
}

//! The parser: the eval-mode expression grammar of CPython 3.11, its `invalid_*` error rules,
//! and the values of NUMBER and STRING tokens.

use std::collections::HashMap;
use std::rc::Rc;

use super::PyVal;
use super::errors::{PErr, PResult, SynErr, TokErr, tokenizer_error};
use super::tokenize::{Tok, Token, Tokenizer};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum UnOp {
    Plus,
    Minus,
    Not,
    Invert,
}

#[derive(Debug, Clone)]
pub(super) enum NodeKind {
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
pub(super) struct Node {
    pub(super) kind: NodeKind,
    pub(super) line: usize,
}

impl Node {
    fn new(kind: NodeKind, line: usize) -> Self {
        Self { kind, line }
    }

    pub(super) fn class(&self) -> &'static str {
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

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Memo key: rule and start token. Like CPython's, it ignores whether the `invalid_*`
/// rules were on, so a result computed without them is reused with them.
type MemoKey = (u8, usize);

pub(super) struct Parser {
    tokenizer: Tokenizer,
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
    /// Furthest token index the parse looked at.
    pub(super) furthest: usize,
    /// `invalid_*` diagnostic rules off: the first pass, or `*_without_invalid` in the second.
    pub(super) quiet: bool,
    /// Results of the memoized rules (`expression`, `disjunction`), as in CPython.
    pub(super) memo: HashMap<MemoKey, Option<(Node, usize)>>,
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
    pub(super) fn new(src: &str) -> Self {
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
                Err(e) => return Err(PErr::Fatal(Box::new(tokenizer_error(&self.tokenizer, e)))),
            }
        }
        if i > self.furthest {
            self.furthest = i;
        }
        Ok(&self.tokens[i])
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
    pub(super) fn parse_eval(&mut self) -> PResult<Node> {
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
    pub(super) fn full_scan(&mut self, err: SynErr) -> SynErr {
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

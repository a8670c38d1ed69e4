//! pongo2's parser (`parser.go`, `parser_document.go`, `parser_expression.go`, `variable.go`,
//! `filters.go` and the tags' parsers): the same grammar, the same checks in the same order and
//! the same messages and positions.

use super::error::{Kind, RenderError};
use super::filters;
use super::lexer::{Tok, Token};

/// Nesting deeper than this (tags in tags, brackets, `and` chains) is refused as a limit of
/// lxdimg's (pongo2 has none): each level is a few stack frames of a recursive parser.
pub const MAX_NESTING: u32 = 100;

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Ident(String),
    Int(i64),
}

#[derive(Debug, Clone)]
pub(crate) struct VarPart {
    pub part: Part,
    /// `Some(args)` when called: `name(args…)`.
    pub call: Option<Vec<Expr>>,
}

#[derive(Debug, Clone)]
pub(crate) struct FilterCall {
    pub tok: Token,
    pub name: String,
    pub param: Option<Box<Expr>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Var {
        tok: Token,
        parts: Vec<VarPart>,
    },
    Filtered {
        base: Box<Expr>,
        filters: Vec<FilterCall>,
    },
    /// `and`/`or` (`Expression`).
    Logic {
        op: Op,
        a: Box<Expr>,
        b: Box<Expr>,
    },
    /// Comparisons and `in` (`relationalExpression`).
    Rel {
        op: Op,
        tok: Token,
        a: Box<Expr>,
        b: Box<Expr>,
    },
    /// `simpleExpression`: sign and `not` on the first term, then `+`/`-`.
    Simple {
        negate: bool,
        neg_sign: bool,
        pos: Option<Token>,
        a: Box<Expr>,
        b: Option<(Op, Token, Box<Expr>)>,
    },
    /// `*`, `/`, `%` (`term`).
    Term {
        op: Op,
        tok: Token,
        a: Box<Expr>,
        b: Box<Expr>,
    },
    /// `^` (`power`).
    Pow {
        a: Box<Expr>,
        b: Box<Expr>,
    },
}

impl Expr {
    /// `FilterApplied(name)`.
    pub fn filter_applied(&self, name: &str) -> bool {
        match self {
            Expr::Str(_) | Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var { .. } => {
                false
            }
            Expr::Filtered { filters, .. } => filters.iter().any(|f| f.name == name),
            Expr::Logic { a, b, .. }
            | Expr::Rel { a, b, .. }
            | Expr::Term { a, b, .. }
            | Expr::Pow { a, b } => a.filter_applied(name) && b.filter_applied(name),
            Expr::Simple { a, b, .. } => {
                a.filter_applied(name) && b.as_ref().is_none_or(|(_, _, b)| b.filter_applied(name))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Html {
        text: String,
        trim_left: bool,
        trim_right: bool,
    },
    Var(Expr),
    If {
        conds: Vec<Expr>,
        wrappers: Vec<Vec<Node>>,
    },
    For {
        key: String,
        value: Option<String>,
        expr: Expr,
        reversed: bool,
        sorted: bool,
        body: Vec<Node>,
        empty: Option<Vec<Node>>,
    },
    Autoescape {
        on: bool,
        body: Vec<Node>,
    },
    Nothing,
    Set {
        name: String,
        expr: Expr,
    },
    With {
        pairs: Vec<(String, Expr)>,
        body: Vec<Node>,
    },
    Firstof(Vec<Expr>),
    Text(&'static str),
    IfEqual {
        negate: bool,
        a: Expr,
        b: Expr,
        then: Vec<Node>,
        other: Option<Vec<Node>>,
    },
    Filter {
        tok: Token,
        calls: Vec<(String, Option<Expr>)>,
        body: Vec<Node>,
    },
}

/// pongo2 v4's tags. The ones lxdimg renders have parsers below; `extends`, `import`, `include`
/// and `ssi` are banned as newer LXD and Incus ban them; the rest are refused as unsupported.
const TAGS: [&str; 23] = [
    "autoescape",
    "block",
    "comment",
    "cycle",
    "extends",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "ifequal",
    "ifnotequal",
    "import",
    "include",
    "lorem",
    "macro",
    "now",
    "set",
    "spaceless",
    "ssi",
    "templatetag",
    "widthratio",
    "with",
];
pub const BANNED_TAGS: [&str; 4] = ["extends", "import", "include", "ssi"];

pub(crate) struct Parser {
    toks: Vec<Token>,
    idx: usize,
    last: Option<Token>,
    depth: u32,
}

type R<T> = Result<T, RenderError>;

impl Parser {
    pub fn new(toks: Vec<Token>, depth: u32) -> Parser {
        let last = toks.last().cloned();
        Parser {
            toks,
            idx: 0,
            last,
            depth,
        }
    }

    fn get(&self, i: isize) -> Option<&Token> {
        if i < 0 {
            return None;
        }
        self.toks.get(i as usize)
    }
    fn current(&self) -> Option<&Token> {
        self.toks.get(self.idx)
    }
    fn consume(&mut self) {
        self.idx += 1;
    }
    fn remaining(&self) -> usize {
        self.toks.len().saturating_sub(self.idx)
    }
    fn count(&self) -> usize {
        self.toks.len()
    }
    fn peek_n(&self, shift: isize, typ: Tok, val: &str) -> Option<&Token> {
        self.get(self.idx as isize + shift)
            .filter(|t| t.typ == typ && t.val == val)
    }
    fn peek_type_n(&self, shift: isize, typ: Tok) -> Option<&Token> {
        self.get(self.idx as isize + shift).filter(|t| t.typ == typ)
    }
    fn peek(&self, typ: Tok, val: &str) -> bool {
        self.peek_n(0, typ, val).is_some()
    }
    fn peek_one(&self, typ: Tok, vals: &[&str]) -> Option<Token> {
        vals.iter().find_map(|v| self.peek_n(0, typ, v).cloned())
    }
    fn matches(&mut self, typ: Tok, val: &str) -> Option<Token> {
        let t = self.peek_n(0, typ, val).cloned();
        if t.is_some() {
            self.consume();
        }
        t
    }
    fn match_one(&mut self, typ: Tok, vals: &[&str]) -> Option<Token> {
        let t = self.peek_one(typ, vals);
        if t.is_some() {
            self.consume();
        }
        t
    }
    fn match_type(&mut self, typ: Tok) -> Option<Token> {
        let t = self.peek_type_n(0, typ).cloned();
        if t.is_some() {
            self.consume();
        }
        t
    }

    /// `Parser.Error(msg, token)`: the token, else the current one, else this parser's last.
    fn error(&self, msg: impl Into<String>, tok: Option<&Token>) -> RenderError {
        let tok = tok.or(self.current()).or(self.toks.last());
        let e = RenderError::new(Kind::Syntax, "parser", msg);
        match tok {
            Some(t) => e.near(t),
            None => e,
        }
    }

    fn deeper(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let e = RenderError::limit(format!(
                "the template nests deeper than {MAX_NESTING} levels (tags, brackets or and/or chains); lxdimg does not parse it"
            ));
            return Err(match self.current().or(self.last.as_ref()) {
                Some(t) => e.at(t.line, t.col),
                None => e,
            });
        }
        Ok(())
    }

    // --- document ---

    pub fn parse_document(&mut self) -> R<Vec<Node>> {
        let mut nodes = Vec::new();
        while self.remaining() > 0 {
            nodes.push(self.parse_doc_element()?);
        }
        Ok(nodes)
    }

    fn parse_doc_element(&mut self) -> R<Node> {
        let t = self.current().expect("called with tokens left").clone();
        match t.typ {
            Tok::Html => {
                let left = self.peek_type_n(-1, Tok::Symbol).is_some_and(|t| t.trim);
                let right = self.peek_type_n(1, Tok::Symbol).is_some_and(|t| t.trim);
                self.consume();
                Ok(Node::Html {
                    text: t.val,
                    trim_left: left,
                    trim_right: right,
                })
            }
            Tok::Symbol if t.val == "{{" => self.parse_variable_element(),
            Tok::Symbol if t.val == "{%" => {
                self.deeper()?;
                let r = self.parse_tag_element();
                self.depth -= 1;
                r
            }
            _ => Err(self.error(
                "Unexpected token (only HTML/tags/filters in templates allowed)",
                Some(&t),
            )),
        }
    }

    fn parse_variable_element(&mut self) -> R<Node> {
        self.consume();
        let expr = self.parse_expression()?;
        if self.matches(Tok::Symbol, "}}").is_none() {
            return Err(self.error("'}}' expected", None));
        }
        Ok(Node::Var(expr))
    }

    /// `WrapUntilTag`: the nodes up to one of the tags, the tag's name and its arguments.
    fn wrap_until(&mut self, names: &[&str]) -> R<(Vec<Node>, String, Parser)> {
        let mut nodes = Vec::new();
        while self.remaining() > 0 {
            if self.peek(Tok::Symbol, "{%") {
                if let Some(ident) = self.peek_type_n(1, Tok::Identifier).cloned() {
                    if names.contains(&ident.val.as_str()) {
                        self.idx += 2;
                        let mut args = Vec::new();
                        loop {
                            if self.matches(Tok::Symbol, "%}").is_some() {
                                let mut p = Parser::new(args, self.depth);
                                p.last = p.toks.last().cloned();
                                return Ok((nodes, ident.val, p));
                            }
                            let Some(t) = self.current().cloned() else {
                                return Err(self.error("Unexpected EOF.", self.last.as_ref()));
                            };
                            self.consume();
                            args.push(t);
                        }
                    }
                }
            }
            nodes.push(self.parse_doc_element()?);
        }
        Err(self.error(
            format!("Unexpected EOF, expected tag {}.", names.join(" or ")),
            self.last.as_ref(),
        ))
    }

    /// `SkipUntilTag` (the `comment` tag).
    fn skip_until(&mut self, names: &[&str]) -> R<()> {
        while self.remaining() > 0 {
            if self.peek(Tok::Symbol, "{%") {
                if let Some(ident) = self.peek_type_n(1, Tok::Identifier).cloned() {
                    if names.contains(&ident.val.as_str()) {
                        self.idx += 2;
                        if self.matches(Tok::Symbol, "%}").is_some() {
                            return Ok(());
                        }
                        // pongo2 loops here for ever: it tries to match `%}` without consuming.
                        return Err(self.error(
                            format!("pongo2 never finishes parsing this template: '{{% {} %}}' followed by anything but '%}}' makes its parser loop for ever (LXD hangs applying it)", ident.val),
                            Some(&ident),
                        ));
                    }
                }
            }
            let t = self.current().cloned();
            self.consume();
            if t.is_none() {
                return Err(self.error("Unexpected EOF.", self.last.as_ref()));
            }
        }
        Err(self.error(
            format!("Unexpected EOF, expected tag {}.", names.join(" or ")),
            self.last.as_ref(),
        ))
    }

    fn parse_tag_element(&mut self) -> R<Node> {
        self.consume();
        let Some(name) = self.match_type(Tok::Identifier) else {
            return Err(self.error("Tag name must be an identifier.", None));
        };
        if !TAGS.contains(&name.val.as_str()) {
            return Err(self.error(
                format!(
                    "Tag '{}' not found (or beginning tag not provided)",
                    name.val
                ),
                Some(&name),
            ));
        }
        if BANNED_TAGS.contains(&name.val.as_str()) {
            return Err(self.error(
                format!(
                    "Usage of tag '{}' is not allowed (sandbox restriction active).",
                    name.val
                ),
                Some(&name),
            ));
        }
        let mut args = Vec::new();
        while !self.peek(Tok::Symbol, "%}") && self.remaining() > 0 {
            args.push(self.current().expect("remaining").clone());
            self.consume();
        }
        if self.remaining() == 0 {
            return Err(self.error(
                "Unexpectedly reached EOF, no tag end found.",
                self.last.as_ref(),
            ));
        }
        self.matches(Tok::Symbol, "%}");
        let mut a = Parser::new(args, self.depth);
        if a.toks.is_empty() {
            a.last = Some(name.clone());
        }
        match name.val.as_str() {
            "if" => self.tag_if(a),
            "for" => self.tag_for(a),
            "autoescape" => self.tag_autoescape(a),
            "comment" => {
                self.skip_until(&["endcomment"])?;
                if a.count() != 0 {
                    return Err(a.error("Tag 'comment' does not take any argument.", None));
                }
                Ok(Node::Nothing)
            }
            "set" => {
                let Some(t) = a.match_type(Tok::Identifier) else {
                    return Err(a.error("Expected an identifier.", None));
                };
                if a.matches(Tok::Symbol, "=").is_none() {
                    return Err(a.error("Expected '='.", None));
                }
                let expr = a.parse_expression()?;
                if a.remaining() > 0 {
                    return Err(a.error("Malformed 'set'-tag arguments.", None));
                }
                Ok(Node::Set { name: t.val, expr })
            }
            "with" => self.tag_with(a),
            "firstof" => {
                let mut args = Vec::new();
                while a.remaining() > 0 {
                    args.push(a.parse_expression()?);
                }
                Ok(Node::Firstof(args))
            }
            "templatetag" => {
                let Some(t) = a.match_type(Tok::Identifier) else {
                    return Err(a.error("Identifier expected.", None));
                };
                let text = match t.val.as_str() {
                    "openblock" => "{%",
                    "closeblock" => "%}",
                    "openvariable" => "{{",
                    "closevariable" => "}}",
                    "openbrace" => "{",
                    "closebrace" => "}",
                    "opencomment" => "{#",
                    "closecomment" => "#}",
                    _ => return Err(a.error("Argument not found", Some(&t))),
                };
                if a.remaining() > 0 {
                    return Err(a.error("Malformed templatetag-tag argument.", None));
                }
                Ok(Node::Text(text))
            }
            "ifequal" | "ifnotequal" => {
                let negate = name.val == "ifnotequal";
                let x = a.parse_expression()?;
                let y = a.parse_expression()?;
                if a.remaining() > 0 {
                    return Err(a.error(
                        format!("{} only takes 2 arguments.", name.val),
                        None,
                    ));
                }
                let end = if negate { "endifnotequal" } else { "endifequal" };
                let (then, tag, endargs) = self.wrap_until(&["else", end])?;
                if endargs.count() > 0 {
                    return Err(endargs.error("Arguments not allowed here.", None));
                }
                let mut other = None;
                if tag == "else" {
                    let (w, _, endargs) = self.wrap_until(&[end])?;
                    if endargs.count() > 0 {
                        return Err(endargs.error("Arguments not allowed here.", None));
                    }
                    other = Some(w);
                }
                Ok(Node::IfEqual { negate, a: x, b: y, then, other })
            }
            "filter" => {
                let (body, _, _) = self.wrap_until(&["endfilter"])?;
                let mut calls = Vec::new();
                while a.remaining() > 0 {
                    let Some(n) = a.match_type(Tok::Identifier) else {
                        return Err(a.error("Expected a filter name (identifier).", None));
                    };
                    let mut param = None;
                    if a.match_one(Tok::Symbol, &[":"]).is_some() {
                        param = Some(a.parse_variable_or_literal()?);
                    }
                    calls.push((n.val, param));
                    if a.match_one(Tok::Symbol, &["|"]).is_none() {
                        break;
                    }
                }
                if a.remaining() > 0 {
                    return Err(a.error("Malformed filter-tag arguments.", None));
                }
                Ok(Node::Filter { tok: name, calls, body })
            }
            other => Err(RenderError::unsupported(format!(
                "the pongo2 tag '{other}' is not rendered by lxdimg (templates LXD applies rarely use it); the rest of the template is not checked"
            ))
            .near(&name)),
        }
    }

    fn tag_if(&mut self, mut a: Parser) -> R<Node> {
        let mut conds = vec![a.parse_expression()?];
        if a.remaining() > 0 {
            return Err(a.error("If-condition is malformed.", None));
        }
        let mut wrappers = Vec::new();
        loop {
            let (w, tag, mut args) = self.wrap_until(&["elif", "else", "endif"])?;
            wrappers.push(w);
            if tag == "elif" {
                conds.push(args.parse_expression()?);
                if args.remaining() > 0 {
                    return Err(args.error("Elif-condition is malformed.", None));
                }
            } else if args.count() > 0 {
                return Err(args.error("Arguments not allowed here.", None));
            }
            if tag == "endif" {
                break;
            }
        }
        Ok(Node::If { conds, wrappers })
    }

    fn tag_for(&mut self, mut a: Parser) -> R<Node> {
        let Some(key) = a.match_type(Tok::Identifier) else {
            return Err(a.error(
                "Expected an key identifier as first argument for 'for'-tag",
                None,
            ));
        };
        let mut value = None;
        if a.matches(Tok::Symbol, ",").is_some() {
            match a.match_type(Tok::Identifier) {
                Some(v) => value = Some(v.val),
                None => return Err(a.error("Value name must be an identifier.", None)),
            }
        }
        if a.matches(Tok::Keyword, "in").is_none() {
            return Err(a.error("Expected keyword 'in'.", None));
        }
        let expr = a.parse_expression()?;
        let reversed = a.match_one(Tok::Identifier, &["reversed"]).is_some();
        let sorted = a.match_one(Tok::Identifier, &["sorted"]).is_some();
        if a.remaining() > 0 {
            return Err(a.error("Malformed for-loop arguments.", None));
        }
        let (body, tag, endargs) = self.wrap_until(&["empty", "endfor"])?;
        if endargs.count() > 0 {
            return Err(endargs.error("Arguments not allowed here.", None));
        }
        let mut empty = None;
        if tag == "empty" {
            let (w, _, endargs) = self.wrap_until(&["endfor"])?;
            if endargs.count() > 0 {
                return Err(endargs.error("Arguments not allowed here.", None));
            }
            empty = Some(w);
        }
        Ok(Node::For {
            key: key.val,
            value,
            expr,
            reversed,
            sorted,
            body,
            empty,
        })
    }

    fn tag_autoescape(&mut self, mut a: Parser) -> R<Node> {
        let (body, _, _) = self.wrap_until(&["endautoescape"])?;
        let Some(mode) = a.match_type(Tok::Identifier) else {
            return Err(a.error("A mode is required for autoescape-tag.", None));
        };
        let on = match mode.val.as_str() {
            "on" => true,
            "off" => false,
            _ => return Err(a.error("Only 'on' or 'off' is valid as an autoescape-mode.", None)),
        };
        if a.remaining() > 0 {
            return Err(a.error("Malformed autoescape-tag arguments.", None));
        }
        Ok(Node::Autoescape { on, body })
    }

    fn tag_with(&mut self, mut a: Parser) -> R<Node> {
        if a.count() == 0 {
            return Err(a.error("Tag 'with' requires at least one argument.", None));
        }
        let (body, _, endargs) = self.wrap_until(&["endwith"])?;
        if endargs.count() > 0 {
            return Err(endargs.error("Arguments not allowed here.", None));
        }
        let old_style = (0..a.count()).any(|i| a.peek_n(i as isize, Tok::Keyword, "as").is_some());
        let mut pairs: Vec<(String, Expr)> = Vec::new();
        while a.remaining() > 0 {
            let (k, v) = if old_style {
                let v = a.parse_expression()?;
                if a.matches(Tok::Keyword, "as").is_none() {
                    return Err(a.error("Expected 'as' keyword.", None));
                }
                let Some(k) = a.match_type(Tok::Identifier) else {
                    return Err(a.error("Expected an identifier", None));
                };
                (k.val, v)
            } else {
                let Some(k) = a.match_type(Tok::Identifier) else {
                    return Err(a.error("Expected an identifier", None));
                };
                if a.matches(Tok::Symbol, "=").is_none() {
                    return Err(a.error("Expected '='.", None));
                }
                (k.val, a.parse_expression()?)
            };
            // A Go map: a later pair of the same name replaces the earlier one.
            pairs.retain(|(n, _)| *n != k);
            pairs.push((k, v));
        }
        Ok(Node::With { pairs, body })
    }

    // --- expressions ---

    pub fn parse_expression(&mut self) -> R<Expr> {
        self.deeper()?;
        let r = self.parse_expression_inner();
        self.depth -= 1;
        r
    }

    fn parse_expression_inner(&mut self) -> R<Expr> {
        let a = self.parse_relational()?;
        if self.peek_one(Tok::Symbol, &["&&", "||"]).is_some()
            || self.peek_one(Tok::Keyword, &["and", "or"]).is_some()
        {
            let tok = self.current().expect("peeked").clone();
            self.consume();
            let b = self.parse_expression()?;
            let op = if tok.val == "and" || tok.val == "&&" {
                Op::And
            } else {
                Op::Or
            };
            return Ok(Expr::Logic {
                op,
                a: Box::new(a),
                b: Box::new(b),
            });
        }
        Ok(a)
    }

    fn parse_relational(&mut self) -> R<Expr> {
        let a = self.parse_simple()?;
        if let Some(t) = self.match_one(Tok::Symbol, &["==", "<=", ">=", "!=", "<>", ">", "<"]) {
            self.deeper()?;
            let b = self.parse_relational();
            self.depth -= 1;
            let op = match t.val.as_str() {
                "==" => Op::Eq,
                "<=" => Op::Le,
                ">=" => Op::Ge,
                "!=" | "<>" => Op::Ne,
                ">" => Op::Gt,
                _ => Op::Lt,
            };
            return Ok(Expr::Rel {
                op,
                tok: t,
                a: Box::new(a),
                b: Box::new(b?),
            });
        } else if let Some(t) = self.match_one(Tok::Keyword, &["in"]) {
            let b = self.parse_simple()?;
            return Ok(Expr::Rel {
                op: Op::In,
                tok: t,
                a: Box::new(a),
                b: Box::new(b),
            });
        }
        Ok(a)
    }

    fn parse_simple(&mut self) -> R<Expr> {
        let mut neg_sign = false;
        if let Some(sign) = self.match_one(Tok::Symbol, &["+", "-"]) {
            neg_sign = sign.val == "-";
        }
        let negate =
            self.matches(Tok::Symbol, "!").is_some() || self.matches(Tok::Keyword, "not").is_some();
        // `GetPositionToken()` of the first term: its first variable or literal.
        let pos = self.toks[self.idx.min(self.toks.len())..]
            .iter()
            .find(|t| {
                !(t.typ == Tok::Symbol && matches!(t.val.as_str(), "(" | "+" | "-" | "!")
                    || t.typ == Tok::Keyword && t.val == "not")
            })
            .cloned();
        let t1 = self.parse_term()?;
        let mut expr = Expr::Simple {
            negate,
            neg_sign,
            pos,
            a: Box::new(t1),
            b: None,
        };
        let mut has_op = false;
        while self.peek_one(Tok::Symbol, &["+", "-"]).is_some() {
            if has_op {
                expr = Expr::Simple {
                    negate: false,
                    neg_sign: false,
                    pos: None,
                    a: Box::new(expr),
                    b: None,
                };
            }
            let op = self.current().expect("peeked").clone();
            self.consume();
            let t2 = self.parse_term()?;
            if let Expr::Simple { b, .. } = &mut expr {
                *b = Some((
                    if op.val == "+" { Op::Add } else { Op::Sub },
                    op,
                    Box::new(t2),
                ));
            }
            has_op = true;
        }
        match expr {
            Expr::Simple {
                negate: false,
                neg_sign: false,
                a,
                b: None,
                ..
            } => Ok(*a),
            e => Ok(e),
        }
    }

    fn parse_term(&mut self) -> R<Expr> {
        let mut expr = self.parse_power()?;
        while let Some(op) = self.peek_one(Tok::Symbol, &["*", "/", "%"]) {
            self.consume();
            let b = self.parse_power()?;
            let o = match op.val.as_str() {
                "*" => Op::Mul,
                "/" => Op::Div,
                _ => Op::Mod,
            };
            expr = Expr::Term {
                op: o,
                tok: op,
                a: Box::new(expr),
                b: Box::new(b),
            };
        }
        Ok(expr)
    }

    fn parse_power(&mut self) -> R<Expr> {
        let a = self.parse_factor()?;
        if self.matches(Tok::Symbol, "^").is_some() {
            self.deeper()?;
            let b = self.parse_power();
            self.depth -= 1;
            return Ok(Expr::Pow {
                a: Box::new(a),
                b: Box::new(b?),
            });
        }
        Ok(a)
    }

    fn parse_factor(&mut self) -> R<Expr> {
        if self.matches(Tok::Symbol, "(").is_some() {
            let e = self.parse_expression()?;
            if self.matches(Tok::Symbol, ")").is_none() {
                return Err(self.error("Closing bracket expected after expression", None));
            }
            return Ok(e);
        }
        self.parse_variable_or_literal_with_filter()
    }

    fn parse_variable_or_literal_with_filter(&mut self) -> R<Expr> {
        let base = self.parse_variable_or_literal()?;
        let mut filters = Vec::new();
        while self.matches(Tok::Symbol, "|").is_some() {
            filters.push(self.parse_filter()?);
        }
        // pongo2 wraps every variable or literal in a filtered node; without filters it behaves
        // as the bare one.
        if filters.is_empty() {
            return Ok(base);
        }
        Ok(Expr::Filtered {
            base: Box::new(base),
            filters,
        })
    }

    fn parse_filter(&mut self) -> R<FilterCall> {
        let Some(ident) = self.match_type(Tok::Identifier) else {
            return Err(self.error("Filter name must be an identifier.", None));
        };
        if !filters::exists(&ident.val) {
            return Err(self.error(
                format!("Filter '{}' does not exist.", ident.val),
                Some(&ident),
            ));
        }
        let mut param = None;
        if self.matches(Tok::Symbol, ":").is_some() {
            if self.peek(Tok::Symbol, "}}") {
                return Err(self.error("Filter parameter required after ':'.", None));
            }
            param = Some(Box::new(self.parse_variable_or_literal()?));
        }
        Ok(FilterCall {
            name: ident.val.clone(),
            tok: ident,
            param,
        })
    }

    fn atoi(&self, t: &Token) -> R<i64> {
        t.val.parse::<i64>().map_err(|_| {
            self.error(
                format!("strconv.Atoi: parsing \"{}\": value out of range", t.val),
                Some(t),
            )
        })
    }

    pub(crate) fn parse_variable_or_literal(&mut self) -> R<Expr> {
        let Some(t) = self.current().cloned() else {
            return Err(self.error(
                "Unexpected EOF, expected a number, string, keyword or identifier.",
                self.last.as_ref(),
            ));
        };
        match t.typ {
            Tok::Number => {
                self.consume();
                if self.matches(Tok::Symbol, ".").is_some() {
                    let Some(t2) = self.match_type(Tok::Number) else {
                        return Err(self.error("Expected a number after the '.'.", None));
                    };
                    let text = format!("{}.{}", t.val, t2.val);
                    return match text.parse::<f64>() {
                        Ok(f) if f.is_finite() => Ok(Expr::Float(f)),
                        _ => Err(self.error(
                            format!("strconv.ParseFloat: parsing \"{text}\": value out of range"),
                            Some(&t),
                        )),
                    };
                }
                return Ok(Expr::Int(self.atoi(&t)?));
            }
            Tok::String => {
                self.consume();
                return Ok(Expr::Str(t.val));
            }
            Tok::Keyword => {
                self.consume();
                return match t.val.as_str() {
                    "true" => Ok(Expr::Bool(true)),
                    "false" => Ok(Expr::Bool(false)),
                    _ => Err(self.error("This keyword is not allowed here.", None)),
                };
            }
            _ => {}
        }
        if t.typ != Tok::Identifier {
            return Err(self.error(
                "Expected either a number, string, keyword or identifier.",
                Some(&t),
            ));
        }
        let mut parts = vec![VarPart {
            part: Part::Ident(t.val.clone()),
            call: None,
        }];
        self.consume();
        while self.remaining() > 0 {
            if self.matches(Tok::Symbol, ".").is_some() {
                let Some(t2) = self.current().cloned() else {
                    return Err(self.error(
                        "Unexpected EOF, expected either IDENTIFIER or NUMBER after DOT.",
                        self.last.as_ref(),
                    ));
                };
                match t2.typ {
                    Tok::Identifier => parts.push(VarPart {
                        part: Part::Ident(t2.val.clone()),
                        call: None,
                    }),
                    Tok::Number => parts.push(VarPart {
                        part: Part::Int(self.atoi(&t2)?),
                        call: None,
                    }),
                    _ => {
                        return Err(self.error(
                            "This token is not allowed within a variable name.",
                            Some(&t2),
                        ))
                    }
                }
                self.consume();
                continue;
            } else if self.matches(Tok::Symbol, "(").is_some() {
                let mut args = Vec::new();
                loop {
                    if self.remaining() == 0 {
                        return Err(self.error(
                            "Unexpected EOF, expected function call argument list.",
                            self.last.as_ref(),
                        ));
                    }
                    if !self.peek(Tok::Symbol, ")") {
                        args.push(self.parse_expression()?);
                        if self.matches(Tok::Symbol, ")").is_some() {
                            break;
                        }
                        if self.matches(Tok::Symbol, ",").is_none() {
                            return Err(self
                                .error("Missing comma or closing bracket after argument.", None));
                        }
                    } else {
                        self.consume();
                        break;
                    }
                }
                parts.last_mut().expect("a part").call = Some(args);
                continue;
            }
            break;
        }
        Ok(Expr::Var { tok: t, parts })
    }
}

//! pongo2's lexer (`lexer.go` of pongo2 v4), token for token: the same token kinds, values,
//! byte-based columns and errors, so that positions and messages match what LXD prints.

use super::error::{Kind, RenderError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Html,
    Keyword,
    Identifier,
    String,
    Number,
    Symbol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub typ: Tok,
    pub val: String,
    pub line: u32,
    pub col: u32,
    pub trim: bool,
}

const SYMBOLS: [&str; 31] = [
    "{{-", "-}}", "{%-", "-%}", "==", ">=", "<=", "&&", "||", "{{", "}}", "{%", "%}", "!=", "<>",
    "(", ")", "+", "-", "*", "<", ">", "/", "^", ",", ".", "!", "|", ":", "=", "%",
];
const KEYWORDS: [&str; 8] = ["in", "and", "or", "not", "true", "false", "as", "export"];

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\n' | '\r' | '\t')
}
fn is_ident(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_ident_digit(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    input: &'a str,
    start: usize,
    pos: usize,
    width: usize,
    tokens: Vec<Token>,
    error: Option<(String, u32, u32)>,
    startline: u32,
    startcol: u32,
    line: u32,
    col: u32,
    in_verbatim: bool,
}

/// Go's `EOF` rune in the lexer is the constant 1 (`TokenError = iota; EOF`): a U+0001 in the
/// input is taken for the end. `None` here is the end; a U+0001 is reported as `Some('\u{1}')`
/// and the callers treat it as the end where pongo2 would.
impl<'a> Lexer<'a> {
    fn value(&self) -> &'a str {
        &self.input[self.start..self.pos]
    }

    fn emit(&mut self, typ: Tok) {
        let mut val = self.value().to_string();
        let mut trim = false;
        if typ == Tok::String {
            val = val.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        if typ == Tok::Symbol && val.len() == 3 && (val.ends_with('-') || val.starts_with('-')) {
            trim = true;
            val = val.replace('-', "");
        }
        self.tokens.push(Token {
            typ,
            val,
            line: self.startline,
            col: self.startcol,
            trim,
        });
        self.start = self.pos;
        self.startline = self.line;
        self.startcol = self.col;
    }

    /// The next rune; Go's `EOF` (rune 1) at the end. Invalid UTF-8 cannot occur (`&str`).
    fn next(&mut self) -> char {
        match self.input[self.pos..].chars().next() {
            None => {
                self.width = 0;
                '\u{1}'
            }
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                self.col += self.width as u32;
                c
            }
        }
    }

    fn backup(&mut self) {
        self.pos -= self.width;
        self.col -= self.width as u32;
    }

    fn peek(&mut self) -> char {
        let c = self.next();
        self.backup();
        c
    }

    fn ignore(&mut self) {
        self.start = self.pos;
        self.startline = self.line;
        self.startcol = self.col;
    }

    fn accept(&mut self, f: impl Fn(char) -> bool) -> bool {
        // Go's `strings.IndexRune(what, next())`: the EOF rune 1 is in none of the sets.
        let c = self.next();
        if c != '\u{1}' && f(c) {
            return true;
        }
        self.backup();
        false
    }

    fn accept_run(&mut self, f: impl Fn(char) -> bool) {
        while self.accept(&f) {}
    }

    fn errorf(&mut self, msg: impl Into<String>) {
        self.error = Some((msg.into(), self.startline, self.startcol));
        self.startline = self.line;
        self.startcol = self.col;
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn run(&mut self) {
        loop {
            if self.in_verbatim {
                if self.rest().starts_with("{% endverbatim %}") {
                    if self.pos > self.start {
                        self.emit(Tok::Html);
                    }
                    let w = "{% endverbatim %}".len();
                    self.pos += w;
                    self.col += w as u32;
                    self.ignore();
                    self.in_verbatim = false;
                }
            } else if self.rest().starts_with("{% verbatim %}") {
                if self.pos > self.start {
                    self.emit(Tok::Html);
                }
                self.in_verbatim = true;
                let w = "{% verbatim %}".len();
                self.pos += w;
                self.col += w as u32;
                self.ignore();
            }
            if !self.in_verbatim {
                if self.rest().starts_with("{#") {
                    if self.pos > self.start {
                        self.emit(Tok::Html);
                    }
                    self.pos += 2;
                    self.col += 2;
                    loop {
                        match self.peek() {
                            '\u{1}' => {
                                self.errorf("Single-line comment not closed.");
                                return;
                            }
                            '\n' => {
                                self.errorf("Newline not permitted in a single-line comment.");
                                return;
                            }
                            _ => {}
                        }
                        if self.rest().starts_with("#}") {
                            self.pos += 2;
                            self.col += 2;
                            break;
                        }
                        self.next();
                    }
                    self.ignore();
                    continue;
                }
                if self.rest().starts_with("{{") || self.rest().starts_with("{%") {
                    if self.pos > self.start {
                        self.emit(Tok::Html);
                    }
                    self.tokenize();
                    if self.error.is_some() {
                        return;
                    }
                    continue;
                }
            }
            if self.peek() == '\n' {
                self.line += 1;
                self.col = 0;
            }
            if self.next() == '\u{1}' {
                break;
            }
        }
        if self.pos > self.start {
            self.emit(Tok::Html);
        }
        if self.in_verbatim {
            self.errorf("verbatim-tag not closed, got EOF.");
        }
    }

    fn tokenize(&mut self) {
        #[derive(Clone, Copy)]
        enum State {
            Code,
            Identifier,
            Number,
            String,
        }
        let mut state = Some(State::Code);
        while let Some(s) = state {
            state = match s {
                State::Code => self.state_code(),
                State::Identifier => self.state_identifier(),
                State::Number => self.state_number(),
                State::String => self.state_string(),
            }
            .map(|n| match n {
                Next::Code => State::Code,
                Next::Identifier => State::Identifier,
                Next::Number => State::Number,
                Next::String => State::String,
            });
        }
    }

    fn state_code(&mut self) -> Option<Next> {
        'outer: loop {
            if self.accept(is_space) {
                if self.value() == "\n" {
                    self.errorf("Newline not allowed within tag/variable.");
                    return None;
                }
                self.ignore();
                continue;
            }
            if self.accept(is_ident) {
                return Some(Next::Identifier);
            }
            if self.accept(|c| c.is_ascii_digit()) {
                return Some(Next::Number);
            }
            if self.accept(|c| c == '"' || c == '\'') {
                return Some(Next::String);
            }
            for sym in SYMBOLS {
                if self.input[self.start..].starts_with(sym) {
                    self.pos += sym.len();
                    self.col += (self.pos - self.start) as u32;
                    self.emit(Tok::Symbol);
                    if matches!(sym, "%}" | "-%}" | "}}" | "-}}") {
                        return None;
                    }
                    continue 'outer;
                }
            }
            break;
        }
        None
    }

    fn state_identifier(&mut self) -> Option<Next> {
        self.accept_run(is_ident);
        self.accept_run(is_ident_digit);
        if KEYWORDS.contains(&self.value()) {
            self.emit(Tok::Keyword);
        } else {
            self.emit(Tok::Identifier);
        }
        Some(Next::Code)
    }

    fn state_number(&mut self) -> Option<Next> {
        self.accept_run(|c| c.is_ascii_digit());
        if self.accept(is_ident_digit) {
            return self.state_identifier();
        }
        self.emit(Tok::Number);
        Some(Next::Code)
    }

    fn state_string(&mut self) -> Option<Next> {
        let quote = self.value().chars().next().expect("the quote");
        self.ignore();
        self.startcol -= 1;
        while !self.accept(|c| c == quote) {
            match self.next() {
                '\\' => {
                    let p = self.peek();
                    if p == '"' || p == '\\' {
                        self.next();
                    } else {
                        // Go's %c of the EOF rune 1 is U+0001 itself.
                        self.errorf(format!("Unknown escape sequence: \\{p}"));
                        return None;
                    }
                }
                '\u{1}' => {
                    self.errorf("Unexpected EOF, string not closed.");
                    return None;
                }
                '\n' => {
                    self.errorf("Newline in string is not allowed.");
                    return None;
                }
                _ => {}
            }
        }
        self.backup();
        self.emit(Tok::String);
        self.next();
        self.ignore();
        Some(Next::Code)
    }
}

#[derive(Clone, Copy)]
enum Next {
    Code,
    Identifier,
    Number,
    String,
}

/// The tokens of a template, or pongo2's lexer error.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, RenderError> {
    let mut l = Lexer {
        input,
        start: 0,
        pos: 0,
        width: 0,
        tokens: Vec::new(),
        error: None,
        startline: 1,
        startcol: 1,
        line: 1,
        col: 1,
        in_verbatim: false,
    };
    l.run();
    match l.error {
        Some((msg, line, col)) => Err(RenderError::new(Kind::Syntax, "lexer", msg).at(line, col)),
        None => Ok(l.tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_positions() {
        let t = lex("a\n {{- x.y|default:\"q\\\"\" -}}").unwrap();
        let v: Vec<(&str, u32, u32)> = t.iter().map(|t| (t.val.as_str(), t.line, t.col)).collect();
        assert_eq!(
            v,
            [
                ("a\n ", 1, 1),
                ("{{", 2, 2),
                ("x", 2, 6),
                (".", 2, 7),
                ("y", 2, 8),
                ("|", 2, 9),
                ("default", 2, 10),
                (":", 2, 17),
                ("q\"", 2, 18),
                ("}}", 2, 24),
            ]
        );
        assert!(t[1].trim && t[9].trim);
        let e = lex("ok\n{{ a\n }}").unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.line, e.col),
            ("Newline not allowed within tag/variable.", 2, 5)
        );
    }
}

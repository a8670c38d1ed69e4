//! Template errors, printed as pongo2 prints them (`[Error (where: parser) in <string> | Line 1
//! Col 4 near 'foo'] …`), with the kind lxdimg needs to tell a real syntax error from its own
//! limits.

use serde::Serialize;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// pongo2 refuses the template when it parses it (LXD: `Failed to render template: …` at the
    /// instance's first start).
    Syntax,
    /// pongo2 parses it but fails while rendering it with this context.
    Execution,
    /// A pongo2 tag or filter lxdimg does not render (`now`, `random`, …): no verdict.
    Unsupported,
    /// One of lxdimg's bounds (output size, steps, nesting): no verdict.
    Limit,
}

/// A template error: pongo2's own text and position, and the position in the template file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderError {
    pub kind: Kind,
    /// pongo2's `where:` (`lexer`, `parser`, `execution`, `filter:yesno`), or `lxdimg`.
    pub sender: String,
    /// Line and column (1-based; columns count bytes, as pongo2's do) in the text pongo2 was
    /// given; 0 when pongo2 names no position.
    pub line: u32,
    pub col: u32,
    /// The token pongo2 names (`near '…'`).
    pub near: Option<String>,
    /// Whether pongo2's text names a file (`in <string>`).
    #[serde(skip)]
    pub(crate) named: bool,
    pub message: String,
}

impl RenderError {
    pub(crate) fn new(kind: Kind, sender: &str, message: impl Into<String>) -> RenderError {
        RenderError {
            kind,
            sender: sender.to_string(),
            line: 0,
            col: 0,
            near: None,
            named: true,
            message: message.into(),
        }
    }
    pub(crate) fn at(mut self, line: u32, col: u32) -> RenderError {
        self.line = line;
        self.col = col;
        self
    }
    pub(crate) fn near(mut self, tok: &super::lexer::Token) -> RenderError {
        self.line = tok.line;
        self.col = tok.col;
        self.near = Some(tok.val.clone());
        self
    }
    pub(crate) fn limit(message: impl Into<String>) -> RenderError {
        RenderError::new(Kind::Limit, "lxdimg", message)
    }
    pub(crate) fn unsupported(message: impl Into<String>) -> RenderError {
        RenderError::new(Kind::Unsupported, "lxdimg", message)
    }

    /// The text pongo2's `Error()` gives (what LXD prints after `Failed to render template: `).
    /// lxdimg's own limits and gaps are said in lxdimg's words.
    pub fn pongo2_text(&self) -> String {
        if matches!(self.kind, Kind::Unsupported | Kind::Limit) {
            return format!("lxdimg: {}", self.message);
        }
        let mut s = String::from("[Error");
        if !self.sender.is_empty() {
            s.push_str(&format!(" (where: {})", self.sender));
        }
        if self.named {
            s.push_str(" in <string>");
        }
        if self.line > 0 {
            s.push_str(&format!(" | Line {} Col {}", self.line, self.col));
            if let Some(n) = &self.near {
                s.push_str(&format!(" near '{n}'"));
            }
        }
        s.push_str("] ");
        s.push_str(&self.message);
        s
    }
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pongo2_text())
    }
}

impl std::error::Error for RenderError {}

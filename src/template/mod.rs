//! LXD's image templates: the template sets lxdimg writes ([`sets`]) and a renderer of pongo2's
//! syntax exactly as LXD applies a template ([`render_lxd`], [`check_lxd`]).
//!
//! LXD renders `templates/<file>` with pongo2 (v4 in LXD 5.0 and later, v6 in Incus: the same
//! grammar) after wrapping the text in `{% autoescape off %}…{% endautoescape %}`, with the
//! variables `trigger`, `path`, `container`/`instance`, `config`, `devices`, `properties` and the
//! function `config_get(key, default)`. This module ports pongo2's lexer, parser and evaluator for
//! that context: the same tokens, grammar, messages and positions (checked against pongo2 itself
//! by `tests/render.rs` when Go is installed), pongo2's filters, and the tags `if`/`elif`/`else`,
//! `for`/`empty`, `autoescape`, `comment`, `{# #}`, `verbatim`, `set`, `with`, `firstof`,
//! `filter`, `ifequal`/`ifnotequal`, `templatetag`. `extends`, `import`, `include` and `ssi` are
//! refused as newer LXD and Incus refuse them. Sans-IO and bounded: see [`exec::MAX_OUTPUT`],
//! [`exec::MAX_STEPS`], [`exec::MAX_WORK`], [`parser::MAX_NESTING`].
//!
//! ```
//! use lxdimg::template::{render_lxd, RenderContext};
//! let ctx = RenderContext { name: "web1".into(), ..RenderContext::default() };
//! assert_eq!(render_lxd("{{ container.name|upper }}\n", &ctx).unwrap().output, "WEB1\n");
//! let e = render_lxd("{% include \"x\" %}", &ctx).unwrap_err();
//! assert_eq!((e.line, e.col), (1, 4));
//! ```

mod error;
mod exec;
mod filters;
mod lexer;
mod parser;
pub mod sets;
mod value;

pub use error::{Kind, RenderError};
pub use exec::{MAX_OUTPUT, MAX_STEPS, MAX_WORK};
pub use parser::{BANNED_TAGS, MAX_NESTING};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use value::{s, V};

/// The pongo2 version whose behaviour is reproduced (`{{ pongo2.version }}`).
pub const PONGO2_VERSION: &str = "4.0.2";

/// What LXD puts before a template's text (and [`LXD_SUFFIX`] after it) before pongo2 reads it.
pub const LXD_PREFIX: &str = "{% autoescape off %}";
pub const LXD_SUFFIX: &str = "{% endautoescape %}";

/// The instance a template is rendered for, and the rule's own values: what LXD passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenderContext {
    /// `container.name` / `instance.name`.
    pub name: String,
    /// `container.type`: `container` or `virtual-machine`.
    #[serde(rename = "type")]
    pub instance_type: String,
    /// `container.architecture` (LXD's name, `x86_64`, …).
    pub architecture: String,
    /// `container.ephemeral`.
    pub ephemeral: bool,
    /// The instance's expanded config (`config`, `config_get`); `container.privileged` is
    /// `security.privileged` read as LXD reads a boolean.
    pub config: BTreeMap<String, String>,
    /// The instance's expanded devices (`devices`).
    pub devices: BTreeMap<String, BTreeMap<String, String>>,
    /// The rule's `properties` (`properties`).
    pub properties: BTreeMap<String, String>,
    /// `trigger`: `create`, `copy`, `start` or `rename`.
    pub trigger: String,
    /// `path`: the rule's target path as written in `metadata.yaml`.
    pub path: String,
}

impl Default for RenderContext {
    fn default() -> RenderContext {
        RenderContext {
            name: "c1".into(),
            instance_type: "container".into(),
            architecture: "x86_64".into(),
            ephemeral: false,
            config: BTreeMap::new(),
            devices: BTreeMap::new(),
            properties: BTreeMap::new(),
            trigger: "create".into(),
            path: String::new(),
        }
    }
}

/// The config keys LXD gives an instance created from an image: each image property as
/// `image.<key>`, and the fingerprint as `volatile.base_image`.
pub fn image_config(
    properties: &BTreeMap<String, String>,
    fingerprint: Option<&str>,
) -> BTreeMap<String, String> {
    let mut config: BTreeMap<String, String> = properties
        .iter()
        .map(|(k, v)| (format!("image.{k}"), v.clone()))
        .collect();
    if let Some(fp) = fingerprint {
        config.insert("volatile.base_image".into(), fp.to_string());
    }
    config
}

/// `shared.IsTrue`.
fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

impl RenderContext {
    /// The `container`/`instance` map LXD builds (`privileged` for containers only).
    pub fn instance_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("name".into(), self.name.clone());
        m.insert("type".into(), self.instance_type.clone());
        m.insert("architecture".into(), self.architecture.clone());
        m.insert("ephemeral".into(), self.ephemeral.to_string());
        if self.instance_type != "virtual-machine" {
            m.insert(
                "privileged".into(),
                is_true(self.config.get("security.privileged")).to_string(),
            );
        }
        m
    }

    fn public(&self) -> BTreeMap<String, V> {
        let strings = |m: &BTreeMap<String, String>| -> BTreeMap<String, V> {
            m.iter().map(|(k, v)| (k.clone(), s(v.as_str()))).collect()
        };
        let meta = exec::map("map[string]string", strings(&self.instance_map()));
        let devices = self
            .devices
            .iter()
            .map(|(k, d)| (k.clone(), exec::map("config.Device", strings(d))))
            .collect();
        let mut p = BTreeMap::new();
        p.insert("trigger".into(), s(self.trigger.as_str()));
        p.insert("path".into(), s(self.path.as_str()));
        p.insert("container".into(), meta.clone());
        p.insert("instance".into(), meta);
        p.insert(
            "config".into(),
            exec::map("map[string]string", strings(&self.config)),
        );
        p.insert("devices".into(), exec::map("config.Devices", devices));
        p.insert(
            "properties".into(),
            exec::map("map[string]string", strings(&self.properties)),
        );
        p.insert("config_get".into(), V::ConfigGet);
        p
    }
}

/// A template LXD cannot apply (or lxdimg cannot render), positioned in the template file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateError {
    /// pongo2's error, positioned in the text pongo2 was given (with LXD's prefix).
    pub error: RenderError,
    /// Line and column (bytes, 1-based) in the template file; 0 when pongo2 names no position.
    pub line: u32,
    pub col: u32,
    /// The text LXD reports when it applies the template (`Failed to render template: …`), or
    /// lxdimg's explanation for its own limits.
    pub message: String,
    /// What pongo2's text means when it is not plain: an error at the end of the file names
    /// the `{% endautoescape %}` LXD appends, which means a block was left open.
    pub hint: Option<String>,
}

impl TemplateError {
    pub fn kind(&self) -> Kind {
        self.error.kind
    }
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {} column {}: ", self.line, self.col)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub output: String,
    /// Where LXD's result may differ from this preview (map iteration order, …).
    pub notes: Vec<String>,
}

/// The template file's text as pongo2 reads it: Go strings are bytes; bytes that are not UTF-8
/// become U+FFFD here (their columns then differ).
pub fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn wrapped(text: &str) -> String {
    format!("{LXD_PREFIX}{text}{LXD_SUFFIX}")
}

/// Maps a position in the wrapped text to the template file; `true` when it is in LXD's suffix.
fn position(text: &str, e: &RenderError) -> (u32, u32, bool) {
    if e.line == 0 {
        return (0, 0, false);
    }
    let newlines = text.matches('\n').count() as u32;
    let last_len = text.rsplit('\n').next().map_or(0, str::len) as u32;
    // Where the suffix starts, in the wrapped text's coordinates.
    let (sl, sc) = if newlines == 0 {
        (1, LXD_PREFIX.len() as u32 + last_len + 1)
    } else {
        (1 + newlines, last_len + 1)
    };
    let (mut line, mut col) = (e.line, e.col);
    let in_suffix = (line, col) >= (sl, sc);
    if in_suffix {
        (line, col) = (sl, sc);
    }
    if line == 1 {
        col = col.saturating_sub(LXD_PREFIX.len() as u32).max(1);
    }
    (line, col, in_suffix)
}

fn located(text: &str, error: RenderError) -> TemplateError {
    let (line, col, in_suffix) = position(text, &error);
    let hint = (in_suffix && error.kind == Kind::Syntax).then(|| {
        "the error is at the end of the file, where LXD appends {% endautoescape %} to the template (it wraps it in {% autoescape off %}…{% endautoescape %}): a block ({% if %}, {% for %}, …) or a tag is not closed".to_string()
    });
    let message = match error.kind {
        // LXD 5.0.2 does not recover a panic in pongo2 (the daemon dies); newer LXD does.
        Kind::Execution if error.sender == "panic" => {
            format!("Panic while rendering template: {}", error.message)
        }
        Kind::Syntax | Kind::Execution => {
            format!("Failed to render template: {}", error.pongo2_text())
        }
        Kind::Unsupported | Kind::Limit => error.pongo2_text(),
    };
    TemplateError {
        error,
        line,
        col,
        message,
        hint,
    }
}

fn parse_wrapped(text: &str) -> Result<Vec<parser::Node>, RenderError> {
    let w = wrapped(text);
    let tokens = lexer::lex(&w)?;
    parser::Parser::new(tokens, 0).parse_document()
}

/// Parses a template as LXD does when it applies it: `Ok` when pongo2 accepts its syntax.
#[allow(clippy::result_large_err)] // one error per template, never on a hot path
pub fn check_lxd(text: &str) -> Result<(), TemplateError> {
    parse_wrapped(text)
        .map(|_| ())
        .map_err(|e| located(text, e))
}

/// Renders a template as LXD does when it applies it, for this instance and rule.
#[allow(clippy::result_large_err)] // one error per template, never on a hot path
pub fn render_lxd(text: &str, ctx: &RenderContext) -> Result<Rendered, TemplateError> {
    let nodes = parse_wrapped(text).map_err(|e| located(text, e))?;
    execute(&nodes, ctx).map_err(|e| located(text, e))
}

/// Renders a template as pongo2's `FromString(text).Execute(ctx)` does, without LXD's wrapper
/// (autoescape on): for tests against pongo2 itself. Errors are in the text's own coordinates.
pub fn render_pongo2(text: &str, ctx: &RenderContext) -> Result<Rendered, RenderError> {
    let tokens = lexer::lex(text)?;
    let nodes = parser::Parser::new(tokens, 0).parse_document()?;
    execute(&nodes, ctx)
}

/// Executes parsed nodes for the instance (pongo2's autoescape on, as both callers have it).
fn execute(nodes: &[parser::Node], ctx: &RenderContext) -> Result<Rendered, RenderError> {
    let public = ctx.public();
    let mut ex = exec::Exec {
        public: &public,
        config: &ctx.config,
        out: String::new(),
        steps: 0,
        work: 0,
        notes: Vec::new(),
    };
    let mut private = HashMap::new();
    private.insert("pongo2".to_string(), exec::meta());
    let mut scope = exec::Scope {
        private,
        autoescape: true,
    };
    ex.nodes(nodes, &mut scope)?;
    Ok(Rendered {
        output: ex.out,
        notes: ex.notes,
    })
}

//! `lxdimg render`: each template of an image rendered as LXD would at a trigger, for an instance
//! described on the command line. The image is read once by the streaming inspector (the
//! templates come from its report, up to 1 MiB each); rendering is the core's
//! (`lxdimg::template`).

use clap::Args;
use lxdimg::controls::escape as shown;
use lxdimg::template::{render_lxd, RenderContext};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

/// Arguments of `lxdimg render`.
#[derive(Args)]
pub struct RenderArgs {
    /// The instance name (`container.name`).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The instance type (default: the image's).
    #[arg(long, value_parser = ["container", "virtual-machine"])]
    r#type: Option<String>,
    /// The instance architecture (default: the image's).
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// An instance config key, `KEY=VALUE` or `KEY=@FILE` (read from the file); repeatable.
    /// The image's properties are there as `image.*` and its fingerprint as
    /// `volatile.base_image`, as LXD sets them at creation.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A device, `NAME,KEY=VALUE[,KEY=VALUE…]`; repeatable.
    #[arg(long = "device", value_name = "NAME,KEY=VALUE")]
    devices: Vec<String>,
    /// The trigger whose templates are rendered.
    #[arg(long, default_value = "create", value_parser = ["create", "copy", "start", "rename"])]
    trigger: String,
    /// Only the template with this target path (or file name under templates/).
    #[arg(long, value_name = "PATH")]
    template: Option<String>,
    /// Make the instance ephemeral (`container.ephemeral`).
    #[arg(long)]
    ephemeral: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Image file, or the metadata tarball of a split image.
    file: PathBuf,
    /// Rootfs file of a split image.
    rootfs: Option<PathBuf>,
}

#[derive(Serialize)]
struct JsonError {
    kind: lxdimg::template::Kind,
    line: u32,
    col: u32,
    message: String,
    hint: Option<String>,
}

#[derive(Serialize)]
struct JsonResult {
    path: String,
    template: String,
    when: Vec<String>,
    create_only: bool,
    text: Option<String>,
    output: Option<String>,
    error: Option<JsonError>,
    notes: Vec<String>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn context(a: &RenderArgs, report: &lxdimg::Report) -> io::Result<RenderContext> {
    let mut config = lxdimg::template::image_config(
        &report
            .metadata
            .as_ref()
            .map(|m| m.properties.clone())
            .unwrap_or_default(),
        report.fingerprint.as_deref(),
    );
    for kv in &a.config {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad(format!("--config {kv:?}: expected KEY=VALUE")))?;
        let v = match v.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| io::Error::new(e.kind(), format!("--config {k}=@{path}: {e}")))?,
            None => v.to_string(),
        };
        config.insert(k.to_string(), v);
    }
    let mut devices: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for d in &a.devices {
        let mut parts = d.split(',');
        let name = parts.next().unwrap_or_default();
        if name.is_empty() || name.contains('=') {
            return Err(bad(format!(
                "--device {d:?}: expected NAME,KEY=VALUE[,KEY=VALUE…]"
            )));
        }
        let dev = devices.entry(name.to_string()).or_default();
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("--device {d:?}: {kv:?} is not KEY=VALUE")))?;
            dev.insert(k.to_string(), v.to_string());
        }
    }
    Ok(RenderContext {
        name: a.name.clone(),
        instance_type: a
            .r#type
            .clone()
            .or_else(|| report.image_type.map(|t| t.as_str().to_string()))
            .unwrap_or_else(|| "container".into()),
        architecture: a
            .arch
            .clone()
            .or_else(|| report.architecture.clone())
            .unwrap_or_else(|| "x86_64".into()),
        ephemeral: a.ephemeral,
        config,
        devices,
        properties: BTreeMap::new(),
        trigger: a.trigger.clone(),
        path: String::new(),
    })
}

/// Runs `lxdimg render`: exit 0 when every selected template renders, 1 when one fails.
pub fn run(a: RenderArgs) -> io::Result<i32> {
    let report = crate::cli::inspect_report(&a.file, a.rootfs.as_deref(), None)?;
    let base = context(&a, &report)?;
    let selected: Vec<_> = report
        .templates
        .iter()
        .filter(|t| t.when.contains(&a.trigger))
        .filter(|t| {
            a.template
                .as_deref()
                .is_none_or(|p| t.path == p || t.template == p)
        })
        .collect();
    if selected.is_empty() {
        let what = match &a.template {
            Some(p) => format!("no template rule for {p:?} has the trigger {:?}", a.trigger),
            None => format!(
                "no template rule of this image has the trigger {:?}",
                a.trigger
            ),
        };
        return Err(bad(what));
    }
    let mut results = Vec::new();
    for t in selected {
        let mut ctx = base.clone();
        ctx.path = t.path.clone();
        ctx.properties = t.properties.clone();
        let (output, error, notes) = match (&t.text, t.text_truncated) {
            (None, _) => (
                None,
                Some(JsonError {
                    kind: lxdimg::template::Kind::Execution,
                    line: 0,
                    col: 0,
                    message: format!(
                        "templates/{} is not in the image: LXD fails with `Failed to read template file`",
                        t.template
                    ),
                    hint: None,
                }),
                vec![],
            ),
            (Some(_), true) => (
                None,
                Some(JsonError {
                    kind: lxdimg::template::Kind::Limit,
                    line: 0,
                    col: 0,
                    message: format!(
                        "templates/{} is over {} bytes; lxdimg keeps and renders templates up to that size",
                        t.template,
                        lxdimg::limits::TEMPLATE_KEEP
                    ),
                    hint: None,
                }),
                vec![],
            ),
            (Some(text), false) => match render_lxd(text, &ctx) {
                Ok(r) => (Some(r.output), None, r.notes),
                Err(e) => (
                    None,
                    Some(JsonError {
                        kind: e.kind(),
                        line: e.line,
                        col: e.col,
                        message: e.message.clone(),
                        hint: e.hint.clone(),
                    }),
                    vec![],
                ),
            },
        };
        results.push(JsonResult {
            path: t.path.clone(),
            template: t.template.clone(),
            when: t.when.clone(),
            create_only: t.create_only,
            text: t.text.clone(),
            output,
            error,
            notes,
        });
    }
    let failed = results.iter().any(|r| r.error.is_some());
    let mut out = io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &results).map_err(io::Error::other)?;
        writeln!(out)?;
    } else {
        for r in &results {
            writeln!(
                out,
                "== {} (templates/{}; when: {}{})",
                shown(&r.path),
                shown(&r.template),
                shown(&r.when.join(", ")),
                if r.create_only { "; create_only" } else { "" }
            )?;
            if let Some(text) = &r.text {
                writeln!(out, "--- template")?;
                write!(out, "{}", shown_block(text))?;
            }
            match (&r.output, &r.error) {
                (Some(o), _) => {
                    writeln!(out, "--- rendered")?;
                    write!(out, "{}", shown_block(o))?;
                }
                (None, Some(e)) => {
                    let at = if e.line > 0 {
                        format!(" line {} column {}", e.line, e.col)
                    } else {
                        String::new()
                    };
                    writeln!(out, "--- error")?;
                    writeln!(
                        out,
                        "templates/{}{at}: {}",
                        shown(&r.template),
                        shown(&e.message)
                    )?;
                    if let Some(h) = &e.hint {
                        writeln!(out, "({})", shown(h))?;
                    }
                }
                (None, None) => {}
            }
            for n in &r.notes {
                writeln!(out, "note: {}", shown(n))?;
            }
            writeln!(out)?;
        }
    }
    Ok(i32::from(failed))
}

/// A multi-line text for the terminal: each line escaped, a final newline added if missing.
fn shown_block(text: &str) -> String {
    let mut s: String = text
        .split('\n')
        .map(|l| shown(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

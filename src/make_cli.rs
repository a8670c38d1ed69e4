//! `lxdimg make` and `lxdimg repair` on the command line: the files are read and written here;
//! everything they decide is the core's (`lxdimg::make`, `lxdimg::repair`).

use crate::cli::{human_size, now_unix, pump};
use indicatif::ProgressBar;
use lxdimg::controls::escape as shown;
use lxdimg::make::{self, Choices, RootfsProbe};
use lxdimg::template::sets::TemplateSet;
use lxdimg::{Inspector, Options, Report, Severity};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct MakeArgs {
    /// The rootfs file: a tarball (any codec LXD reads), a squashfs, or a qcow2 disk (VM).
    rootfs: PathBuf,
    /// Architecture (default: from the ELF header of /bin/sh in the rootfs).
    #[arg(long = "arch", value_name = "A")]
    arch: Option<String>,
    /// `os` property (default: ID from the rootfs's os-release).
    #[arg(long)]
    os: Option<String>,
    /// `release` property (default: VERSION_CODENAME, else VERSION_ID).
    #[arg(long)]
    release: Option<String>,
    /// `variant` property (default: `default`).
    #[arg(long)]
    variant: Option<String>,
    /// `description` property (default: PRETTY_NAME, architecture and serial).
    #[arg(long)]
    description: Option<String>,
    /// Templates to include.
    #[arg(long, default_value = "basic", value_parser = ["none", "basic", "cloud-init"])]
    template_set: String,
    /// Alias in the suggested import command (default: OS/RELEASE).
    #[arg(long)]
    alias: Option<String>,
    /// Directory for the metadata tarball (default: the rootfs's directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the result as JSON (metadata file, fingerprint, metadata.yaml, the Report).
    #[arg(long)]
    json: bool,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// The file name without the extensions LXD's formats carry (`debian.tar.xz` → `debian`).
pub(crate) fn stem(p: &Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut s = name.as_str();
    for ext in [
        ".xz",
        ".gz",
        ".bz2",
        ".zst",
        ".lzma",
        ".lz4",
        ".tgz",
        ".txz",
        ".tar",
        ".squashfs",
        ".sqfs",
        ".qcow2",
        ".img",
    ] {
        if let Some(x) = s.strip_suffix(ext) {
            s = x;
        }
    }
    if s.is_empty() {
        "image".into()
    } else {
        s.to_string()
    }
}


/// The core's inspection of a split pair (metadata bytes in memory, rootfs file streamed).
pub(crate) fn inspect_split(meta: &[u8], meta_name: &str, rootfs: &Path) -> io::Result<Report> {
    let mut insp = Inspector::new(Options {
        now: Some(now_unix()),
        names: [
            Some(meta_name.to_string()),
            rootfs.file_name().map(|n| n.to_string_lossy().into_owned()),
        ],
        ..Options::default()
    });
    insp.push(meta);
    insp.start_rootfs().expect("first call");
    pump(
        rootfs,
        &ProgressBar::hidden(),
        |b| insp.push(b),
        &mut || false,
    )?;
    Ok(insp.finish())
}

/// Why a made or repaired image is not offered: a verdict that refuses it or an error finding.
pub(crate) fn problems(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in r.verdicts.iter() {
        if v.accepted == Some(false) {
            out.push(format!(
                "{k} refuses it: {}",
                v.error.as_deref().unwrap_or("")
            ));
        }
    }
    let c = &r.verdicts["lxd-5.0"].creatable;
    if c.ok == Some(false) {
        out.push(format!(
            "lxc init fails: {}",
            c.error.as_deref().unwrap_or("")
        ));
    }
    for f in r.findings.iter().filter(|f| f.severity == Severity::Error) {
        out.push(format!("{}: {}", f.code, f.message));
    }
    out
}

pub fn run_make(a: MakeArgs) -> io::Result<i32> {
    let set = TemplateSet::from_name(&a.template_set).expect("clap checked the name");
    let choices = Choices {
        architecture: a.arch.clone(),
        os: a.os.clone(),
        release: a.release.clone(),
        variant: a.variant.clone(),
        description: a.description.clone(),
        template_set: Some(set),
    };
    if a.rootfs.as_os_str() == "-" {
        return Err(invalid(
            "the rootfs must be a file (it is read twice and named in the import command)",
        ));
    }
    let now = now_unix();
    let probe = if choices.complete() {
        None
    } else {
        let p = std::cell::RefCell::new(RootfsProbe::new(lxdimg::decode::ExpansionLimits {
            max_decoded: lxdimg::limits::DEFAULT_MAX_DECODED_BYTES.max(64 << 30),
            max_ratio: lxdimg::limits::DEFAULT_MAX_EXPANSION_RATIO,
        }));
        // Stops as soon as /bin/sh's architecture and os-release are known.
        pump(
            &a.rootfs,
            &ProgressBar::hidden(),
            |b| p.borrow_mut().push(b),
            &mut || p.borrow().settled(),
        )?;
        Some(p.into_inner().finish())
    };
    let m = make::propose(probe.as_ref(), &choices, now).map_err(invalid)?;
    let yaml = make::metadata_yaml(&m);
    let meta = make::metadata_tarball(&yaml, &make::template_files(set), now)?;
    let out_dir = a
        .out
        .clone()
        .or_else(|| a.rootfs.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let meta_path = out_dir.join(format!("{}.metadata.tar.xz", stem(&a.rootfs)));
    let meta_name = meta_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // The made image is offered only once the core accepts it (this read computes the fingerprint).
    let report = inspect_split(&meta, &meta_name, &a.rootfs)?;
    let mut bad = problems(&report);
    // The proposal read stopped early: the inspection read every member; a later os-release
    // (a member given twice) would have changed it.
    if let Some(p) = &probe {
        if p.os_release.is_some()
            && report.os_release != p.os_release
            && (a.os.is_none() || a.release.is_none())
        {
            bad.push("the rootfs holds os-release twice (a later member replaces the first): give --os and --release".into());
        }
    }
    let props = m.properties.clone().unwrap_or_default();
    let alias = a.alias.clone().unwrap_or_else(|| {
        format!("{}/{}", props["os"], props["release"])
            .to_lowercase()
            .replace(' ', "-")
    });
    let meta_s = meta_path.display().to_string();
    let rootfs_s = a.rootfs.display().to_string();
    let lxc = make::import_command("lxc", &meta_s, &rootfs_s, Some(&alias));
    let incus = make::import_command("incus", &meta_s, &rootfs_s, Some(&alias));
    if bad.is_empty() {
        crate::stream::write_atomic(&meta_path, &meta)?;
    }
    let mut out = io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "metadata_file": bad.is_empty().then_some(&meta_s),
            "fingerprint": report.fingerprint,
            "architecture": m.architecture,
            "probe": probe,
            "metadata_yaml": yaml,
            "import_commands": [lxc, incus],
            "problems": bad,
            "report": report,
        });
        serde_json::to_writer_pretty(&mut out, &v).map_err(io::Error::other)?;
        writeln!(out)?;
    } else {
        if let Some(p) = &probe {
            let fmt = p.format.map(|f| f.name()).unwrap_or("?");
            let size = std::fs::metadata(&a.rootfs)
                .map(|m| m.len())
                .unwrap_or(p.size);
            writeln!(
                out,
                "Rootfs: {} ({fmt}, {})",
                shown(&rootfs_s),
                human_size(size)
            )?;
            match (&a.arch, &p.architecture) {
                (None, Some(g)) if g.path == g.file => writeln!(
                    out,
                    "Architecture: {} (ELF header of {})",
                    g.name,
                    shown(&g.file)
                )?,
                (None, Some(g)) => writeln!(
                    out,
                    "Architecture: {} (ELF header of {}, via {})",
                    g.name,
                    shown(&g.file),
                    shown(&g.path)
                )?,
                _ => writeln!(out, "Architecture: {} (given)", shown(&m.architecture))?,
            }
            if let Some(f) = &p.os_release_file {
                writeln!(out, "os-release: {}", shown(f))?;
            }
        }
        writeln!(out, "metadata.yaml:")?;
        for l in yaml.lines() {
            writeln!(out, "    {}", shown(l))?;
        }
        if !bad.is_empty() {
            writeln!(out, "Not written: the core does not accept the made image:")?;
            for b in &bad {
                writeln!(out, "    {}", shown(b))?;
            }
            return Ok(1);
        }
        writeln!(
            out,
            "Metadata: {} ({})",
            shown(&meta_s),
            human_size(meta.len() as u64)
        )?;
        writeln!(
            out,
            "Fingerprint: {}",
            report.fingerprint.as_deref().unwrap_or("")
        )?;
        let accepted: Vec<&str> = report
            .verdicts
            .iter()
            .filter(|(_, v)| v.accepted == Some(true))
            .map(|(k, _)| k)
            .collect();
        writeln!(out, "Accepted by: {}", accepted.join(", "))?;
        writeln!(out, "Import:")?;
        writeln!(out, "    {}", shown(&lxc))?;
        writeln!(out, "    {}", shown(&incus))?;
    }
    Ok(if bad.is_empty() { 0 } else { 1 })
}

#[derive(clap::Args)]
pub struct RepairArgs {
    /// The image: a unified image, or the metadata tarball of a split image.
    file: PathBuf,
    /// The rootfs file of a split image.
    rootfs: Option<PathBuf>,
    /// Directory for the repaired file (default: FILE's directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write without asking (the diff is still printed).
    #[arg(long)]
    yes: bool,
    /// What to write: a unified image is rewritten as a stream in its own codec (`unified`, the
    /// default for one); a split image gets a new metadata tarball (`split`, the default for one).
    #[arg(long, value_parser = ["split", "unified"])]
    to: Option<String>,
    /// Print the plan and the result as JSON.
    #[arg(long)]
    json: bool,
}

/// `foo.tar.gz` → `foo.repaired.tar.gz` (the extension of `format` when the codec changes).
fn repaired_name(p: &Path, format: Option<lxdimg::detect::Format>) -> String {
    let s = stem(p);
    match format {
        Some(f) => format!("{s}.repaired{}", f.extension()),
        None => {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{s}.repaired{}", &name[s.len().min(name.len())..])
        }
    }
}

pub fn run_repair(a: RepairArgs) -> io::Result<i32> {
    use lxdimg::repair::{plan, MetaReader};
    if a.file.as_os_str() == "-" || a.rootfs.as_deref().is_some_and(|r| r.as_os_str() == "-") {
        return Err(invalid("repair reads its files twice (plan, then the check of the result): give file names, not -"));
    }
    let split = a.rootfs.is_some();
    match (a.to.as_deref(), split) {
        (Some("unified"), true) => {
            return Err(invalid("--to unified: a split image is repaired as a split image (a new metadata tarball; the rootfs is untouched)"))
        }
        (Some("split"), false) => {
            return Err(invalid("--to split of a unified image is not done by lxdimg: it repairs a unified image as a stream in its own codec (the default)"))
        }
        _ => {}
    }
    let now = now_unix();
    let report = crate::cli::inspect_report(&a.file, a.rootfs.as_deref(), None)?;
    let limits = lxdimg::decode::ExpansionLimits {
        max_decoded: lxdimg::limits::DEFAULT_MAX_DECODED_BYTES.max(64 << 30),
        max_ratio: lxdimg::limits::DEFAULT_MAX_EXPANSION_RATIO,
    };
    let mut reader = MetaReader::new(limits);
    pump(
        &a.file,
        &ProgressBar::hidden(),
        |b| reader.push(b),
        &mut || false,
    )?;
    let parts = reader.finish();
    // The architecture from the rootfs's ELF header, when the metadata's is no use.
    let rootfs_arch = match (&a.rootfs, &report.architecture) {
        (Some(r), None) => {
            let mut p = RootfsProbe::new(limits);
            pump(r, &ProgressBar::hidden(), |b| p.push(b), &mut || false)?;
            p.finish().architecture.map(|g| g.name)
        }
        _ => None,
    };
    let before = problems(&report);
    let mut out = io::stdout().lock();
    let p = match plan(&parts, &report, now, rootfs_arch) {
        Ok(p) => p,
        Err(e) => {
            writeln!(out, "Not repaired: {}", shown(&e))?;
            return Ok(1);
        }
    };
    if !a.json {
        writeln!(
            out,
            "Image: {} ({})",
            shown(&a.file.display().to_string()),
            if split { "split" } else { "unified" }
        )?;
        if before.is_empty() {
            writeln!(out, "Now: accepted, no error finding")?;
        } else {
            writeln!(out, "Now:")?;
            for b in &before {
                writeln!(out, "    {}", shown(b))?;
            }
        }
        writeln!(out, "Fixes:")?;
        for f in &p.fixes {
            writeln!(out, "    [{}] {}", f.code, shown(&f.what))?;
        }
        if p.fixes.is_empty() {
            writeln!(out, "    (none)")?;
        }
        for u in &p.unfixable {
            writeln!(out, "Not fixable: {}", shown(u))?;
        }
        writeln!(out, "{}", shown_diff(&p.diff()))?;
    }
    if p.fixes.is_empty() {
        if !a.json {
            writeln!(out, "Nothing to repair mechanically.")?;
        }
        return Ok(if before.is_empty() { 0 } else { 1 });
    }
    if !a.yes && !a.json {
        use std::io::IsTerminal;
        if !io::stdin().is_terminal() {
            writeln!(
                out,
                "Not written: run with --yes to write the repaired image"
            )?;
            return Ok(1);
        }
        write!(out, "Write the repaired image? [y/N] ")?;
        out.flush()?;
        let mut line = String::new();
        io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            writeln!(out, "Not written.")?;
            return Ok(1);
        }
    }
    let dir = a
        .out
        .clone()
        .or_else(|| a.file.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let (path, report2) = if let Some(rootfs) = &a.rootfs {
        let meta = make::metadata_tarball(&p.new_yaml, &p.templates, now)?;
        let path = dir.join(repaired_name(&a.file, Some(lxdimg::detect::Format::Xz)));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let r = inspect_split(&meta, &name, rootfs)?;
        if problems(&r).is_empty() {
            crate::stream::write_atomic(&path, &meta)?;
        }
        (path, r)
    } else {
        let format = p.recompress.then_some(lxdimg::detect::Format::Xz);
        let path = dir.join(repaired_name(&a.file, format));
        let checking = dir.join(format!(
            ".{}.checking-{}",
            path.file_name().unwrap().to_string_lossy(),
            std::process::id()
        ));
        let opts = lxdimg::rewrite::RewriteOptions {
            format,
            ..Default::default()
        };
        crate::rewrite_cli::rewrite_file(
            &a.file,
            &checking,
            p.edits(now.max(0) as u64),
            opts,
            &mut |_| {},
        )?;
        let r = crate::cli::inspect_report(&checking, None, None);
        let r = match r {
            Ok(r) if problems(&r).is_empty() => {
                std::fs::rename(&checking, &path)?;
                r
            }
            Ok(r) => {
                let _ = std::fs::remove_file(&checking);
                r
            }
            Err(e) => {
                let _ = std::fs::remove_file(&checking);
                return Err(e);
            }
        };
        (path, r)
    };
    let after = problems(&report2);
    let path_s = path.display().to_string();
    if a.json {
        let v = serde_json::json!({
            "plan": p,
            "diff": p.diff(),
            "file": after.is_empty().then_some(&path_s),
            "fingerprint": report2.fingerprint,
            "problems": after,
            "report": report2,
        });
        serde_json::to_writer_pretty(&mut out, &v).map_err(io::Error::other)?;
        writeln!(out)?;
        return Ok(if after.is_empty() { 0 } else { 1 });
    }
    if !after.is_empty() {
        writeln!(
            out,
            "Not written: the repaired image is still not accepted:"
        )?;
        for b in &after {
            writeln!(out, "    {}", shown(b))?;
        }
        return Ok(1);
    }
    writeln!(out, "Repaired: {}", shown(&path_s))?;
    writeln!(
        out,
        "Fingerprint: {}",
        report2.fingerprint.as_deref().unwrap_or("")
    )?;
    let rootfs_s = a.rootfs.as_ref().map(|r| r.display().to_string());
    let cmd = match &rootfs_s {
        Some(r) => make::import_command("lxc", &path_s, r, None),
        None => format!("lxc image import {}", shown(&path_s)),
    };
    writeln!(out, "Import: {}", shown(&cmd))?;
    Ok(0)
}

/// A diff for the terminal: each line escaped, the +/- kept.
fn shown_diff(d: &str) -> String {
    d.lines()
        .map(|l| shown(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

//! `lxdimg`: the inspection core on the command line.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(not(target_arch = "wasm32"))]
mod publish;

#[cfg(not(target_arch = "wasm32"))]
mod stream;

#[cfg(not(target_arch = "wasm32"))]
mod render_cli;

#[cfg(not(target_arch = "wasm32"))]
mod make_cli;

#[cfg(not(target_arch = "wasm32"))]
mod rewrite_cli;

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Parser, Subcommand};
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    /// Every untrusted string (image data, the worker's answers) is printed through this: control
    /// characters become `\u{1b}`-style escapes, so an image cannot drive the terminal.
    use lxdimg::controls::escape as shown;
    use lxdimg::{Fingerprinter, ImageType, Inspector, Options, Report, Severity};
    use std::fs::File;
    use std::io::{self, IsTerminal, Read, Write};
    use std::path::{Path, PathBuf};

    /// Fingerprint, validate and explain LXD/Incus image files.
    #[derive(Parser)]
    #[command(version, about)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Read an image (unified, or metadata + rootfs) and report what LXD would say about it.
        ///
        /// Exit status: 0 if LXD 5.0 accepts the image, 1 if it rejects it, 2 on usage or I/O errors.
        Inspect {
            /// Print the report as JSON.
            #[arg(long)]
            json: bool,
            /// Stop reading once LXD's verdict is known, as LXD's import does (no fingerprint).
            #[arg(long)]
            quick: bool,
            /// Also exit 1 when there are error findings, even if LXD accepts the image.
            #[arg(long)]
            strict: bool,
            /// Architecture of the LXD host, for the `creatable` verdict (default: this machine's).
            #[arg(long, value_name = "ARCH")]
            host_arch: Option<String>,
            /// For a split image, the type to upload the rootfs as (default: from its content).
            #[arg(long, value_parser = ["container", "virtual-machine"])]
            r#type: Option<String>,
            /// The LXD/Incus build whose verdict sets the exit status and the summary.
            #[arg(long, value_name = "NAME", default_value = lxdimg::verdict::REFERENCE.key,
                  value_parser = clap::builder::PossibleValuesParser::new(lxdimg::verdict::TARGETS.iter().map(|t| t.key)))]
            target: String,
            /// Expansion limit: stop decoding a compressed file (a `decompression-bomb` error)
            /// once it has decoded more than this many bytes and more than --max-expansion-ratio
            /// times the compressed bytes read.
            #[arg(long, value_name = "BYTES", default_value_t = lxdimg::limits::DEFAULT_MAX_DECODED_BYTES)]
            max_decoded_bytes: u64,
            /// Expansion limit: decoded bytes per compressed byte read (see --max-decoded-bytes).
            #[arg(long, value_name = "RATIO", default_value_t = lxdimg::limits::DEFAULT_MAX_EXPANSION_RATIO)]
            max_expansion_ratio: u64,
            /// Image file, or the metadata tarball of a split image (`-` for stdin).
            file: PathBuf,
            /// Rootfs file of a split image (squashfs, qcow2 or tarball).
            rootfs: Option<PathBuf>,
        },
        /// Upload an image to an lxdimg edge worker, which validates it with the same core and
        /// serves it for `lxc image import https://…` and simplestreams remotes.
        ///
        /// Exit status: 0 when stored, 1 when the worker (LXD 5.0's verdict) rejects it, 2 otherwise.
        Publish {
            /// The worker's base URL, e.g. https://images.example.org
            #[arg(long)]
            server: String,
            /// Upload token (the worker's UPLOAD_TOKEN secret).
            #[arg(long, env = "LXDIMG_TOKEN", hide_env_values = true)]
            token: String,
            /// Alias to point at the image (repeatable).
            #[arg(long = "alias")]
            aliases: Vec<String>,
            /// Parts sent at once when the image goes through an upload session (images over the
            /// worker's per-request cap; a re-run resumes an interrupted one).
            #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
            jobs: u16,
            /// Send without checking the image locally with the core first.
            #[arg(long)]
            no_local_check: bool,
            /// Image file, or the metadata tarball of a split image.
            file: PathBuf,
            /// Rootfs file of a split image.
            rootfs: Option<PathBuf>,
        },
        /// Print LXD's fingerprint of an image (SHA-256 of the file, or of metadata then rootfs).
        Fingerprint {
            file: PathBuf,
            rootfs: Option<PathBuf>,
        },
        /// Maintain a simplestreams image tree in a directory, for any static web server (LXD and
        /// Incus clients: `lxc remote add NAME URL --protocol simplestreams`).
        #[command(subcommand)]
        Stream(crate::stream::cli::StreamCommand),
        /// Render each template of an image as LXD would at a trigger (default `create`), for an
        /// instance given here: the target path, the template and the rendered file.
        ///
        /// Exit status: 0 when every template renders, 1 when one fails (its file, line and LXD's
        /// error are printed), 2 on usage or I/O errors.
        Render(crate::render_cli::RenderArgs),
        /// Make a split image from a rootfs file: propose metadata.yaml from the rootfs (ELF
        /// architecture of /bin/sh, os-release), write the metadata tarball, print the fingerprint
        /// and the import command. The rootfs stays untouched.
        ///
        /// Exit status: 0 when made (the core accepts it), 1 when not, 2 on usage or I/O errors.
        Make(crate::make_cli::MakeArgs),
        /// Repair an image LXD refuses (or whose init or first start fails): print the fixes and
        /// the diff of metadata.yaml, then write a repaired copy (split: a new metadata tarball;
        /// unified: rewritten as a stream in its codec), checked by the core, with its fingerprint.
        ///
        /// Exit status: 0 when repaired (or nothing to repair), 1 when not, 2 on usage or I/O errors.
        Repair(crate::make_cli::RepairArgs),
        /// Rewrite a unified image as a stream: replace, drop or add members, same codec.
        #[command(hide = true)]
        Rewrite(crate::rewrite_cli::RewriteArgs),
    }

    /// Read size. Each `read` copies page-cache data into `buf` and the hash then reads it back, so
    /// `buf` should stay in the per-core L2. Once it does not, the kernel's copy misses on every
    /// line and sys time climbs (on a 2 MiB-L2 machine a 16 MiB buffer costs 1.8× the sys time of a
    /// 256 KiB one); 1 MiB, the old size, is already past the L2 of many CPUs (issue 13: 2.8×
    /// openssl's sys time). 128 KiB fits everywhere and is still only 8 Ki reads per GiB.
    const CHUNK: usize = 128 << 10;

    fn open(path: &Path) -> io::Result<(Box<dyn Read>, Option<u64>)> {
        if path.as_os_str() == "-" {
            return Ok((Box::new(io::stdin().lock()), None));
        }
        let f = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let len = f.metadata().ok().map(|m| m.len());
        Ok((Box::new(f), len))
    }

    fn progress(total: Option<u64>) -> ProgressBar {
        if !io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    }

    /// Reads a file through `f` in [`CHUNK`]-sized reads into one buffer; `stop` ends reading early.
    pub(crate) fn pump(
        path: &Path,
        pb: &ProgressBar,
        mut f: impl FnMut(&[u8]),
        stop: &mut dyn FnMut() -> bool,
    ) -> io::Result<bool> {
        let (mut r, _) = open(path)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            if stop() {
                return Ok(false);
            }
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            };
            f(&buf[..n]);
            pb.inc(n as u64);
        }
    }

    fn total_size(paths: &[&Path]) -> Option<u64> {
        paths
            .iter()
            .map(|p| {
                if p.as_os_str() == "-" {
                    None
                } else {
                    std::fs::metadata(p).ok().map(|m| m.len())
                }
            })
            .sum()
    }

    fn name_of(p: &Path) -> Option<String> {
        (p.as_os_str() != "-")
            .then(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .flatten()
    }

    pub fn main() -> i32 {
        let cli = match Cli::try_parse() {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 2 } else { 0 };
            }
        };
        match run(cli) {
            Ok(code) => code,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            Err(e) => {
                eprintln!("lxdimg: {}", shown(&e.to_string()));
                2
            }
        }
    }

    fn run(cli: Cli) -> io::Result<i32> {
        match cli.command {
            Command::Publish {
                server,
                token,
                aliases,
                jobs,
                no_local_check,
                file,
                rootfs,
            } => {
                let request = crate::publish::Request {
                    server: &server,
                    token: &token,
                    file: &file,
                    rootfs: rootfs.as_deref(),
                    aliases: &aliases,
                    jobs: jobs.into(),
                    local_check: !no_local_check,
                };
                match crate::publish::publish(&request) {
                    Ok(p) => {
                        let what = if p.created {
                            "published"
                        } else {
                            "already published"
                        };
                        println!(
                            "{what} {} ({}, {}, {})",
                            shown(&p.fingerprint),
                            shown(&p.architecture),
                            shown(&p.image_type),
                            shown(&p.format)
                        );
                        println!("{}", shown(&p.import_command));
                        println!("{}", shown(&crate::publish::remote_command(&server)));
                        Ok(0)
                    }
                    Err(e) => match e
                        .get_ref()
                        .and_then(|x| x.downcast_ref::<crate::publish::Rejected>())
                    {
                        Some(r) => {
                            // The worker's report says why, in the same shape as `inspect --json`
                            // (refused locally: only why; `lxdimg inspect` shows the rest).
                            if !r.local {
                                println!("{}", json_text(&r.report));
                            }
                            let why = if r.local { r.to_string() } else { r.error.clone() };
                            eprintln!("Error: {}", shown(&why));
                            Ok(1)
                        }
                        None => Err(e),
                    },
                }
            }
            Command::Stream(cmd) => crate::stream::cli::run(cmd),
            Command::Render(a) => crate::render_cli::run(a),
            Command::Make(a) => crate::make_cli::run_make(a),
            Command::Repair(a) => crate::make_cli::run_repair(a),
            Command::Rewrite(a) => crate::rewrite_cli::run(a),
            Command::Fingerprint { file, rootfs } => {
                let paths: Vec<&Path> = std::iter::once(file.as_path())
                    .chain(rootfs.as_deref())
                    .collect();
                let pb = progress(total_size(&paths));
                let mut fp = Fingerprinter::new();
                for p in &paths {
                    pump(p, &pb, |b| fp.push(b), &mut || false)?;
                }
                pb.finish_and_clear();
                println!("{}", fp.finish());
                Ok(0)
            }
            Command::Inspect {
                json,
                quick,
                strict,
                host_arch,
                r#type,
                target,
                max_decoded_bytes,
                max_expansion_ratio,
                file,
                rootfs,
            } => {
                let target = lxdimg::verdict::target(&target).expect("clap checked the name");
                let host_arch = match host_arch {
                    Some(a) => match lxdimg::arch::lookup(lxdimg::verdict::LXD_5_0.arch, &a)
                        .or_else(|| lxdimg::arch::lookup(lxdimg::verdict::INCUS_6.arch, &a))
                    {
                        Some((_, name)) => Some(name.to_string()),
                        None => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("--host-arch {a:?} is not an architecture LXD knows"),
                            ))
                        }
                    },
                    None => machine_arch().map(str::to_string),
                };
                if file.as_os_str() == "-"
                    && rootfs.as_deref().is_some_and(|r| r.as_os_str() == "-")
                {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "only one of the two files can be read from stdin",
                    ));
                }
                let opts = Options {
                    now: Some(now_unix()),
                    names: [name_of(&file), rootfs.as_deref().and_then(name_of)],
                    host_arch,
                    split_type: r#type.as_deref().map(|t| {
                        if t == "container" {
                            ImageType::Container
                        } else {
                            ImageType::VirtualMachine
                        }
                    }),
                    max_decoded_bytes,
                    max_expansion_ratio,
                };
                let paths: Vec<&Path> = std::iter::once(file.as_path())
                    .chain(rootfs.as_deref())
                    .collect();
                let pb = progress(total_size(&paths));
                let mut insp = Inspector::new(opts);
                let cell = std::cell::RefCell::new(&mut insp);
                let mut stop = || quick && cell.borrow().current_file_settled();
                let whole = pump(&file, &pb, |b| cell.borrow_mut().push(b), &mut stop)?;
                let mut all_read = whole;
                if let Some(r) = &rootfs {
                    if whole {
                        cell.borrow_mut().start_rootfs().expect("first call");
                    } else {
                        cell.borrow_mut().start_rootfs_early().expect("first call");
                    }
                    let mut stop = || quick && cell.borrow().current_file_settled();
                    all_read &= pump(r, &pb, |b| cell.borrow_mut().push(b), &mut stop)?;
                }
                pb.finish_and_clear();
                // A quick run that reached the end anyway is a complete one.
                let report = if quick && !all_read {
                    insp.finish_early()
                } else {
                    insp.finish()
                };
                let mut out = io::stdout().lock();
                if json {
                    serde_json::to_writer_pretty(&mut out, &report).map_err(io::Error::other)?;
                    writeln!(out)?;
                } else {
                    print_human(&mut out, &report, target, &file, rootfs.as_deref())?;
                }
                let accepted = report.verdicts[target.key].is_accepted();
                Ok(
                    if !accepted || (strict && report.count(Severity::Error) > 0) {
                        1
                    } else {
                        0
                    },
                )
            }
        }
    }

    /// Inspects a unified image or a split pair, reading every byte (no progress bar).
    pub(crate) fn inspect_report(
        file: &Path,
        rootfs: Option<&Path>,
        host_arch: Option<&str>,
    ) -> io::Result<Report> {
        let opts = Options {
            now: Some(now_unix()),
            names: [name_of(file), rootfs.and_then(name_of)],
            host_arch: host_arch.map(str::to_string),
            ..Options::default()
        };
        let mut insp = Inspector::new(opts);
        let pb = ProgressBar::hidden();
        pump(file, &pb, |b| insp.push(b), &mut || false)?;
        if let Some(r) = rootfs {
            insp.start_rootfs().expect("first call");
            pump(r, &pb, |b| insp.push(b), &mut || false)?;
        }
        Ok(insp.finish())
    }

    pub(crate) fn now_unix() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// This machine's architecture, by LXD's canonical name.
    fn machine_arch() -> Option<&'static str> {
        Some(match std::env::consts::ARCH {
            "x86_64" => "x86_64",
            "x86" => "i686",
            "aarch64" => "aarch64",
            "arm" => "armv7l",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "loongarch64" => "loongarch64",
            "mips64" => "mips64",
            _ => return None,
        })
    }

    pub(crate) fn human_size(n: u64) -> String {
        // lxc image info uses decimal units with two decimals.
        let units = ["B", "kB", "MB", "GB", "TB"];
        let mut v = n as f64;
        let mut u = 0;
        while v >= 1000.0 && u < units.len() - 1 {
            v /= 1000.0;
            u += 1;
        }
        if u == 0 {
            format!("{n}B")
        } else {
            format!("{v:.2}{}", units[u])
        }
    }

    /// JSON text from a server (the worker's 422 report) for the terminal: control characters
    /// other than JSON's own whitespace become `\u00XX`-style escapes. Inside a JSON string that is
    /// the same value (and outside one a raw control character is not JSON anyway), so the text
    /// stays the same JSON document, pretty layout included.
    pub(crate) fn json_text(s: &str) -> std::borrow::Cow<'_, str> {
        let bad = |c: char| !matches!(c, '\t' | '\n' | '\r') && lxdimg::controls::is_control(c);
        if !s.contains(bad) {
            return std::borrow::Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len() + 16);
        for c in s.chars() {
            if bad(c) {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push(c);
            }
        }
        std::borrow::Cow::Owned(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn json_text_keeps_the_document() {
            let raw = "{\n  \"d\": \"a\u{9b}2J\u{202e}b\u{1b}\"\n}";
            let out = super::json_text(raw);
            assert_eq!(out, "{\n  \"d\": \"a\\u009b2J\\u202eb\\u001b\"\n}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["d"], "a\u{9b}2J\u{202e}b\u{1b}");
            assert!(matches!(
                super::json_text("{}\n"),
                std::borrow::Cow::Borrowed(_)
            ));
        }
    }

    /// A multi-line message (LXD's YAML errors), each line [`shown`], joined with `sep`.
    fn lines(s: &str, sep: &str) -> String {
        s.split('\n')
            .map(|l| shown(l).into_owned())
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn print_human(
        out: &mut impl Write,
        r: &Report,
        target: &lxdimg::verdict::Target,
        file: &Path,
        rootfs: Option<&Path>,
    ) -> io::Result<()> {
        let v = &r.verdicts[target.key];
        match &r.fingerprint {
            Some(fp) => writeln!(out, "Fingerprint: {fp}")?,
            None => writeln!(out, "Fingerprint: (not computed: --quick)")?,
        }
        let size: u64 = r.files.iter().map(|f| f.size).sum();
        writeln!(out, "Size: {}", human_size(size))?;
        writeln!(
            out,
            "Architecture: {}",
            shown(r.architecture.as_deref().unwrap_or("(unknown)"))
        )?;
        writeln!(
            out,
            "Type: {}",
            r.image_type.map(|t| t.as_str()).unwrap_or("(unknown)")
        )?;
        let comps: Vec<String> = r
            .files
            .iter()
            .map(|f| format!("{} ({})", f.role, f.compression))
            .collect();
        writeln!(
            out,
            "Format: {}: {}",
            if r.files.len() > 1 {
                "split"
            } else {
                "unified"
            },
            comps.join(" + ")
        )?;
        if let Some(m) = &r.metadata {
            let when = |t: &Option<String>, raw: i64| match t {
                Some(s) if raw != 0 => s.replace('T', " ").replace('Z', " UTC"),
                _ if raw == 0 => "never".to_string(),
                _ => format!("{raw} (out of range)"),
            };
            writeln!(out, "Created: {}", when(&m.created, m.creation_date))?;
            writeln!(out, "Expires: {}", when(&m.expires, m.expiry_date))?;
            writeln!(out, "Properties:")?;
            for (k, val) in &m.properties {
                writeln!(out, "    {}: {}", shown(k), shown(val))?;
            }
        }
        writeln!(out, "Verdicts:")?;
        for (key, v) in r.verdicts.iter() {
            match (v.accepted, &v.error, &v.reason) {
                (Some(true), _, _) => writeln!(out, "    {key:<9} accepted")?,
                (Some(false), e, _) => writeln!(
                    out,
                    "    {key:<9} rejected: {}",
                    lines(e.as_deref().unwrap_or(""), "\n              ")
                )?,
                (None, _, why) => writeln!(
                    out,
                    "    {key:<9} not judged by lxdimg: {}",
                    shown(why.as_deref().unwrap_or(""))
                )?,
            }
        }
        if !r.templates.is_empty() {
            writeln!(out, "Templates:")?;
            let w = r
                .templates
                .iter()
                .map(|t| shown(&t.path).chars().count())
                .max()
                .unwrap_or(4)
                .max(4);
            writeln!(
                out,
                "    {:<w$}  {:<18} {:<24} {:<7} CREATE_ONLY",
                "PATH", "TRIGGERS", "TEMPLATE", "PRESENT"
            )?;
            for t in &r.templates {
                writeln!(
                    out,
                    "    {:<w$}  {:<18} {:<24} {:<7} {}",
                    shown(&t.path),
                    shown(&t.when.join(",")),
                    shown(&t.template),
                    if t.present { "yes" } else { "NO" },
                    t.create_only
                )?;
            }
        }
        if !r.findings.is_empty() {
            writeln!(out, "Findings:")?;
            for f in &r.findings {
                let sev = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Info => "info",
                };
                writeln!(out, "    {sev:<7} {}: {}", f.code, shown(&f.message))?;
            }
        }
        let mut cmd = format!(
            "lxc image import {}",
            lxdimg::findings::shell_quote(&file.display().to_string())
        );
        if let Some(r) = rootfs {
            cmd.push(' ');
            cmd.push_str(&lxdimg::findings::shell_quote(&r.display().to_string()));
        }
        let who = target.label;
        let first_start = r.findings.iter().find(|f| f.code.breaks_first_start());
        match (v.accepted, &v.error) {
            (Some(true), _) => {
                match (v.creatable.ok, &v.creatable.error) {
                    (Some(false), Some(e)) => writeln!(
                        out,
                        "\n{who} will import this image, but `lxc init` (and `lxc launch`) will fail: {}",
                        lines(e, "\n")
                    )?,
                    (None, Some(why)) => writeln!(
                        out,
                        "\n{who} will import this image; whether `lxc init` can create an instance is not known: {}",
                        shown(why)
                    )?,
                    _ => match first_start {
                        Some(f) => writeln!(
                            out,
                            "\n{who} will import this image and `lxc init` will create an instance, but it fails at first start (`lxc start`, `lxc launch`): {}",
                            shown(&f.message)
                        )?,
                        None => writeln!(
                            out,
                            "\n{who} will import this image and `lxc init` will create an instance from it (starting it is not checked here):"
                        )?,
                    },
                }
                writeln!(out, "    {cmd} --alias NAME")?;
            }
            (Some(false), e) => writeln!(
                out,
                "\n{who} will refuse this image: Error: {}",
                lines(e.as_deref().unwrap_or(""), "\n")
            )?,
            (None, _) => writeln!(
                out,
                "\nlxdimg cannot tell whether {who} will import this image: {}",
                shown(v.reason.as_deref().unwrap_or(""))
            )?,
        }
        Ok(())
    }
}

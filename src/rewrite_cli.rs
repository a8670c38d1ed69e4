//! Native glue for the streaming rewrite of a unified image ([`lxdimg::rewrite`]): the image is
//! read once and the result written to a temporary file beside the output, renamed into place
//! only when complete (never a half-written image). `lxdimg repair` calls [`rewrite_file`]; the
//! hidden `lxdimg rewrite` command exposes it for tests and benchmarks.

use lxdimg::controls::escape as shown;
use lxdimg::detect::Format;
use lxdimg::rewrite::{Edits, NewEntry, RewriteOptions, RewriteSummary, Target, UnifiedRewrite};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Input read per push: as the inspector's CLI reads (fits the L2 cache).
const READ_CHUNK: usize = 128 << 10;

/// A temporary file beside `out`, removed on drop unless persisted.
struct Temp {
    path: PathBuf,
    file: Option<File>,
}

impl Temp {
    fn beside(out: &Path) -> io::Result<Temp> {
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        for i in 0..100u32 {
            let path = dir.join(format!(".{base}.lxdimg-{}-{i}.tmp", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(Temp {
                        path,
                        file: Some(file),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", path.display()),
                    ))
                }
            }
        }
        Err(io::Error::other(format!(
            "cannot create a temporary file in {}",
            dir.display()
        )))
    }

    fn persist(mut self, to: &Path) -> io::Result<()> {
        let f = self.file.take().expect("open");
        f.sync_all()?;
        drop(f);
        std::fs::rename(&self.path, to)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", to.display())))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Rewrites the unified image `input` into `out` (temporary file, then rename), calling
/// `progress` with the input bytes read so far. Returns what was done, with the new fingerprint.
/// On any error nothing is left at `out` (an existing file there is untouched).
pub fn rewrite_file(
    input: &Path,
    out: &Path,
    edits: Edits,
    options: RewriteOptions,
    progress: &mut dyn FnMut(u64),
) -> io::Result<RewriteSummary> {
    // The result replaces `out` by a rename: never a device, a directory or a symlink's target.
    if let Ok(m) = std::fs::symlink_metadata(out) {
        if !m.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: exists and is not a regular file", out.display()),
            ));
        }
    }
    let mut src = File::open(input)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", input.display())))?;
    let tmp = Temp::beside(out)?;
    let mut w = tmp.file.as_ref().expect("open");
    let mut rw = UnifiedRewrite::new(edits, options);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut produced = Vec::new();
    let mut read = 0u64;
    let bad = |e: lxdimg::rewrite::RewriteError| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {}", input.display(), e.message),
        )
    };
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", input.display()),
                ))
            }
        };
        read += n as u64;
        rw.push(&buf[..n], &mut produced).map_err(bad)?;
        if !produced.is_empty() {
            w.write_all(&produced)?;
            produced.clear();
        }
        progress(read);
    }
    let summary = rw.finish(&mut produced).map_err(bad)?;
    w.write_all(&produced)?;
    w.flush()?;
    tmp.persist(out)?;
    Ok(summary)
}

/// `lxdimg rewrite`: rewrite a unified image, replacing, dropping or adding members.
#[derive(clap::Args)]
pub struct RewriteArgs {
    /// New content for a member: NAME=FILE (NAME as the archive spells it; NAME#N for only its
    /// N-th occurrence, from 0). Repeatable.
    #[arg(long, value_name = "NAME=FILE")]
    replace: Vec<String>,
    /// Leave a member out: NAME or NAME#N. Repeatable.
    #[arg(long, value_name = "NAME")]
    drop: Vec<String>,
    /// Add a regular file (written first, mode 0644, owned by root): NAME=FILE. Repeatable.
    #[arg(long, value_name = "NAME=FILE")]
    add: Vec<String>,
    /// Output codec (default: the input's).
    #[arg(long, value_parser = ["gzip", "bzip2", "xz", "lzma", "zstd", "tar"])]
    format: Option<String>,
    /// Compression level (default: the tool's default, or what the input's header shows).
    #[arg(long)]
    level: Option<u32>,
    /// Modification time of added members, Unix seconds (default: now).
    #[arg(long, value_name = "SECONDS")]
    mtime: Option<u64>,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
    /// The rewritten image (written to a temporary file beside it, then renamed).
    #[arg(long, short)]
    out: PathBuf,
    /// The unified image.
    file: PathBuf,
}

fn target(spec: &str) -> Target {
    match spec.rsplit_once('#') {
        Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Target::nth(name, n.parse().unwrap_or(u64::MAX))
        }
        _ => Target::name(spec),
    }
}

fn pair(spec: &str, flag: &str) -> io::Result<(String, Vec<u8>)> {
    let (name, path) = spec.split_once('=').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--{flag} wants NAME=FILE, not {spec:?}"),
        )
    })?;
    let data = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    Ok((name.to_string(), data))
}

pub fn run(a: RewriteArgs) -> io::Result<i32> {
    let now = a.mtime.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let mut edits = Edits::default();
    for r in &a.replace {
        let (name, data) = pair(r, "replace")?;
        edits.replace.push((target(&name), data));
    }
    edits.drop = a.drop.iter().map(|d| target(d)).collect();
    for r in &a.add {
        let (name, data) = pair(r, "add")?;
        edits.add.push(NewEntry::file(name, data, now));
    }
    let format = a.format.as_deref().map(|f| match f {
        "gzip" => Format::Gzip,
        "bzip2" => Format::Bzip2,
        "xz" => Format::Xz,
        "lzma" => Format::Lzma,
        "zstd" => Format::Zstd,
        _ => Format::Tar,
    });
    let opts = RewriteOptions {
        format,
        level: a.level,
        ..Default::default()
    };
    let s = rewrite_file(&a.file, &a.out, edits, opts, &mut |_| {})?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(io::Error::other)?
        );
    } else {
        println!("{}", shown(&s.fingerprint));
        eprintln!(
            "{} ({} level {}): {} members, {} replaced, {} dropped, {} added; {} → {} bytes",
            shown(&a.out.display().to_string()),
            s.format.name(),
            s.level,
            s.members,
            s.replaced,
            s.dropped,
            s.added,
            s.bytes_in,
            s.bytes_out
        );
    }
    Ok(0)
}

//! Rewriting a unified image as a stream: replace, drop or add members, keep everything else.
//!
//! Bytes of the image go in through [`UnifiedRewrite::push`] (any chunking); the rewritten image
//! comes out, encoded with the same codec, and [`UnifiedRewrite::finish`] gives its SHA-256 (the
//! new fingerprint). The codec is detected as the inspector detects it ([`crate::detect::sniff`]),
//! the decoded tar is walked by the inspector's walk ([`crate::tar::TarWalker`], Go's reading), and
//!
//! * every member not named in the [`Edits`] is copied as its raw 512-byte blocks — headers, GNU
//!   long names, PAX records, sparse maps, hard links, padding and the end-of-archive marker
//!   unchanged;
//! * a replaced member keeps its header blocks but for the size field and the checksum (name,
//!   mode, owner, mtime kept; a PAX `size` record is taken out), followed by the new content;
//! * a dropped member's blocks are left out (a PAX global header before it is kept);
//! * added members are written first, before the first member, as ustar headers (so LXD, which
//!   reads `metadata.yaml` from the first members on, finds an added one at once).
//!
//! Memory is bounded: the encoder's and decoder's windows, one piece of input and output, and the
//! header blocks of one member (at most [`HELD_MAX`]). Nothing here performs I/O.

mod blocks;
mod encode;

use crate::decode::{Decoder, ExpansionLimits};
use crate::detect::{sniff, Format};
use crate::limits::{
    DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_EXPANSION_RATIO, PAX_HEADER_MAX, ROOTFS_HEADER_KEEP,
};
use crate::tar::{EntryHeader, TarWalker, Visitor};
pub use blocks::NewKind;
pub use encode::default_level;
use encode::Encoder;

/// Header blocks (with their GNU/PAX extension data) held for one member until its header says
/// what it is.
pub const HELD_MAX: usize = 4 * PAX_HEADER_MAX;

/// Which member(s) an edit applies to: by the full name Go's reader gives (GNU long name, PAX
/// `path` or ustar prefix + name; `./` is part of the name), and optionally only the n-th member
/// with that name (0-based, in archive order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: Vec<u8>,
    pub occurrence: Option<u64>,
}

impl Target {
    /// Every member with this name.
    pub fn name(name: impl Into<Vec<u8>>) -> Target {
        Target {
            name: name.into(),
            occurrence: None,
        }
    }
    /// Only the n-th member (0-based) with this name.
    pub fn nth(name: impl Into<Vec<u8>>, n: u64) -> Target {
        Target {
            name: name.into(),
            occurrence: Some(n),
        }
    }
    fn matches(&self, name: &[u8], occurrence: u64) -> bool {
        self.name == name && self.occurrence.is_none_or(|n| n == occurrence)
    }
    fn describe(&self) -> String {
        let name = String::from_utf8_lossy(&self.name)
            .escape_debug()
            .to_string();
        match self.occurrence {
            None => format!("\"{name}\""),
            Some(n) => format!("\"{name}\" (occurrence {n})"),
        }
    }
}

/// A member to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub name: Vec<u8>,
    pub kind: NewKind,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
    /// Modification time (Unix seconds; the core has no clock, the caller gives it).
    pub mtime: u64,
    pub content: Vec<u8>,
}

impl NewEntry {
    /// A regular file, mode 0644, owned by root.
    pub fn file(name: impl Into<Vec<u8>>, content: impl Into<Vec<u8>>, mtime: u64) -> NewEntry {
        NewEntry {
            name: name.into(),
            kind: NewKind::File,
            mode: 0o644,
            mtime,
            content: content.into(),
        }
    }
}

/// What to change. Every replace and drop target must match at least one member, or
/// [`UnifiedRewrite::finish`] fails (the plan was made for another file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// New content for regular-file members (the header keeps everything but the size).
    pub replace: Vec<(Target, Vec<u8>)>,
    /// Members left out (takes precedence over `replace`).
    pub drop: Vec<Target>,
    /// Members written first, in this order.
    pub add: Vec<NewEntry>,
}

/// How to write the result.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// Output codec; `None`: the input's.
    pub format: Option<Format>,
    /// Compression level; `None`: [`default_level`] (what the tool does by default, or what the
    /// input's header shows).
    pub level: Option<u32>,
    /// The inspector's expansion limits ([`crate::Options::max_decoded_bytes`]).
    pub max_decoded_bytes: u64,
    pub max_expansion_ratio: u64,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            format: None,
            level: None,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
        }
    }
}

/// Why the rewrite stopped: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteError {
    /// Byte offset in the input file (compressed), when the input is at fault.
    pub offset: Option<u64>,
    pub message: String,
}

impl RewriteError {
    fn new(offset: Option<u64>, message: impl Into<String>) -> RewriteError {
        RewriteError {
            offset,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RewriteError {}

/// What the rewrite did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RewriteSummary {
    /// SHA-256 of the output: the rewritten image's fingerprint.
    pub fingerprint: String,
    pub format: Format,
    pub level: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Decoded tar bytes read and written.
    pub tar_bytes_in: u64,
    pub tar_bytes_out: u64,
    /// Members walked in the input.
    pub members: u64,
    pub replaced: u64,
    pub dropped: u64,
    pub added: u64,
    /// Bytes after the end of the compressed stream, not copied.
    pub trailing_dropped: u64,
}

/// What the walk told about the last header block pushed.
#[derive(Default)]
struct Events {
    entry: Option<EntryHeader>,
}

impl Visitor for Events {
    fn entry(&mut self, header: &EntryHeader) -> bool {
        self.entry = Some(header.clone());
        false
    }
    fn data(&mut self, _: &[u8]) {}
    fn entry_end(&mut self) {}
}

/// Where the bytes of the member being walked go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Header blocks of a member not yet identified.
    Held,
    Copy,
    Skip,
}

/// The tar side: walk, route, write.
struct Tail {
    walker: TarWalker,
    events: Events,
    held: Vec<u8>,
    route: Route,
    edits: Edits,
    replace_hits: Vec<u64>,
    drop_hits: Vec<u64>,
    /// Members seen per name, for [`Target::occurrence`] (only names some edit targets).
    seen: Vec<(Vec<u8>, u64)>,
    enc: Encoder,
    members: u64,
    scratch: Vec<u8>,
    error: Option<RewriteError>,
}

impl Tail {
    fn occurrence(&mut self, name: &[u8]) -> u64 {
        if let Some((_, n)) = self.seen.iter_mut().find(|(s, _)| s == name) {
            *n += 1;
            return *n - 1;
        }
        let targeted = self.edits.drop.iter().any(|t| t.name == name)
            || self.edits.replace.iter().any(|(t, _)| t.name == name);
        if targeted {
            self.seen.push((name.to_vec(), 1));
        }
        0
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), RewriteError> {
        while !data.is_empty() {
            if self.walker.is_done() {
                // After the end-of-archive marker: copied as it is (GNU tar's record padding).
                self.walker.push(data, &mut self.events);
                return self.enc.write(data);
            }
            let n = self.walker.step_len().min(data.len());
            let (piece, rest) = data.split_at(n);
            data = rest;
            self.walker.push(piece, &mut self.events);
            if let Some(e) = self.walker.error() {
                let entry = e
                    .entry
                    .as_ref()
                    .map(|n| format!(" (member \"{}\")", n.escape_debug()))
                    .unwrap_or_default();
                return Err(RewriteError::new(
                    None,
                    format!(
                        "the tar archive is malformed at decoded offset {}{entry}: {} ({})",
                        e.offset, e.go_message, e.detail
                    ),
                ));
            }
            match self.route {
                Route::Held => {
                    self.held.extend_from_slice(piece);
                    if self.held.len() > HELD_MAX {
                        return Err(RewriteError::new(
                            None,
                            format!(
                                "more than {HELD_MAX} bytes of extended headers before one member, at decoded offset {}",
                                self.walker.offset()
                            ),
                        ));
                    }
                }
                Route::Copy => self.enc.write(piece)?,
                Route::Skip => {}
            }
            if let Some(h) = self.events.entry.take() {
                self.member(&h)?;
            }
            if self.walker.is_done() {
                // The end-of-archive marker (held as a header group with no member).
                let held = std::mem::take(&mut self.held);
                self.enc.write(&held)?;
                self.route = Route::Copy;
            } else if self.walker.at_header() && self.route != Route::Held {
                self.route = Route::Held;
            }
        }
        Ok(())
    }

    /// A member's header was read (its header group is in `held`): copy, drop or replace it.
    fn member(&mut self, h: &EntryHeader) -> Result<(), RewriteError> {
        self.members += 1;
        let occ = self.occurrence(&h.name);
        let held = std::mem::take(&mut self.held);
        let what = |e: String| {
            RewriteError::new(
                None,
                format!(
                    "member \"{}\" at decoded offset {}: {e}",
                    h.name_lossy().escape_debug(),
                    h.offset
                ),
            )
        };
        if let Some(i) = self.edits.drop.iter().position(|t| t.matches(&h.name, occ)) {
            self.drop_hits[i] += 1;
            self.scratch.clear();
            blocks::globals_only(&held, &mut self.scratch).map_err(what)?;
            self.enc.write(&self.scratch)?;
            self.route = Route::Skip;
        } else if let Some(i) = self
            .edits
            .replace
            .iter()
            .position(|(t, _)| t.matches(&h.name, occ))
        {
            if !matches!(h.kind, b'0' | b'7') || h.sparse.is_some() {
                let kind = match h.kind {
                    b'1' => "a hard link",
                    b'2' => "a symbolic link",
                    b'3' | b'4' => "a device node",
                    b'5' => "a directory",
                    b'6' => "a FIFO",
                    _ if h.sparse.is_some() => "a sparse file",
                    _ => "not a regular file",
                };
                return Err(what(format!(
                    "it is {kind}, so its content cannot be replaced (drop it and add a regular file instead)"
                )));
            }
            self.replace_hits[i] += 1;
            self.scratch.clear();
            let content = &self.edits.replace[i].1;
            blocks::replaced_group(&held, content.len() as u64, &mut self.scratch).map_err(what)?;
            blocks::padded(&mut self.scratch, content);
            self.enc.write(&self.scratch)?;
            self.route = Route::Skip;
        } else {
            self.enc.write(&held)?;
            self.route = Route::Copy;
        }
        self.held = held;
        self.held.clear();
        Ok(())
    }

    fn finish(&mut self) -> Result<(), RewriteError> {
        self.walker.finish();
        if let Some(e) = self.walker.error() {
            return Err(RewriteError::new(
                None,
                format!("the image ends too early: {} ({})", e.go_message, e.detail),
            ));
        }
        // No end marker (or a lone zero block): whatever was held is copied.
        let held = std::mem::take(&mut self.held);
        self.enc.write(&held)?;
        let mut missing = Vec::new();
        for (i, (t, _)) in self.edits.replace.iter().enumerate() {
            if self.replace_hits[i] == 0 {
                missing.push(format!("no member {} to replace", t.describe()));
            }
        }
        for (i, t) in self.edits.drop.iter().enumerate() {
            if self.drop_hits[i] == 0 {
                missing.push(format!("no member {} to drop", t.describe()));
            }
        }
        if !missing.is_empty() {
            return Err(RewriteError::new(None, missing.join("; ")));
        }
        Ok(())
    }
}

/// A streaming rewrite of a unified image (see the module documentation).
pub struct UnifiedRewrite {
    edits: Option<Edits>,
    opts: RewriteOptions,
    head: Vec<u8>,
    decoder: Option<Decoder>,
    tail: Option<Tail>,
    format: Option<Format>,
    level: u32,
    bytes_in: u64,
    error: Option<RewriteError>,
}

impl UnifiedRewrite {
    pub fn new(edits: Edits, options: RewriteOptions) -> UnifiedRewrite {
        UnifiedRewrite {
            edits: Some(edits),
            opts: options,
            head: Vec::new(),
            decoder: None,
            tail: None,
            format: None,
            level: 0,
            bytes_in: 0,
            error: None,
        }
    }

    /// The input's format, once known (after the first 64 KiB or at [`UnifiedRewrite::finish`]).
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    fn start(&mut self) -> Result<(), RewriteError> {
        let format = sniff(&self.head).ok_or_else(|| {
            RewriteError::new(
                Some(0),
                if self.head.is_empty() {
                    "the file is empty".to_string()
                } else {
                    "not a unified image: the file is not a tarball in a format LXD reads (Unsupported compression)".to_string()
                },
            )
        })?;
        if !format.is_tarball() {
            return Err(RewriteError::new(
                Some(0),
                format!(
                    "a {} file is not a unified image (it can only be the rootfs of a split image)",
                    format.name()
                ),
            ));
        }
        let limits = ExpansionLimits {
            max_decoded: self.opts.max_decoded_bytes,
            max_ratio: self.opts.max_expansion_ratio,
        };
        let decoder = Decoder::new(format, limits).ok_or_else(|| {
            RewriteError::new(
                Some(0),
                format!("lxdimg cannot decode {} images", format.name()),
            )
        })?;
        let out_format = self.opts.format.unwrap_or(format);
        let level = self.opts.level.unwrap_or_else(|| {
            if out_format == format {
                default_level(format, &self.head)
            } else {
                default_level(out_format, &[])
            }
        });
        let mut enc = Encoder::new(out_format, level)?;
        let edits = self.edits.take().unwrap_or_default();
        let mut first = Vec::new();
        for e in &edits.add {
            blocks::new_member(&e.name, e.kind, e.mode, e.mtime, &e.content, &mut first)?;
        }
        enc.write(&first)?;
        self.tail = Some(Tail {
            walker: TarWalker::new(),
            events: Events::default(),
            held: Vec::new(),
            route: Route::Held,
            replace_hits: vec![0; edits.replace.len()],
            drop_hits: vec![0; edits.drop.len()],
            edits,
            seen: Vec::new(),
            enc,
            members: 0,
            scratch: Vec::new(),
            error: None,
        });
        self.decoder = Some(decoder);
        self.format = Some(out_format);
        self.level = level;
        let head = std::mem::take(&mut self.head);
        self.decode(&head)
    }

    fn decode(&mut self, input: &[u8]) -> Result<(), RewriteError> {
        let (Some(d), Some(tail)) = (self.decoder.as_mut(), self.tail.as_mut()) else {
            return Ok(());
        };
        let r = d.push(input, &mut |out| {
            if tail.error.is_none() {
                if let Err(e) = tail.feed(out) {
                    tail.error = Some(e);
                }
            }
        });
        Self::check(d, tail, r)
    }

    fn check(
        d: &Decoder,
        tail: &mut Tail,
        r: Result<(), crate::decode::DecodeError>,
    ) -> Result<(), RewriteError> {
        if let Err(e) = r {
            return Err(RewriteError::new(
                Some(e.offset),
                format!(
                    "the image cannot be decoded at byte {}: {}",
                    e.offset, e.message
                ),
            ));
        }
        if let Some(e) = tail.error.take() {
            return Err(e);
        }
        if let Some(b) = d.bomb() {
            return Err(RewriteError::new(
                Some(b.compressed),
                b.describe("unified image"),
            ));
        }
        Ok(())
    }

    /// Feeds the next bytes of the image; appends the output produced so far to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let r = self.push_inner(input, out);
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        self.bytes_in += input.len() as u64;
        if self.tail.is_none() {
            let n = (ROOTFS_HEADER_KEEP - self.head.len()).min(input.len());
            self.head.extend_from_slice(&input[..n]);
            input = &input[n..];
            if self.head.len() < ROOTFS_HEADER_KEEP {
                return Ok(());
            }
            self.start()?;
        }
        self.decode(input)?;
        self.drain(out);
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        if let Some(t) = self.tail.as_mut() {
            if out.is_empty() {
                std::mem::swap(out, &mut t.enc.out);
            } else {
                out.append(&mut t.enc.out);
            }
        }
    }

    /// Ends the input: appends the rest of the output to `out` and says what was done. On an
    /// error the output so far is not a valid image and must be thrown away.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<RewriteSummary, RewriteError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.tail.is_none() {
            self.start()?;
        }
        let (Some(d), Some(tail)) = (self.decoder.as_mut(), self.tail.as_mut()) else {
            unreachable!("started");
        };
        let r = d.finish(&mut |o| {
            if tail.error.is_none() {
                if let Err(e) = tail.feed(o) {
                    tail.error = Some(e);
                }
            }
        });
        Self::check(d, tail, r)?;
        tail.finish()?;
        let sha = tail.enc.finish()?;
        let trailing_dropped = d.trailing().map_or(0, |t| t.len);
        let summary = RewriteSummary {
            fingerprint: sha,
            format: self.format.expect("started"),
            level: self.level,
            bytes_in: self.bytes_in,
            bytes_out: tail.enc.bytes_out,
            tar_bytes_in: tail.walker.offset(),
            tar_bytes_out: tail.enc.tar_bytes,
            members: tail.members,
            replaced: tail.replace_hits.iter().sum(),
            dropped: tail.drop_hits.iter().sum(),
            added: tail.edits.add.len() as u64,
            trailing_dropped,
        };
        self.drain(out);
        Ok(summary)
    }
}

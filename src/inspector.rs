//! The push-driven inspector: bytes in (any chunking), a [`Report`] out.

use crate::arch;
use crate::decode::{DecodeError, Decoder};
use crate::detect::{detect_lxd, sniff, Detection, Format, HEADER_LEN};
use crate::limits::*;
use crate::report::*;
use crate::rootfs;
use crate::tar::{EntryHeader, TarEnd, TarWalker, Visitor};
use crate::verdict::{self, LxdWalk, MetaDoc, SplitRootfs, Target, LXD_5_0, TARGETS};
use crate::yaml::{decode_into, ImageMetadata};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Caller-supplied context. The core has no clock and no file system: anything it needs to know
/// about the outside world comes in here.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Current Unix time, for "expired" findings. `None`: not checked.
    pub now: Option<i64>,
    /// File names, for the report (first file, then the rootfs of a split image).
    pub names: [Option<String>; 2],
    /// For a split image: the type the uploader declares (the multipart part name `rootfs` or
    /// `rootfs.img`). `None`: decided from the rootfs content, as the `lxc` client does.
    pub split_type: Option<ImageType>,
    /// Canonical architecture of the LXD host (`x86_64`, `aarch64`, …) for the `creatable`
    /// verdict. `None`: the architecture is not checked.
    pub host_arch: Option<String>,
}

/// Misuse of the inspector API (not a problem with the image: those are findings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// `start_rootfs` was called twice.
    RootfsAlreadyStarted,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::RootfsAlreadyStarted => {
                f.write_str("the rootfs file of this split image was already started")
            }
        }
    }
}

impl std::error::Error for ApiError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Unified,
    Metadata,
    Rootfs,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Unified => "unified",
            Role::Metadata => "metadata",
            Role::Rootfs => "rootfs",
        }
    }
}

/// Data of an entry kept for the report.
#[derive(Debug, Clone, Default)]
struct Kept {
    size: u64,
    data: Vec<u8>,
    regular: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Metadata(usize),
    Template,
    OsEtc,
    OsUsr,
    RootImg,
}

/// The tar visitor: applies LXD's walk rules and keeps the few entries worth keeping.
#[derive(Default)]
struct Collector {
    rootfs_mode: bool,
    lxd_stopped: bool,
    has_meta: bool,
    root: Option<ImageType>,
    docs: Vec<MetaDoc>,
    /// `metadata.yaml` entries LXD never reads (after its stop, or over the count limit).
    ignored_meta: Vec<(String, u64)>,
    /// Rootfs entries seen before the first `metadata.yaml`.
    root_before_meta: u64,
    /// lxd-5.0 already fails on the metadata decoded so far.
    early_error: bool,
    cur: Option<Keep>,
    cur_name: String,
    templates: BTreeMap<String, Kept>,
    templates_kept: usize,
    os_etc: Option<Kept>,
    os_etc_link: Option<Vec<u8>>,
    os_usr: Option<Kept>,
    root_entries: u64,
    root_bytes: u64,
    saw_container_root: bool,
    saw_vm_root: bool,
    root_img: Option<Kept>,
    /// First member whose name has a `..` component (GNU tar refuses to extract it).
    dotdot: Option<String>,
}

fn strip_dot(name: &[u8]) -> &[u8] {
    name.strip_prefix(b"./").unwrap_or(name)
}

impl Collector {
    fn keep(&mut self, k: Keep, h: &EntryHeader) -> bool {
        let kept = Kept {
            size: h.size,
            data: Vec::new(),
            regular: h.is_regular(),
        };
        match k {
            Keep::OsEtc => {
                if h.is_symlink() {
                    self.os_etc_link = Some(h.link.clone());
                }
                self.os_etc = Some(kept);
            }
            Keep::OsUsr => self.os_usr = Some(kept),
            Keep::RootImg => self.root_img = Some(kept),
            Keep::Template => {
                if self.templates.len() >= TEMPLATE_FILES_MAX {
                    return false;
                }
                self.templates.insert(self.cur_name.clone(), kept);
            }
            Keep::Metadata(_) => {}
        }
        self.cur = Some(k);
        true
    }
}

impl Visitor for Collector {
    fn entry(&mut self, h: &EntryHeader) -> bool {
        if self.dotdot.is_none() && h.name.split(|&b| b == b'/').any(|c| c == b"..") {
            self.dotdot = Some(h.name_lossy());
        }
        let name = strip_dot(&h.name);
        self.cur = None;
        if self.rootfs_mode {
            self.root_entries += 1;
            self.root_bytes += h.size;
            return match name {
                b"etc/os-release" => self.keep(Keep::OsEtc, h),
                b"usr/lib/os-release" => self.keep(Keep::OsUsr, h),
                _ => false,
            };
        }
        let mut wanted = false;
        if h.name == b"metadata.yaml" || h.name == b"./metadata.yaml" {
            if self.lxd_stopped || self.docs.len() >= METADATA_ENTRIES_MAX {
                self.ignored_meta.push((h.name_lossy(), h.offset));
            } else {
                self.has_meta = true;
                self.docs.push(MetaDoc {
                    name: h.name_lossy(),
                    regular: h.is_regular(),
                    size: h.size,
                    data: Vec::new(),
                    complete: h.size == 0,
                });
                self.cur = Some(Keep::Metadata(self.docs.len() - 1));
                wanted = h.size > 0;
                if !wanted {
                    self.metadata_decoded();
                }
            }
        } else if let Some(rest) = name.strip_prefix(b"rootfs/") {
            if !self.lxd_stopped {
                self.root = Some(ImageType::Container);
            }
            self.saw_container_root = true;
            if !self.has_meta {
                self.root_before_meta += 1;
            }
            self.root_entries += 1;
            self.root_bytes += h.size;
            wanted = match rest {
                b"etc/os-release" => self.keep(Keep::OsEtc, h),
                b"usr/lib/os-release" => self.keep(Keep::OsUsr, h),
                _ => false,
            };
        } else if name == b"rootfs.img" && (h.name == b"rootfs.img" || h.name == b"./rootfs.img") {
            if !self.lxd_stopped {
                self.root = Some(ImageType::VirtualMachine);
            }
            self.saw_vm_root = true;
            wanted = self.keep(Keep::RootImg, h);
        } else if let Some(t) = name.strip_prefix(b"templates/") {
            if !t.is_empty() && !t.contains(&b'/') {
                self.cur_name = String::from_utf8_lossy(t).into_owned();
                wanted = self.keep(Keep::Template, h);
            }
        }
        if self.has_meta && self.root.is_some() {
            self.lxd_stopped = true;
        }
        wanted
    }

    fn data(&mut self, chunk: &[u8]) {
        let add = |buf: &mut Vec<u8>, cap: usize| {
            let room = cap.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
        };
        match self.cur {
            Some(Keep::Metadata(i)) => add(&mut self.docs[i].data, METADATA_YAML_KEEP),
            Some(Keep::Template) => {
                let room = TEMPLATES_KEEP_TOTAL.saturating_sub(self.templates_kept);
                if let Some(t) = self.templates.get_mut(&self.cur_name) {
                    let before = t.data.len();
                    add(&mut t.data, TEMPLATE_KEEP.min(before + room));
                    self.templates_kept += t.data.len() - before;
                }
            }
            Some(Keep::OsEtc) => {
                if let Some(k) = self.os_etc.as_mut() {
                    add(&mut k.data, OS_RELEASE_KEEP)
                }
            }
            Some(Keep::OsUsr) => {
                if let Some(k) = self.os_usr.as_mut() {
                    add(&mut k.data, OS_RELEASE_KEEP)
                }
            }
            Some(Keep::RootImg) => {
                if let Some(k) = self.root_img.as_mut() {
                    add(&mut k.data, ROOTFS_HEADER_KEEP)
                }
            }
            None => {}
        }
    }

    fn entry_end(&mut self) {
        if let Some(Keep::Metadata(i)) = self.cur {
            self.docs[i].complete = true;
            self.metadata_decoded();
        }
        self.cur = None;
    }
}

impl Collector {
    /// A `metadata.yaml` entry is complete: LXD decodes it now, and may fail right here.
    fn metadata_decoded(&mut self) {
        if !self.early_error && verdict::decode_docs(&LXD_5_0, &self.docs).is_err() {
            self.early_error = true;
        }
    }

    /// Whether LXD has read all it will read of this tarball.
    fn lxd_settled(&self) -> bool {
        self.early_error || (self.lxd_stopped && !matches!(self.cur, Some(Keep::Metadata(_))))
    }
}

struct FileState {
    role: Role,
    name: Option<String>,
    /// This file's own SHA-256. `None` for the first file while it is the only one: its bytes are
    /// exactly the fingerprint's so far, so they are hashed once (see `start_rootfs`).
    sha: Option<Sha256>,
    size: u64,
    head: Vec<u8>,
    decided: bool,
    format: Option<Format>,
    decoder: Option<Decoder>,
    walker: TarWalker,
    col: Collector,
    decode_error: Option<DecodeError>,
    ended: bool,
    /// Reading stopped before the end of the file (`finish_early`, or `start_rootfs` after a
    /// partial metadata file).
    partial: bool,
    /// A squashfs rootfs's metadata tables: their range in the file, and the bytes kept so far.
    sq_tables: Option<(u64, u64, Vec<u8>)>,
}

impl FileState {
    fn new(role: Role, name: Option<String>) -> FileState {
        FileState {
            role,
            name,
            sha: (role == Role::Rootfs).then(Sha256::new),
            size: 0,
            head: Vec::with_capacity(ROOTFS_HEADER_KEEP),
            decided: false,
            format: None,
            decoder: None,
            walker: TarWalker::new(),
            col: Collector {
                rootfs_mode: role == Role::Rootfs,
                ..Default::default()
            },
            decode_error: None,
            ended: false,
            partial: false,
            sq_tables: None,
        }
    }

    fn decide(&mut self) {
        self.decided = true;
        self.format = sniff(&self.head);
        if let Some(f) = self.format {
            if f.is_tarball() {
                self.decoder = Decoder::new(f);
            }
        }
        if self.role == Role::Rootfs && self.format == Some(Format::Squashfs) {
            if let Some((start, end)) = rootfs::squashfs_tables_range(&self.head) {
                let end = end.min(start.saturating_add(SQUASHFS_TABLES_KEEP as u64));
                self.sq_tables = Some((start, end, Vec::new()));
                let head = std::mem::take(&mut self.head);
                self.keep_tables(0, &head);
                self.head = head;
            }
        }
        let head = std::mem::take(&mut self.head);
        self.decode(&head);
        self.head = head;
    }

    /// Keeps the part of `bytes` (at file offset `at`) that falls in the squashfs tables.
    fn keep_tables(&mut self, at: u64, bytes: &[u8]) {
        if let Some((start, end, kept)) = self.sq_tables.as_mut() {
            let from = (*start + kept.len() as u64).max(at);
            let to = (*end).min(at + bytes.len() as u64);
            if from < to && from == *start + kept.len() as u64 {
                kept.extend_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
            }
        }
    }

    fn decode(&mut self, bytes: &[u8]) {
        let FileState {
            decoder,
            walker,
            col,
            decode_error,
            ..
        } = self;
        let Some(d) = decoder.as_mut() else { return };
        if decode_error.is_some() {
            return;
        }
        if let Err(e) = d.push(bytes, &mut |out| walker.push(out, col)) {
            *decode_error = Some(e);
            // For LXD, the decompressor's output just ends here.
            walker.finish();
        }
    }

    fn feed(&mut self, piece: &[u8]) {
        if let Some(sha) = self.sha.as_mut() {
            sha.update(piece);
        }
        self.size += piece.len() as u64;
        if self.decided {
            if self.sq_tables.is_some() {
                self.keep_tables(self.size - piece.len() as u64, piece);
            }
            self.decode(piece);
            return;
        }
        let room = ROOTFS_HEADER_KEEP - self.head.len();
        let take = room.min(piece.len());
        self.head.extend_from_slice(&piece[..take]);
        if self.head.len() == ROOTFS_HEADER_KEEP {
            self.decide();
            if self.sq_tables.is_some() {
                self.keep_tables(self.size - (piece.len() - take) as u64, &piece[take..]);
            }
            self.decode(&piece[take..]);
        }
    }

    fn end(&mut self, complete: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.partial = !complete;
        if !self.decided {
            self.decide();
        }
        let FileState {
            decoder,
            walker,
            col,
            decode_error,
            ..
        } = self;
        if let Some(d) = decoder.as_mut() {
            if decode_error.is_none() {
                let r = if complete {
                    d.finish(&mut |out| walker.push(out, col))
                } else {
                    d.flush_stage(&mut |out| walker.push(out, col))
                };
                if let Err(e) = r {
                    *decode_error = Some(e);
                }
            }
            if complete {
                walker.finish();
            }
        }
    }

    /// Whether the lxd-5.0 verdict needs no more bytes of this file.
    fn settled(&self) -> bool {
        if self.ended {
            return true;
        }
        if !self.decided {
            return false;
        }
        if self.role == Role::Rootfs {
            return true; // only its first bytes are checked by the client
        }
        match detect_lxd(&self.head) {
            Detection::Format(f) if Some(f) == self.format && self.decoder.is_some() => {
                self.walker.is_done() || self.col.lxd_settled()
            }
            _ => true,
        }
    }

    fn hex(&self, fingerprint: &Sha256) -> String {
        hex(&self.sha.as_ref().unwrap_or(fingerprint).clone().finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inspector. Push the image's bytes with [`Inspector::push`] (any chunk sizes), call
/// [`Inspector::start_rootfs`] between the two files of a split image, then [`Inspector::finish`].
///
/// Nothing here performs I/O, reads a clock or spawns a thread; memory stays bounded by the limits
/// in [`crate::limits`] plus the decoder window of the stream.
pub struct Inspector {
    opts: Options,
    fingerprint: Sha256,
    files: Vec<FileState>,
    verdict_offset: Option<u64>,
}

impl Inspector {
    pub fn new(opts: Options) -> Inspector {
        let first = FileState::new(Role::Unified, opts.names[0].clone());
        Inspector {
            opts,
            fingerprint: Sha256::new(),
            files: vec![first],
            verdict_offset: None,
        }
    }

    fn current(&mut self) -> &mut FileState {
        self.files.last_mut().expect("at least one file")
    }

    /// Feeds the next bytes of the current file.
    pub fn push(&mut self, mut chunk: &[u8]) {
        self.fingerprint.update(chunk);
        while !chunk.is_empty() {
            let f = self.current();
            let to_boundary = (VERDICT_GRANULE - f.size % VERDICT_GRANULE) as usize;
            let n = to_boundary.min(chunk.len());
            f.feed(&chunk[..n]);
            chunk = &chunk[n..];
            if f.size % VERDICT_GRANULE == 0 {
                self.check_verdict();
            }
        }
    }

    /// Ends the metadata file of a split image; further pushes are the rootfs file.
    pub fn start_rootfs(&mut self) -> Result<(), ApiError> {
        if self.files.len() > 1 {
            return Err(ApiError::RootfsAlreadyStarted);
        }
        let first = &mut self.files[0];
        first.role = Role::Metadata;
        // The metadata file's own hash is the fingerprint's state at this point.
        first.sha = Some(self.fingerprint.clone());
        first.end(true);
        self.check_verdict();
        self.files
            .push(FileState::new(Role::Rootfs, self.opts.names[1].clone()));
        Ok(())
    }

    /// Like [`Inspector::start_rootfs`], after reading only part of the metadata file (`--quick`).
    pub fn start_rootfs_early(&mut self) -> Result<(), ApiError> {
        if self.files.len() > 1 {
            return Err(ApiError::RootfsAlreadyStarted);
        }
        self.files[0].role = Role::Metadata;
        self.files[0].sha = Some(self.fingerprint.clone());
        self.files[0].end(false);
        self.files
            .push(FileState::new(Role::Rootfs, self.opts.names[1].clone()));
        Ok(())
    }

    /// Bytes pushed so far, over both files.
    pub fn bytes_consumed(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether the lxd-5.0 verdict needs no more bytes of the file being pushed (the current file
    /// can be cut short, as LXD's import does, with `--quick`).
    pub fn current_file_settled(&self) -> bool {
        self.files.last().expect("a file").settled()
    }

    /// Whether the lxd-5.0 verdict is known from the bytes pushed so far.
    pub fn verdict_known(&self) -> bool {
        match self.files.as_slice() {
            [f] => f.settled() && f.role == Role::Unified,
            [m, r] => m.settled() && (r.decided || r.ended),
            _ => false,
        }
    }

    /// The lxd-5.0 verdict so far, once known.
    pub fn verdict(&self) -> Option<Verdict> {
        if !self.verdict_known() {
            return None;
        }
        let (walk, split) = self.walk();
        Some(verdict::evaluate(&LXD_5_0, &walk, split.as_ref()).0)
    }

    fn check_verdict(&mut self) {
        if self.verdict_offset.is_none() && self.verdict_known() {
            self.verdict_offset = Some(self.bytes_consumed());
        }
    }

    fn walk(&self) -> (LxdWalk<'_>, Option<SplitRootfs<'_>>) {
        let f = &self.files[0];
        let head = if f.decided {
            &f.head[..f.head.len().min(HEADER_LEN)]
        } else {
            &[][..]
        };
        let walk = LxdWalk {
            head,
            decoded_as: if f.decoder.is_some() {
                f.format
            } else {
                f.format.filter(|x| !x.is_tarball())
            },
            docs: &f.col.docs,
            root: f.col.root,
            tar_error: if f.col.lxd_stopped {
                None
            } else {
                f.walker.error()
            },
        };
        let split = self.files.get(1).map(|r| SplitRootfs {
            head: &r.head[..r.head.len().min(HEADER_LEN)],
            client_check: self.opts.split_type.is_none(),
        });
        (walk, split)
    }

    /// Ends the input and builds the report.
    pub fn finish(mut self) -> Report {
        for f in &mut self.files {
            f.end(true);
        }
        self.check_verdict();
        self.report(true)
    }

    /// Builds the report from what was pushed so far, without treating the end of the pushed
    /// bytes as the end of the file (`--quick`): no fingerprint, no truncation findings.
    pub fn finish_early(mut self) -> Report {
        for f in &mut self.files {
            f.end(false);
        }
        self.check_verdict();
        self.report(false)
    }

    fn report(self, complete: bool) -> Report {
        let complete = complete && self.files.iter().all(|f| !f.partial);
        let (walk, split) = self.walk();
        let mut verdicts = Vec::new();
        let mut md50 = None;
        for t in TARGETS.iter() {
            let (v, md) = verdict::evaluate(t, &walk, split.as_ref());
            if t.key == LXD_5_0.key {
                md50 = md;
            }
            verdicts.push(v);
        }
        let unpack = unpack_outcome(&self.files, &self.opts, complete);
        let arch_text = md50.as_ref().map(|m| m.architecture.clone());
        for (t, v) in TARGETS.iter().zip(verdicts.iter_mut()) {
            v.creatable = creatable(t, v, &unpack, arch_text.as_deref(), &self.opts);
        }
        let mut it = verdicts.into_iter();
        let mut next = || it.next().expect("five verdicts");
        let verdicts = Verdicts {
            lxd_5_0: next(),
            lxd_5_21: next(),
            lxd_6: next(),
            incus_6: next(),
            incus_7: next(),
        };

        let first = &self.files[0];
        // What metadata.yaml says, decoded as leniently as LXD 5.0 would before failing.
        let md = md50.or_else(|| {
            if first.col.docs.is_empty() {
                return None;
            }
            let mut md = ImageMetadata::default();
            for d in first.col.docs.iter().filter(|d| d.complete) {
                let _ = decode_into(&d.data, &mut md, LXD_5_0.dialect);
            }
            Some(md)
        });
        let rootfs_file = self.files.get(1);
        let split = rootfs_file.is_some();
        let image_type = if let Some(r) = rootfs_file {
            Some(
                self.opts
                    .split_type
                    .unwrap_or(if r.format == Some(Format::Qcow2) {
                        ImageType::VirtualMachine
                    } else {
                        ImageType::Container
                    }),
            )
        } else {
            first.col.root
        };
        let architecture = md
            .as_ref()
            .and_then(|m| arch::lookup(LXD_5_0.arch, &m.architecture))
            .map(|(_, n)| n.to_string());

        let mut findings = Findings::default();
        for f in &self.files {
            file_findings(f, &mut findings);
        }
        let templates = md
            .as_ref()
            .map(|m| template_reports(m, &first.col, &mut findings))
            .unwrap_or_default();
        if let Some(m) = &md {
            metadata_findings(m, &self.opts, &mut findings);
        }
        let os_release = os_release_of(rootfs_file.map(|r| &r.col).unwrap_or(&first.col));
        if let (Some(os), Some(m)) = (&os_release, &md) {
            os_release_findings(os, m, &mut findings);
        }
        let rootfs = rootfs_report(&self.files, image_type, &self.opts, &mut findings);
        if !complete {
            findings.push(
                "quick",
                Severity::Info,
                format!("reading stopped once LXD's verdict was known, after {} bytes; the fingerprint and checks past that point were not computed", self.bytes_consumed()),
                None,
                None,
                None,
            );
        }

        let fingerprint = complete.then(|| hex(&self.fingerprint.clone().finalize()));
        let files = self
            .files
            .iter()
            .map(|f| FileReport {
                role: f.role.name(),
                name: f.name.clone(),
                size: f.size,
                sha256: complete.then(|| f.hex(&self.fingerprint)),
                compression: match (f.size, f.format) {
                    (0, _) => "empty".into(),
                    (_, Some(fmt)) => fmt.name().into(),
                    (_, None) => "unknown".into(),
                },
                decoded_size: f.decoder.as_ref().map(|_| f.walker.offset()),
            })
            .collect();
        let tar = first.decoder.as_ref().map(|_| TarSummary {
            entries: first.walker.entries,
            bytes: first.walker.data_bytes,
            end: tar_end(&first.walker, complete && !first.partial),
        });
        let metadata = md.map(|m| MetadataReport {
            created: rfc3339(m.creation_date),
            expires: rfc3339(m.expiry_date),
            architecture: m.architecture,
            creation_date: m.creation_date,
            expiry_date: m.expiry_date,
            properties: m.properties.unwrap_or_default(),
            templates: m.templates.unwrap_or_default(),
        });
        let mut findings = findings.0;
        findings.sort_by_key(|f| f.severity);
        Report {
            short_fingerprint: fingerprint.as_ref().map(|f| f[..12].to_string()),
            fingerprint,
            format: if split {
                ImageFormat::Split
            } else {
                ImageFormat::Unified
            },
            files,
            image_type,
            architecture,
            verdicts,
            metadata,
            templates,
            findings,
            verdict_offset: self.verdict_offset,
            complete,
            tar,
            rootfs,
            os_release,
        }
    }
}

fn tar_end(w: &TarWalker, complete: bool) -> &'static str {
    if w.error().is_some() {
        return "error";
    }
    match w.end() {
        Some(TarEnd::Marker) => "marker",
        Some(TarEnd::LoneZeroBlock) => "lone-zero-block",
        Some(TarEnd::NoMarker) if complete => "no-marker",
        _ => "incomplete",
    }
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        code: &'static str,
        severity: Severity,
        message: String,
        file: Option<&'static str>,
        offset: Option<u64>,
        entry: Option<String>,
    ) {
        self.0.push(Finding {
            code,
            severity,
            message,
            file,
            offset,
            entry,
        });
    }
}

fn file_findings(f: &FileState, out: &mut Findings) {
    let role = Some(f.role.name());
    let what = match f.role {
        Role::Unified => "image",
        Role::Metadata => "metadata file",
        Role::Rootfs => "rootfs file",
    };
    if f.size == 0 && !f.partial {
        out.push(
            "empty-file",
            Severity::Error,
            format!("the {what} is empty"),
            role,
            Some(0),
            None,
        );
        return;
    }
    if f.format.is_none() && f.size > 0 {
        let hexhead: String = f.head.iter().take(8).map(|b| format!("{b:02x} ")).collect();
        out.push(
            "unknown-format",
            Severity::Error,
            format!("the {what} is none of gzip, bzip2, xz, lzma, zstd, tar, squashfs or qcow2 (first bytes: {})", hexhead.trim_end()),
            role,
            Some(0),
            None,
        );
    }
    if let (Some(real), Detection::Format(lxd)) = (f.format, detect_lxd(&f.head)) {
        if real != lxd && f.role != Role::Rootfs {
            out.push(
                "lxd-misdetects-format",
                Severity::Error,
                format!(
                    "the {what} is a plain {} but its first bytes match LXD's {} magic (the first member's name), so LXD pipes it through the wrong decompressor and finds nothing; rename or reorder the first member, or compress the tarball",
                    real.name(),
                    lxd.name()
                ),
                role,
                Some(0),
                None,
            );
        }
    }
    if f.format == Some(Format::Tar) && detect_lxd(&f.head) == Detection::Unsupported {
        out.push(
            "v7-tar",
            Severity::Error,
            format!("the {what} is a tar without the POSIX 'ustar' magic at offset 257 (V7 format), which LXD does not recognise; create it with GNU tar or in --format=gnu/pax, or compress it"),
            role,
            Some(257),
            None,
        );
    }
    if let Some(e) = &f.decode_error {
        if !f.partial {
            out.push(
                "decode-error",
                Severity::Error,
                format!("{} at byte {} of the {what}; LXD's import may still succeed if it read what it needed before this point, but unpacking (lxc launch) fails", e.message, e.offset),
                role,
                Some(e.offset),
                None,
            );
        }
    }
    if let Some(t) = f.decoder.as_ref().and_then(|d| d.trailing()) {
        let zeros = if t.all_zero { "zero " } else { "" };
        out.push(
            "trailing-data",
            if t.all_zero { Severity::Info } else { Severity::Warning },
            format!(
                "{} {zeros}bytes follow the end of the {} stream at byte {} of the {what}; LXD's import ignores them, but {} at unpack",
                t.len,
                f.format.map(|x| x.name()).unwrap_or("compressed"),
                t.offset,
                if t.all_zero { "decompressors usually tolerate zero padding" } else { "GNU tar may fail on the decompressor's warning" }
            ),
            role,
            Some(t.offset),
            None,
        );
    }
    if let Some(e) = f.walker.error() {
        if !f.partial {
            out.push(
                "tar-error",
                Severity::Error,
                format!("{} ({})", e.detail, e.go_message),
                role,
                None,
                e.entry.clone(),
            );
        }
    }
    if !f.partial && f.decoder.is_some() && f.decode_error.is_none() && f.walker.error().is_none() {
        match f.walker.end() {
            Some(TarEnd::NoMarker) => out.push(
                "tar-no-end-marker",
                Severity::Warning,
                format!("the tar stream of the {what} ends at decoded offset {} without the two zero blocks that mark the end of an archive", f.walker.offset()),
                role,
                None,
                None,
            ),
            Some(TarEnd::LoneZeroBlock) => out.push(
                "tar-lone-zero-block",
                Severity::Info,
                format!("the tar stream of the {what} ends with a single zero block (GNU tar warns \"A lone zero block\")"),
                role,
                None,
                None,
            ),
            _ => {}
        }
    }
    let c = &f.col;
    if f.role != Role::Rootfs {
        if c.docs.len() > 1 {
            out.push(
                "metadata-duplicate",
                Severity::Warning,
                format!("{} metadata.yaml entries before the rootfs; LXD decodes each on top of the previous one", c.docs.len()),
                role,
                None,
                Some(c.docs[1].name.clone()),
            );
        }
        for (name, at) in &c.ignored_meta {
            out.push(
                "metadata-ignored",
                Severity::Warning,
                format!("a further {name} at decoded offset {at} is never read by LXD (it stops once it has seen metadata.yaml and the rootfs)"),
                role,
                None,
                Some(name.clone()),
            );
        }
        if let Some(d) = c.docs.iter().find(|d| !d.regular) {
            out.push(
                "metadata-not-regular",
                Severity::Error,
                format!("{} is a link or special file, not a regular file: LXD 5.0 reads no data from it (\"EOF\"), newer LXD refuses it", d.name),
                role,
                None,
                Some(d.name.clone()),
            );
        }
        if c.root_before_meta > 1000 {
            out.push(
                "metadata-late",
                Severity::Warning,
                format!("metadata.yaml comes after {} rootfs entries; LXD has to decompress all of them before it can judge the image (put metadata.yaml first)", c.root_before_meta),
                role,
                None,
                None,
            );
        }
        if c.saw_container_root && c.saw_vm_root {
            out.push(
                "rootfs-and-disk",
                Severity::Warning,
                "the image has both rootfs/ entries and a rootfs.img; LXD takes the type of whichever it meets last before it stops reading".into(),
                role,
                None,
                None,
            );
        }
    }
}

fn metadata_findings(m: &ImageMetadata, opts: &Options, out: &mut Findings) {
    let file = None;
    const MAX: i64 = 253_402_300_799;
    for (key, v, allow_zero) in [
        ("creation_date", m.creation_date, false),
        ("expiry_date", m.expiry_date, true),
    ] {
        if (v == 0 && allow_zero) || (1..=MAX).contains(&v) {
            continue;
        }
        if v == 0 {
            continue; // "Missing creation date" is LXD's own verdict
        }
        out.push(
            "date-out-of-range",
            Severity::Error,
            format!(
                "{key} {v} is outside 1..{MAX} (year 1970 to 9999): {}",
                if v > MAX {
                    "LXD 5.0 writes the row but can never read it back, poisoning its image database"
                } else {
                    "a date before 1970 is not a real build time"
                }
            ),
            file,
            None,
            Some("metadata.yaml".into()),
        );
    }
    if m.expiry_date != 0 && m.creation_date != 0 && m.expiry_date < m.creation_date {
        out.push(
            "expiry-before-creation",
            Severity::Warning,
            format!(
                "expiry_date {} is before creation_date {}",
                m.expiry_date, m.creation_date
            ),
            file,
            None,
            Some("metadata.yaml".into()),
        );
    }
    if let Some(now) = opts.now {
        if m.expiry_date != 0 && m.expiry_date < now {
            out.push(
                "expired",
                Severity::Warning,
                format!(
                    "expiry_date {} ({}) is in the past",
                    m.expiry_date,
                    rfc3339(m.expiry_date).unwrap_or_default()
                ),
                file,
                None,
                Some("metadata.yaml".into()),
            );
        }
    }
    match &m.properties {
        None => out.push(
            "properties-missing",
            Severity::Warning,
            "metadata.yaml has no properties: map; `lxc image import FILE key=value` then crashes LXD's import operation (nil map)".into(),
            file,
            None,
            Some("metadata.yaml".into()),
        ),
        Some(p) => {
            for key in ["description", "os", "release"] {
                if p.get(key).map(|v| v.trim().is_empty()).unwrap_or(true) {
                    out.push(
                        "property-missing",
                        Severity::Warning,
                        format!("properties.{key} is missing or empty; `lxc image list` and simplestreams indexes show it"),
                        file,
                        None,
                        Some("metadata.yaml".into()),
                    );
                }
            }
        }
    }
}

fn template_reports(m: &ImageMetadata, c: &Collector, out: &mut Findings) -> Vec<TemplateReport> {
    let entry = Some("metadata.yaml".to_string());
    let mut list = Vec::new();
    let Some(templates) = &m.templates else {
        return list;
    };
    let mut used = std::collections::BTreeSet::new();
    for (path, t) in templates {
        let Some(t) = t else {
            out.push(
                "template-empty",
                Severity::Warning,
                format!("template rule {path:?} is empty (null)"),
                None,
                None,
                entry.clone(),
            );
            continue;
        };
        let when = t.when.clone().unwrap_or_default();
        for w in &when {
            if !matches!(w.as_str(), "create" | "copy" | "start" | "rename") {
                out.push(
                    "template-trigger-unknown",
                    Severity::Warning,
                    format!("template {path:?} has trigger {w:?}, which LXD never fires (known: create, copy, start, rename)"),
                    None,
                    None,
                    entry.clone(),
                );
            }
        }
        if when.is_empty() {
            out.push(
                "template-no-trigger",
                Severity::Warning,
                format!("template {path:?} has no triggers (when:), so it is never applied"),
                None,
                None,
                entry.clone(),
            );
        }
        if !path.starts_with('/') {
            out.push(
                "template-path-not-absolute",
                Severity::Warning,
                format!("template target {path:?} is not an absolute path"),
                None,
                None,
                entry.clone(),
            );
        }
        let file = c.templates.get(&t.template);
        if t.template.is_empty() {
            out.push("template-name-missing", Severity::Error, format!("template {path:?} names no template file (template:); applying it fails at first start"), None, None, entry.clone());
        } else if t.template.contains('/') || t.template == ".." || t.template == "." {
            out.push(
                "template-name-invalid",
                Severity::Error,
                format!("template {path:?} names file {:?}; it must be a plain file name under templates/", t.template),
                None,
                None,
                entry.clone(),
            );
        } else if file.is_none() {
            out.push(
                "template-file-missing",
                Severity::Error,
                format!("template {path:?} uses templates/{} which is not in the image; the instance fails at first start", t.template),
                None,
                None,
                entry.clone(),
            );
        } else if file.is_some_and(|f| !f.regular) {
            out.push(
                "template-file-not-regular",
                Severity::Warning,
                format!(
                    "templates/{} is a link or special file; newer LXD refuses symlinked templates",
                    t.template
                ),
                None,
                None,
                Some(format!("templates/{}", t.template)),
            );
        }
        used.insert(t.template.clone());
        list.push(TemplateReport {
            path: path.clone(),
            when,
            template: t.template.clone(),
            create_only: t.create_only,
            properties: t.properties.clone().unwrap_or_default(),
            present: file.is_some(),
            size: file.map(|f| f.size),
            text: file.map(|f| String::from_utf8_lossy(&f.data).into_owned()),
            text_truncated: file.is_some_and(|f| (f.data.len() as u64) < f.size),
        });
    }
    for name in c.templates.keys().filter(|n| !used.contains(*n)) {
        out.push(
            "template-file-unused",
            Severity::Info,
            format!("templates/{name} is not used by any template rule in metadata.yaml"),
            None,
            None,
            Some(format!("templates/{name}")),
        );
    }
    list
}

fn os_release_of(c: &Collector) -> Option<rootfs::OsRelease> {
    let etc = c.os_etc.as_ref()?;
    let text = if etc.regular {
        &etc.data
    } else {
        // Usually a symlink to ../usr/lib/os-release.
        let link = c.os_etc_link.as_deref().unwrap_or_default();
        if link.ends_with(b"usr/lib/os-release") {
            &c.os_usr.as_ref()?.data
        } else {
            return None;
        }
    };
    Some(rootfs::os_release(text))
}

fn os_release_findings(os: &rootfs::OsRelease, m: &ImageMetadata, out: &mut Findings) {
    let Some(p) = &m.properties else { return };
    let entry = Some("rootfs/etc/os-release".to_string());
    if let Some(v) = p.get("os").filter(|v| !v.is_empty()) {
        if !os.matches_os(v) {
            out.push(
                "os-release-mismatch",
                Severity::Warning,
                format!(
                    "properties.os is {v:?} but the rootfs's os-release says ID={:?} NAME={:?}",
                    os.id.clone().unwrap_or_default(),
                    os.name.clone().unwrap_or_default()
                ),
                None,
                None,
                entry.clone(),
            );
        }
    }
    if let Some(v) = p.get("release").filter(|v| !v.is_empty()) {
        if !os.matches_release(v) {
            out.push(
                "os-release-mismatch",
                Severity::Warning,
                format!(
                    "properties.release is {v:?} but the rootfs's os-release says VERSION_ID={:?} VERSION_CODENAME={:?}",
                    os.version_id.clone().unwrap_or_default(),
                    os.version_codename.clone().unwrap_or_default()
                ),
                None,
                None,
                entry,
            );
        }
    }
}

fn rootfs_report(
    files: &[FileState],
    ty: Option<ImageType>,
    opts: &Options,
    out: &mut Findings,
) -> Option<RootfsReport> {
    let first = &files[0];
    let Some(r) = files.get(1) else {
        // Unified: the rootfs/ tree or rootfs.img inside the tarball.
        let c = &first.col;
        if let (Some(ImageType::VirtualMachine), Some(img)) = (ty, &c.root_img) {
            let (q, problems) = rootfs::qcow2(&img.data, img.size);
            if img.data.len() < 4 || img.data[..4] != *b"QFI\xfb" {
                out.push(
                    "vm-disk-not-qcow2",
                    Severity::Error,
                    "rootfs.img is not a qcow2 image; LXD accepts it at import but instance creation fails (\"Unexpected image format\")".into(),
                    Some("unified"),
                    None,
                    Some("rootfs.img".into()),
                );
            } else {
                for p in problems {
                    out.push(
                        "qcow2-invalid",
                        Severity::Error,
                        p,
                        Some("unified"),
                        None,
                        Some("rootfs.img".into()),
                    );
                }
            }
            return Some(RootfsReport {
                format: "qcow2".into(),
                entries: None,
                bytes: Some(img.size),
                squashfs: None,
                qcow2: q,
            });
        }
        if c.saw_container_root {
            return Some(RootfsReport {
                format: "tree".into(),
                entries: Some(c.root_entries),
                bytes: Some(c.root_bytes),
                squashfs: None,
                qcow2: None,
            });
        }
        return None;
    };
    let role = Some("rootfs");
    let complete = !r.partial;
    let mut rep = RootfsReport {
        format: r.format.map(|f| f.name().to_string()).unwrap_or_else(|| {
            if r.size == 0 {
                "empty".into()
            } else {
                "unknown".into()
            }
        }),
        entries: None,
        bytes: None,
        squashfs: None,
        qcow2: None,
    };
    match r.format {
        Some(Format::Squashfs) => {
            let (sb, problems) =
                rootfs::squashfs(&r.head, if complete { r.size } else { u64::MAX });
            rep.squashfs = sb;
            for p in problems.into_iter().chain(squashfs_table_problems(r)) {
                out.push("squashfs-invalid", Severity::Error, p, role, None, None);
            }
            if ty == Some(ImageType::VirtualMachine) {
                out.push(
                    "rootfs-squashfs-as-vm",
                    Severity::Error,
                    "a squashfs rootfs cannot be a virtual-machine disk".into(),
                    role,
                    None,
                    None,
                );
            }
        }
        Some(Format::Qcow2) => {
            let (q, problems) = rootfs::qcow2(&r.head, if complete { r.size } else { u64::MAX });
            rep.qcow2 = q;
            for p in problems {
                out.push("qcow2-invalid", Severity::Error, p, role, None, None);
            }
            if opts.split_type == Some(ImageType::Container) {
                out.push(
                    "rootfs-qcow2-as-container",
                    Severity::Error,
                    "a qcow2 disk was given as a container rootfs; LXD imports it but `lxc launch` fails with \"Unsupported image format: .qcow2\"".into(),
                    role,
                    None,
                    None,
                );
            }
        }
        Some(f) if f.is_tarball() && r.decoder.is_some() => {
            rep.entries = Some(r.walker.entries);
            rep.bytes = Some(r.walker.data_bytes);
            if ty == Some(ImageType::VirtualMachine) {
                out.push(
                    "rootfs-tarball-as-vm",
                    Severity::Error,
                    "a tarball rootfs cannot be a virtual-machine disk".into(),
                    role,
                    None,
                    None,
                );
            }
            if complete && r.walker.entries == 0 {
                out.push(
                    "rootfs-empty",
                    Severity::Warning,
                    "the rootfs tarball has no entries".into(),
                    role,
                    None,
                    None,
                );
            }
        }
        _ if r.size > 0 => {
            out.push(
                "rootfs-unsupported",
                Severity::Error,
                "the rootfs is neither squashfs, qcow2 nor a tarball; `lxc image import` refuses it (\"Unsupported compression\") and the server would fail to unpack it".into(),
                role,
                Some(0),
                None,
            );
        }
        _ => {}
    }
    Some(rep)
}

/// What GNU tar, the decompressors, unsquashfs and qemu-img make of the whole image when LXD
/// unpacks it for a new instance (independent of the LXD version).
fn unpack_outcome(files: &[FileState], opts: &Options, complete: bool) -> Creatable {
    if !complete {
        return Creatable::unknown("not-checked", "reading stopped once the import verdict was known (--quick): creatability was not checked".into());
    }
    let split = files.len() > 1;
    let ty = if split {
        opts.split_type
            .unwrap_or(if files[1].format == Some(Format::Qcow2) {
                ImageType::VirtualMachine
            } else {
                ImageType::Container
            })
    } else {
        files[0].col.root.unwrap_or(ImageType::Container)
    };
    for f in files {
        if let Some(c) = tarball_outcome(f) {
            return c;
        }
    }
    if ty == ImageType::VirtualMachine {
        let head: &[u8] = if split {
            &files[1].head
        } else {
            files[0]
                .col
                .root_img
                .as_ref()
                .map(|k| k.data.as_slice())
                .unwrap_or(&[])
        };
        if head.len() < 4 || head[..4] != *b"QFI\xfb" {
            return Creatable::no("qcow2-invalid", "Unexpected image format \"raw\"".into());
        }
        return Creatable::unknown(
            "virtual-machine",
            "virtual-machine images are converted by qemu-img and need QEMU/KVM on the host; lxdimg checks only the qcow2 header".into(),
        );
    }
    if let Some(r) = files.get(1) {
        match r.format {
            Some(Format::Squashfs) => {
                let (_, problems) = rootfs::squashfs(&r.head, r.size);
                if let Some(p) = problems
                    .first()
                    .cloned()
                    .or_else(|| squashfs_table_problems(r).into_iter().next())
                {
                    return Creatable::no(
                        "squashfs-invalid",
                        format!("Failed creating instance from image: Unpack failed: Failed to run: unsquashfs -f -d <instance>/rootfs -n <image>.rootfs: Process exited with non-zero value 1 (FATAL ERROR: File system corruption detected) [lxdimg: {p}]"),
                    );
                }
            }
            Some(Format::Qcow2) => {
                return Creatable::no(
                    "rootfs-unsupported",
                    "Failed creating instance from image: Unsupported image format: .qcow2".into(),
                )
            }
            Some(f) if f.is_tarball() => {}
            _ if r.size == 0 => {
                return Creatable::no(
                    "rootfs-unsupported",
                    "Failed creating instance from image: EOF".into(),
                )
            }
            _ => {
                return Creatable::no(
                    "rootfs-unsupported",
                    "Failed creating instance from image: Unsupported compression".into(),
                )
            }
        }
    }
    Creatable::yes()
}

/// LXD's error when GNU tar (with its decompressor) fails to unpack a tarball.
fn unpack_failed(fmt: Format, role: Role, stderr: &str) -> String {
    let flag = match fmt {
        Format::Gzip => "-zxf",
        Format::Bzip2 => "-jxf",
        Format::Xz => "-Jxf",
        Format::Lzma => "--lzma -xf",
        Format::Zstd => "--zstd -xf",
        _ => "-xf",
    };
    let dest = if role == Role::Rootfs {
        "<instance>/rootfs"
    } else {
        "<instance>"
    };
    format!(
        "Failed creating instance from image: Unpack failed: Failed to run: tar --restrict --force-local -C {dest} --numeric-owner --xattrs-include=* {flag} -: Process exited with non-zero value 2 ({stderr})"
    )
}

/// The first line the decompressor prints for a decoding error.
/// Problems in a squashfs rootfs's metadata blocks (empty if none or not kept).
fn squashfs_table_problems(r: &FileState) -> Vec<String> {
    match &r.sq_tables {
        Some((_, _, kept)) if !r.partial => rootfs::squashfs_tables(&r.head, kept),
        _ => Vec::new(),
    }
}

fn tool_stderr(fmt: Format, e: &DecodeError) -> String {
    let m = e.message.as_str();
    let truncated = m.contains("nexpected end")
        || m.contains("ends unexpectedly")
        || m.contains("premature end");
    match fmt {
        Format::Gzip => m.replacen("gzip: ", "gzip: stdin: ", 1),
        Format::Xz | Format::Lzma if truncated => "xz: (stdin): Unexpected end of input".into(),
        Format::Xz | Format::Lzma => "xz: (stdin): Compressed data is corrupt".into(),
        Format::Bzip2 if truncated => "bzip2: Compressed file ends unexpectedly;".into(),
        Format::Bzip2 => "bzip2: Data integrity error when decompressing.".into(),
        Format::Zstd if truncated => "/*stdin*\\ : Read error (39) : premature end ".into(),
        _ => m.to_string(),
    }
}

/// A tarball's stream, as the decompressor and GNU tar see it when reading it to the end.
fn tarball_outcome(f: &FileState) -> Option<Creatable> {
    let fmt = f.format?;
    f.decoder.as_ref()?;
    let whose = |detail: String| format!(" [lxdimg: {detail} in the {} file]", f.role.name());
    if let Some(e) = &f.decode_error {
        let msg = unpack_failed(fmt, f.role, &tool_stderr(fmt, e))
            + &whose(format!("{} at byte {}", e.message, e.offset));
        return Some(Creatable::no("decode-error", msg));
    }
    if let Some(t) = f.decoder.as_ref().and_then(|d| d.trailing()) {
        // Measured with LXD 5.0.2's unpack: gzip ignores trailing zero bytes but warns (exit 2)
        // on any other trailing data, which GNU tar treats as failure; bzip2 only warns; zstd,
        // xz and lzma refuse anything after the stream (xz's valid 4-byte padding is decoded).
        let tool = match fmt {
            Format::Gzip if !t.all_zero => {
                "gzip: stdin: decompression OK, trailing garbage ignored"
            }
            Format::Zstd => "zstd: /*stdin*\\: unsupported format ",
            Format::Xz | Format::Lzma => "xz: (stdin): Compressed data is corrupt",
            _ => "",
        };
        if !tool.is_empty() {
            let msg = unpack_failed(fmt, f.role, tool)
                + &whose(format!("{} trailing bytes at byte {}", t.len, t.offset));
            return Some(Creatable::no("trailing-data", msg));
        }
    }
    if let Some(name) = &f.col.dotdot {
        let msg = unpack_failed(
            fmt,
            f.role,
            &format!("tar: {name}: Member name contains '..'"),
        );
        return Some(Creatable::no("tar-error", msg));
    }
    if let Some(e) = f.walker.error().filter(|e| !e.in_header) {
        let gnu = if e.go_message == crate::tar::ERR_UNEXPECTED_EOF {
            "tar: Unexpected EOF in archive"
        } else {
            "tar: Skipping to next header\ntar: Exiting with failure status due to previous errors"
        };
        return Some(Creatable::no(
            "tar-error",
            unpack_failed(fmt, f.role, gnu) + &whose(e.detail.clone()),
        ));
    }
    None
}

/// The `creatable` verdict of one target: its import verdict, the unpack outcome, and whether
/// the host can run the image's architecture (LXD's personalities: i686 on x86_64, …).
fn creatable(
    t: &Target,
    v: &Verdict,
    unpack: &Creatable,
    arch_text: Option<&str>,
    opts: &Options,
) -> Creatable {
    if !v.accepted {
        return Creatable::unknown(
            "import-rejected",
            "the image is not imported, so no instance can be created from it".into(),
        );
    }
    if unpack.ok == Some(false) {
        return unpack.clone();
    }
    if let (Some(host), Some(a)) = (opts.host_arch.as_deref(), arch_text) {
        if let Some((_, name)) = arch::lookup(t.arch, a) {
            if !arch::personalities(host).contains(&name) {
                return Creatable::no(
                    "architecture",
                    format!("Failed creating instance record: Requested architecture isn't supported by this host [lxdimg: {name} image, {host} host]"),
                );
            }
        }
    }
    unpack.clone()
}

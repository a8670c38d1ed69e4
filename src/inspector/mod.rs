//! The push-driven inspector: bytes in (any chunking), a [`Report`] out.
//!
//! This file is the state machine only: it routes bytes to the current file, ends the metadata
//! file of a split image, tracks when the reference verdict becomes known, and hands read-only
//! views of the files to [`crate::assemble`] at the end.

mod collector;
mod file;

use crate::assemble;
use crate::decode::ExpansionLimits;
use crate::limits::{DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_EXPANSION_RATIO, VERDICT_GRANULE};
use crate::report::{FileRole, ImageType, Report, Verdict};
use crate::verdict::{self, REFERENCE};
use crate::view::ImageView;
use file::FileState;
use sha2::{Digest, Sha256};

/// Caller-supplied context. The core has no clock and no file system: anything it needs to know
/// about the outside world comes in here.
#[derive(Debug, Clone)]
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
    /// Expansion limit: decoding of a compressed file stops, with a `decompression-bomb` finding,
    /// once it has decoded more than this many bytes *and* more than [`Options::max_expansion_ratio`]
    /// times the compressed bytes read so far. Default [`DEFAULT_MAX_DECODED_BYTES`] (1 GiB).
    pub max_decoded_bytes: u64,
    /// Expansion limit: decoded bytes per compressed byte read (see
    /// [`Options::max_decoded_bytes`]). Default [`DEFAULT_MAX_EXPANSION_RATIO`] (100).
    pub max_expansion_ratio: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            now: None,
            names: [None, None],
            split_type: None,
            host_arch: None,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
        }
    }
}

impl Options {
    fn limits(&self) -> ExpansionLimits {
        ExpansionLimits {
            max_decoded: self.max_decoded_bytes,
            max_ratio: self.max_expansion_ratio,
        }
    }
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
        let first = FileState::new(FileRole::Unified, opts.names[0].clone(), opts.limits());
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
        self.end_metadata(true)
    }

    /// Like [`Inspector::start_rootfs`], after reading only part of the metadata file (`--quick`).
    pub fn start_rootfs_early(&mut self) -> Result<(), ApiError> {
        self.end_metadata(false)
    }

    fn end_metadata(&mut self, complete: bool) -> Result<(), ApiError> {
        if self.files.len() > 1 {
            return Err(ApiError::RootfsAlreadyStarted);
        }
        let first = &mut self.files[0];
        first.role = FileRole::Metadata;
        // The metadata file's own hash is the fingerprint's state at this point.
        first.sha = Some(self.fingerprint.clone());
        first.end(complete);
        if complete {
            self.check_verdict();
        }
        self.files.push(FileState::new(
            FileRole::Rootfs,
            self.opts.names[1].clone(),
            self.opts.limits(),
        ));
        Ok(())
    }

    /// Bytes pushed so far, over both files.
    pub fn bytes_consumed(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether the reference verdict needs no more bytes of the file being pushed (the current file
    /// can be cut short, as LXD's import does, with `--quick`).
    pub fn current_file_settled(&self) -> bool {
        self.files.last().expect("a file").settled()
    }

    /// Whether the reference verdict is known from the bytes pushed so far. Until
    /// [`Inspector::start_rootfs`], the first file is read as a unified image: for a split image,
    /// ask only while its rootfs is pushed.
    pub fn verdict_known(&self) -> bool {
        match self.files.as_slice() {
            [f] => f.settled() && f.role == FileRole::Unified,
            [m, r] => m.settled() && (r.decided || r.ended()),
            _ => false,
        }
    }

    /// The reference target's verdict so far, once known.
    pub fn verdict(&self) -> Option<Verdict> {
        if !self.verdict_known() {
            return None;
        }
        let view = self.view();
        let (walk, split) = view.lxd_walk();
        Some(verdict::evaluate(&REFERENCE, &walk, split.as_ref(), None).0)
    }

    fn check_verdict(&mut self) {
        if self.verdict_offset.is_none() && self.verdict_known() {
            self.verdict_offset = Some(self.bytes_consumed());
        }
    }

    fn view(&self) -> ImageView<'_> {
        ImageView {
            files: self.files.iter().map(FileState::view).collect(),
            split_type: self.opts.split_type,
        }
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
        let complete = complete && self.files.iter().all(|f| !f.partial());
        let hashes = self
            .files
            .iter()
            .map(|f| {
                complete.then(|| {
                    hex(&f
                        .sha
                        .as_ref()
                        .unwrap_or(&self.fingerprint)
                        .clone()
                        .finalize())
                })
            })
            .collect();
        let fingerprint = complete.then(|| hex(&self.fingerprint.clone().finalize()));
        assemble::report(assemble::Inputs {
            image: &self.view(),
            opts: &self.opts,
            fingerprint,
            hashes,
            bytes_consumed: self.bytes_consumed(),
            verdict_offset: self.verdict_offset,
            complete,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

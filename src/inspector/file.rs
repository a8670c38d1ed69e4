//! One input file as it streams past: its hash, head, format, decoder and tar walk.

use super::collector::Collector;
use crate::decode::{DecodeError, Decoder, ExpansionLimits};
use crate::detect::{detect_lxd, sniff, Detection, Format};
use crate::limits::{DECODE_PIECE, ROOTFS_HEADER_KEEP, SQUASHFS_TABLES_KEEP};
use crate::report::FileRole;
use crate::rootfs;
use crate::tar::TarWalker;
use crate::view::{FileView, TarView};
use sha2::{Digest, Sha256};

pub(super) struct FileState {
    pub(super) role: FileRole,
    name: Option<String>,
    /// This file's own SHA-256. `None` for the first file while it is the only one: its bytes are
    /// exactly the fingerprint's so far, so they are hashed once (see `Inspector::start_rootfs`).
    pub(super) sha: Option<Sha256>,
    pub(super) size: u64,
    head: Vec<u8>,
    pub(super) decided: bool,
    format: Option<Format>,
    decoder: Option<Decoder>,
    walker: TarWalker,
    col: Collector,
    decode_error: Option<DecodeError>,
    ended: bool,
    /// Reading stopped before the end of the file (`finish_early`, or `start_rootfs_early`).
    partial: bool,
    /// A squashfs rootfs's metadata tables: their range in the file, and the bytes kept so far.
    sq_tables: Option<(u64, u64, Vec<u8>)>,
    limits: ExpansionLimits,
}

impl FileState {
    pub(super) fn new(role: FileRole, name: Option<String>, limits: ExpansionLimits) -> FileState {
        FileState {
            role,
            name,
            sha: (role == FileRole::Rootfs).then(Sha256::new),
            size: 0,
            head: Vec::with_capacity(ROOTFS_HEADER_KEEP),
            decided: false,
            format: None,
            decoder: None,
            walker: TarWalker::new(),
            col: Collector::new(role == FileRole::Rootfs),
            decode_error: None,
            ended: false,
            partial: false,
            sq_tables: None,
            limits,
        }
    }

    fn decide(&mut self) {
        self.decided = true;
        self.format = sniff(&self.head);
        if let Some(f) = self.format {
            if f.is_tarball() {
                self.decoder = Decoder::new(f, self.limits);
            }
        }
        if let (FileRole::Rootfs, Some(d)) = (self.role, self.decoder.as_mut()) {
            d.coarse(); // LXD's import verdict never depends on a split rootfs's content
        }
        if self.role == FileRole::Rootfs && self.format == Some(Format::Squashfs) {
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
        let mut bytes = bytes;
        // Piece by piece, so that the switch to longer decoder calls happens at the same place
        // whatever the caller's chunking.
        while !bytes.is_empty() && !d.stopped() {
            let n = (DECODE_PIECE - (d.fed() % DECODE_PIECE as u64) as usize).min(bytes.len());
            if let Err(e) = d.push(&bytes[..n], &mut |out| walker.push(out, col)) {
                *decode_error = Some(e);
                // For LXD, the decompressor's output just ends here.
                walker.finish();
            } else if d.bomb().is_some() {
                // Decoding stopped at the expansion limit: the walk is left where it was, neither
                // finished nor failed (LXD would have read on).
                break;
            } else if walker.is_done() || col.lxd_settled() {
                d.coarse();
            }
            bytes = &bytes[n..];
        }
    }

    /// The next bytes of the file.
    pub(super) fn feed(&mut self, piece: &[u8]) {
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

    /// The end of the file (`complete`), or of what will be read of it.
    pub(super) fn end(&mut self, complete: bool) {
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
            if d.bomb().is_some() {
                return;
            }
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
            // Not when the limit stopped decoding just now (the stream did not end there).
            if complete && d.bomb().is_none() {
                walker.finish();
            }
        }
    }

    pub(super) fn ended(&self) -> bool {
        self.ended
    }

    pub(super) fn partial(&self) -> bool {
        self.partial
    }

    /// Whether the reference verdict needs no more bytes of this file.
    pub(super) fn settled(&self) -> bool {
        if self.ended {
            return true;
        }
        if !self.decided {
            return false;
        }
        if self.role == FileRole::Rootfs {
            return true; // only its first bytes are checked by the client
        }
        if self.decoder.as_ref().is_some_and(|d| d.bomb().is_some()) {
            return true; // nothing more is decoded
        }
        match detect_lxd(&self.head) {
            Detection::Format(f) if Some(f) == self.format && self.decoder.is_some() => {
                self.walker.is_done() || self.col.lxd_settled()
            }
            _ => true,
        }
    }

    /// What was learned so far, read-only.
    pub(super) fn view(&self) -> FileView<'_> {
        FileView {
            role: self.role,
            name: self.name.as_deref(),
            size: self.size,
            partial: self.partial,
            format: self.format,
            head: if self.decided { &self.head } else { &[] },
            tar: self.decoder.as_ref().map(|_| TarView {
                entries: self.walker.entries,
                data_bytes: self.walker.data_bytes,
                offset: self.walker.offset(),
                end: self.walker.end(),
                error: self.walker.error(),
            }),
            decode_error: self.decode_error.as_ref(),
            bomb: self.decoder.as_ref().and_then(Decoder::bomb),
            trailing: self.decoder.as_ref().and_then(|d| d.trailing()),
            collected: &self.col.out,
            squashfs_tables: self.sq_tables.as_ref().map(|(_, _, kept)| kept.as_slice()),
        }
    }
}

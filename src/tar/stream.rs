//! A tarball file as it streams past, for the readers that only need its members (`lxdimg make`'s
//! rootfs probe, `lxdimg repair`'s metadata reader): the codec sniffed from the first bytes as the
//! inspector does ([`sniff`]), the stream decoded within the expansion limits, the tar walked.
//! The visitor is passed to each call, so its owner keeps it beside this reader.

use super::{TarError, TarWalker, Visitor};
use crate::decode::{Bomb, DecodeError, Decoder, ExpansionLimits};
use crate::detect::{sniff, Format};
use crate::limits::ROOTFS_HEADER_KEEP as HEADER_LEN;

pub struct TarballStream {
    head: Vec<u8>,
    size: u64,
    format: Option<Format>,
    decided: bool,
    decoder: Option<Decoder>,
    walker: TarWalker,
    error: Option<DecodeError>,
    limits: ExpansionLimits,
    /// The caller has what it needs: nothing more is decoded.
    stopped: bool,
}

/// How the stream ended (after [`TarballStream::finish`]), the first problem first.
pub enum TarballEnd<'a> {
    /// The first bytes are no format LXD reads.
    Unrecognised,
    /// A format that is not a tarball (squashfs, qcow2): its files are not read here.
    NotATarball(Format),
    /// Decoding stopped at the expansion limits.
    Bomb(Bomb),
    /// The compressed stream is broken.
    Decode(&'a DecodeError),
    /// The tar stream is broken.
    Tar(&'a TarError),
    /// Read to the end of the tar, or stopped by the caller.
    Complete,
}

impl TarballStream {
    pub fn new(limits: ExpansionLimits) -> TarballStream {
        TarballStream {
            head: Vec::with_capacity(HEADER_LEN),
            size: 0,
            format: None,
            decided: false,
            decoder: None,
            walker: TarWalker::new(),
            error: None,
            limits,
            stopped: false,
        }
    }

    /// The next bytes of the file (any chunking).
    pub fn push(&mut self, chunk: &[u8], v: &mut dyn Visitor) {
        self.size += chunk.len() as u64;
        if self.decided {
            self.decode(chunk, v);
            return;
        }
        let take = (HEADER_LEN - self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..take]);
        if self.head.len() == HEADER_LEN {
            self.decide(v);
            self.decode(&chunk[take..], v);
        }
    }

    /// The end of the file: flushes the decoder and ends the walk.
    pub fn finish(&mut self, v: &mut dyn Visitor) {
        if !self.decided {
            self.decide(v);
        }
        let TarballStream { decoder, walker, error, stopped, .. } = self;
        if let Some(d) = decoder.as_mut().filter(|_| !*stopped) {
            if error.is_none() && d.bomb().is_none() && !walker.is_done() {
                if let Err(e) = d.finish(&mut |out| walker.push(out, v)) {
                    *error = Some(e);
                }
            }
            walker.finish();
        }
    }

    /// Decode nothing more (the caller has what it needs).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// The format, once the first bytes are read.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Bytes pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the format is known and is not a tarball (squashfs, qcow2, unknown).
    pub fn not_a_tarball(&self) -> bool {
        self.decided && self.decoder.is_none()
    }

    /// Whether nothing more will be read: not a tarball, the tar stream ended, or it failed.
    pub fn done(&self) -> bool {
        self.not_a_tarball() || self.stopped || self.walker.is_done() || self.error.is_some()
    }

    /// How the stream ended (meaningful after [`TarballStream::finish`]).
    pub fn end(&self) -> TarballEnd<'_> {
        match (&self.decoder, self.format) {
            (_, None) => TarballEnd::Unrecognised,
            (None, Some(f)) => TarballEnd::NotATarball(f),
            (Some(d), _) => {
                if let Some(b) = d.bomb() {
                    TarballEnd::Bomb(b)
                } else if let Some(e) = &self.error {
                    TarballEnd::Decode(e)
                } else if let Some(e) = self.walker.error() {
                    TarballEnd::Tar(e)
                } else {
                    TarballEnd::Complete
                }
            }
        }
    }

    fn decide(&mut self, v: &mut dyn Visitor) {
        self.decided = true;
        self.format = sniff(&self.head);
        if let Some(f) = self.format.filter(|f| f.is_tarball()) {
            self.decoder = Decoder::new(f, self.limits);
            if let Some(d) = self.decoder.as_mut() {
                d.coarse(); // these readers stop on their own; no verdict depends on the offset
            }
        }
        let head = std::mem::take(&mut self.head);
        self.decode(&head, v);
    }

    fn decode(&mut self, bytes: &[u8], v: &mut dyn Visitor) {
        let TarballStream { decoder, walker, error, stopped, .. } = self;
        let Some(d) = decoder.as_mut() else { return };
        if *stopped || d.stopped() || walker.is_done() || error.is_some() {
            return;
        }
        if let Err(e) = d.push(bytes, &mut |out| walker.push(out, v)) {
            *error = Some(e);
        }
    }
}

//! Push-driven decompressors: compressed bytes in, decoded bytes out to a sink, bounded memory.
//!
//! Each codec is fed slices of any size and hands every decoded byte to the sink before
//! returning, so the output for a given input prefix does not depend on how it was chunked.
//! Errors carry the compressed offset at which they were detected and the words the matching
//! command-line tool (`gzip`, `xz`, …) would use.

use crate::detect::Format;
use crate::limits::{DECODE_CHUNK, DECODE_PIECE, GZIP_HEADER_MAX, MAX_DECODER_WINDOW};
use flate2::{Crc, Decompress, FlushDecompress, Status as FlateStatus};
use lzma_rust2::{Action, LzmaStream, Status as LzStatus, XzStream};

/// A decoding failure: what went wrong and at which compressed byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: u64,
    pub message: String,
}

/// What followed the end of the compressed stream, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailing {
    /// Offset of the first byte after the last complete stream/member.
    pub offset: u64,
    /// Number of bytes after it.
    pub len: u64,
    /// Whether all of them are zero bytes.
    pub all_zero: bool,
}

/// A push decoder for one compressed file.
pub struct Decoder {
    codec: Codec,
    out: Box<[u8]>,
    /// Compressed bytes consumed so far.
    offset: u64,
    trailing: Option<Trailing>,
    failed: bool,
    /// Input waiting to complete an aligned piece.
    stage: Vec<u8>,
}

enum Codec {
    Plain,
    Gzip(Box<Gzip>),
    Bzip2(Box<Bzip2>),
    Xz(Box<XzStream>),
    Lzma(Box<LzmaStream>, bool),
    Zstd(Box<Zstd>),
}

type Sink<'a> = &'a mut dyn FnMut(&[u8]);

impl Decoder {
    /// A decoder for `format`; `None` for formats that are not tarballs (squashfs, qcow2, …).
    pub fn new(format: Format) -> Option<Decoder> {
        let window_kb = (MAX_DECODER_WINDOW / 1024) as u32;
        let codec = match format {
            Format::Tar => Codec::Plain,
            Format::Gzip => Codec::Gzip(Box::new(Gzip::new())),
            Format::Bzip2 => Codec::Bzip2(Box::new(Bzip2::new())),
            Format::Xz => Codec::Xz(Box::new(XzStream::new_mem_limit(true, window_kb))),
            Format::Lzma => {
                Codec::Lzma(Box::new(LzmaStream::new_mem_limit(window_kb, None)), false)
            }
            Format::Zstd => Codec::Zstd(Box::new(Zstd::new())),
            _ => return None,
        };
        let out = vec![
            0u8;
            if matches!(codec, Codec::Plain) {
                0
            } else {
                DECODE_CHUNK
            }
        ]
        .into_boxed_slice();
        Some(Decoder {
            codec,
            out,
            offset: 0,
            trailing: None,
            failed: false,
            stage: Vec::new(),
        })
    }

    /// Compressed bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes found after the end of the compressed data (trailing garbage or padding).
    pub fn trailing(&self) -> Option<Trailing> {
        self.trailing
    }

    fn note_trailing(&mut self, bytes: &[u8], at: u64) {
        let t = self.trailing.get_or_insert(Trailing {
            offset: at,
            len: 0,
            all_zero: true,
        });
        t.len += bytes.len() as u64;
        t.all_zero &= bytes.iter().all(|&b| b == 0);
    }

    /// Feeds compressed bytes. After an error the decoder ignores further input.
    pub fn push(&mut self, mut input: &[u8], sink: Sink) -> Result<(), DecodeError> {
        if self.failed {
            return Ok(());
        }
        if matches!(self.codec, Codec::Plain) {
            return self.push_piece(input, sink);
        }
        // Codecs always see the same sequence of calls (pieces aligned to absolute multiples of
        // DECODE_PIECE), so output and error offsets never depend on the caller's chunking.
        let piece = DECODE_PIECE as u64;
        while !input.is_empty() {
            let staged = self.stage.len() as u64;
            let at = self.offset + staged;
            let want = (piece - at % piece) as usize;
            if staged == 0 && input.len() >= want {
                self.push_piece(&input[..want], sink)?;
                input = &input[want..];
                continue;
            }
            let n = want.min(input.len());
            self.stage.extend_from_slice(&input[..n]);
            input = &input[n..];
            if n == want {
                let stage = std::mem::take(&mut self.stage);
                let r = self.push_piece(&stage, sink);
                self.stage = stage;
                self.stage.clear();
                r?;
            }
        }
        Ok(())
    }

    fn push_piece(&mut self, input: &[u8], sink: Sink) -> Result<(), DecodeError> {
        if self.failed {
            return Ok(());
        }
        let base = self.offset;
        let r = self.push_inner(input, sink);
        self.offset = base + input.len() as u64;
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn push_inner(&mut self, input: &[u8], sink: Sink) -> Result<(), DecodeError> {
        let base = self.offset;
        if self.trailing.is_some() {
            self.note_trailing(input, base);
            return Ok(());
        }
        let out = &mut self.out;
        let done_at = match &mut self.codec {
            Codec::Plain => {
                sink(input);
                None
            }
            Codec::Gzip(g) => g.push(input, base, out, sink)?,
            Codec::Bzip2(b) => b.push(input, base, out, sink)?,
            Codec::Xz(x) => lz_push(
                "xz",
                &mut |i, o, a| x.process(i, o, a),
                input,
                base,
                out,
                sink,
            )?
            .map(|used| (base + used as u64, true)),
            Codec::Lzma(l, ended) => {
                if *ended {
                    Some((base, true))
                } else {
                    let r = lz_push(
                        "lzma",
                        &mut |i, o, a| l.process(i, o, a),
                        input,
                        base,
                        out,
                        sink,
                    )?;
                    *ended = r.is_some();
                    r.map(|used| (base + used as u64, true))
                }
            }
            Codec::Zstd(z) => z.push(input, base, out, sink)?,
        };
        if let Some((start, prefix_zero)) =
            done_at.filter(|&(start, _)| start < base + input.len() as u64)
        {
            let from = start.saturating_sub(base) as usize;
            let t = self.trailing.get_or_insert(Trailing {
                offset: start,
                len: 0,
                all_zero: prefix_zero,
            });
            t.len += base.saturating_sub(start);
            self.note_trailing(&input[from.min(input.len())..], start);
        }
        Ok(())
    }

    /// Decodes input held back to complete an aligned piece, without ending the stream (used
    /// when reading stops early).
    pub fn flush_stage(&mut self, sink: Sink) -> Result<(), DecodeError> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let stage = std::mem::take(&mut self.stage);
        self.push_piece(&stage, sink)
    }

    /// Signals the end of the compressed input: reports truncation.
    pub fn finish(&mut self, sink: Sink) -> Result<(), DecodeError> {
        self.flush_stage(sink)?;
        if self.failed || self.trailing.is_some() {
            return Ok(());
        }
        let at = self.offset;
        let out = &mut self.out;
        let r = match &mut self.codec {
            Codec::Plain => Ok(()),
            Codec::Gzip(g) => g.finish(at),
            Codec::Bzip2(b) => b.finish(at),
            Codec::Xz(x) => {
                let mut r = Ok(());
                loop {
                    match x.process(&[], out, Action::Finish) {
                        Ok(res) => {
                            sink(&out[..res.bytes_produced]);
                            if res.status == LzStatus::StreamEnd || res.bytes_produced == 0 {
                                if res.status != LzStatus::StreamEnd {
                                    r = Err(err(at, "xz: Unexpected end of input"));
                                }
                                break;
                            }
                        }
                        Err(e) => {
                            r = Err(err(at, &format!("xz: {}", xz_message(&e))));
                            break;
                        }
                    }
                }
                r
            }
            Codec::Lzma(l, ended) => {
                let mut r = Ok(());
                if !*ended {
                    loop {
                        match l.process(&[], out, Action::Finish) {
                            Ok(res) => {
                                sink(&out[..res.bytes_produced]);
                                if res.status == LzStatus::StreamEnd {
                                    break;
                                }
                                if res.bytes_produced == 0 {
                                    r = Err(err(at, "lzma: Unexpected end of input"));
                                    break;
                                }
                            }
                            Err(e) => {
                                r = Err(err(at, &format!("lzma: {}", xz_message(&e))));
                                break;
                            }
                        }
                    }
                }
                r
            }
            Codec::Zstd(z) => match z.finish(at, out, sink) {
                Ok(Some(start)) => {
                    let zero = z.avail().iter().all(|&b| b == 0);
                    self.trailing = Some(Trailing {
                        offset: start,
                        len: at - start,
                        all_zero: zero,
                    });
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
        };
        if r.is_err() {
            self.failed = true;
        }
        r
    }
}

fn err(offset: u64, message: &str) -> DecodeError {
    DecodeError {
        offset,
        message: message.to_string(),
    }
}

fn xz_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    if s.contains("memory") || s.contains("limit") {
        format!(
            "{s} (lxdimg decodes windows up to {} MiB)",
            MAX_DECODER_WINDOW >> 20
        )
    } else if s.is_empty() {
        "Compressed data is corrupt".into()
    } else {
        s
    }
}

/// Runs an lzma-rust2 stream over `input`; returns `Some(bytes used)` when the stream ended.
/// The `process` call shared by lzma-rust2's push decoders (`XzStream`, `LzmaStream`).
pub(crate) type LzProcess<'a> =
    &'a mut dyn FnMut(&[u8], &mut [u8], Action) -> std::io::Result<lzma_rust2::StreamResult>;

/// Runs an lzma-rust2 stream over `input`; returns `Some(bytes used)` when the stream ended.
fn lz_push(
    tool: &str,
    process: LzProcess,
    input: &[u8],
    base: u64,
    out: &mut [u8],
    sink: Sink,
) -> Result<Option<usize>, DecodeError> {
    let mut pos = 0;
    loop {
        let res = process(&input[pos..], out, Action::Run)
            .map_err(|e| err(base + pos as u64, &format!("{tool}: {}", xz_message(&e))))?;
        pos += res.bytes_consumed;
        sink(&out[..res.bytes_produced]);
        if res.status == LzStatus::StreamEnd {
            return Ok(Some(pos));
        }
        if res.bytes_consumed == 0 && res.bytes_produced < out.len() {
            return Ok(None);
        }
    }
}

/// Decodes a whole in-memory lzma-rust2 stream into `out`; returns the bytes produced.
pub(crate) fn lz_decode_all(
    process: LzProcess,
    input: &[u8],
    out: &mut [u8],
) -> std::io::Result<usize> {
    let (mut pos, mut total) = (0, 0);
    loop {
        let r = process(&input[pos..], &mut out[total..], Action::Finish)?;
        pos += r.bytes_consumed;
        total += r.bytes_produced;
        if r.status == LzStatus::StreamEnd
            || (r.bytes_consumed == 0 && r.bytes_produced == 0)
            || total == out.len()
        {
            return Ok(total);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// gzip: RFC 1952 member framing over a raw-deflate decoder, multi-member like `gzip -dc`.

enum GzState {
    Header(Vec<u8>),
    Body,
    Trailer(Vec<u8>),
    /// Between members: the next bytes are either a new member or trailing data.
    Between(Vec<u8>),
}

struct Gzip {
    state: GzState,
    inflate: Decompress,
    crc: Crc,
    members: u64,
}

/// Parses a gzip member header; `Ok(None)` if more bytes are needed.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, &'static str> {
    if b.len() >= 2 && b[..2] != [0x1f, 0x8b] {
        return Err("not in gzip format");
    }
    if b.len() >= 3 && b[2] != 8 {
        return Err("unknown method -- not supported");
    }
    if b.len() < 10 {
        return Ok(None);
    }
    let flags = b[3];
    if flags & 0xe0 != 0 {
        return Err("has flags 0xe0 -- not supported");
    }
    let mut pos = 10;
    if flags & 4 != 0 {
        if b.len() < pos + 2 {
            return Ok(None);
        }
        pos += 2 + u16::from_le_bytes([b[pos], b[pos + 1]]) as usize;
        if b.len() < pos {
            return Ok(None);
        }
    }
    for flag in [8u8, 16] {
        if flags & flag != 0 {
            match b[pos..].iter().position(|&c| c == 0) {
                Some(i) => pos += i + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 2 != 0 {
        pos += 2;
        if b.len() < pos {
            return Ok(None);
        }
    }
    Ok(Some(pos))
}

impl Gzip {
    fn new() -> Gzip {
        Gzip {
            state: GzState::Header(Vec::new()),
            inflate: Decompress::new(false),
            crc: Crc::new(),
            members: 0,
        }
    }

    fn push(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut [u8],
        sink: Sink,
    ) -> Result<Option<(u64, bool)>, DecodeError> {
        let mut pos = 0;
        loop {
            match &mut self.state {
                GzState::Header(_) | GzState::Between(_) => {
                    let between = matches!(self.state, GzState::Between(_));
                    let (GzState::Header(h) | GzState::Between(h)) = &mut self.state else {
                        unreachable!()
                    };
                    let had = h.len();
                    let take = (input.len() - pos).min(GZIP_HEADER_MAX + 1 - had);
                    h.extend_from_slice(&input[pos..pos + take]);
                    match gzip_header_len(h) {
                        Ok(Some(n)) => {
                            // Give back what the header did not use.
                            pos += n - had;
                            h.clear();
                            self.inflate.reset(false);
                            self.crc.reset();
                            self.state = GzState::Body;
                        }
                        Ok(None) => {
                            pos += take;
                            if h.len() > GZIP_HEADER_MAX {
                                return Err(err(
                                    base + pos as u64,
                                    "gzip: member header longer than lxdimg's limit",
                                ));
                            }
                            return Ok(None);
                        }
                        Err(_) if between => {
                            // Not a new member: everything from the member's end on is trailing data.
                            let prefix_zero = h[..had].iter().all(|&b| b == 0);
                            return Ok(Some(((base + pos as u64) - had as u64, prefix_zero)));
                        }
                        Err(e) => {
                            return Err(err(
                                (base + pos as u64) - had as u64,
                                &format!("gzip: {e}"),
                            ))
                        }
                    }
                }
                GzState::Body => {
                    let before_in = self.inflate.total_in();
                    let before_out = self.inflate.total_out();
                    let status = self
                        .inflate
                        .decompress(&input[pos..], out, FlushDecompress::None)
                        .map_err(|_| {
                            err(
                                base + pos as u64,
                                "gzip: invalid compressed data--format violated",
                            )
                        })?;
                    let used = (self.inflate.total_in() - before_in) as usize;
                    let made = (self.inflate.total_out() - before_out) as usize;
                    pos += used;
                    self.crc.update(&out[..made]);
                    sink(&out[..made]);
                    match status {
                        FlateStatus::StreamEnd => {
                            self.state = GzState::Trailer(Vec::with_capacity(8))
                        }
                        _ if used == 0 && made < out.len() => return Ok(None),
                        _ => {}
                    }
                }
                GzState::Trailer(t) => {
                    let take = (8 - t.len()).min(input.len() - pos);
                    t.extend_from_slice(&input[pos..pos + take]);
                    pos += take;
                    if t.len() < 8 {
                        return Ok(None);
                    }
                    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                    let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                    let at = base + pos as u64 - 8;
                    if crc != self.crc.sum() {
                        return Err(err(at, "gzip: invalid compressed data--crc error"));
                    }
                    if isize != self.crc.amount() {
                        return Err(err(at + 4, "gzip: invalid compressed data--length error"));
                    }
                    self.members += 1;
                    self.state = GzState::Between(Vec::new());
                }
            }
            if pos == input.len() {
                return Ok(None);
            }
        }
    }

    fn finish(&mut self, at: u64) -> Result<(), DecodeError> {
        match &self.state {
            GzState::Between(h) if h.is_empty() => Ok(()),
            GzState::Between(_) => Err(err(at, "gzip: unexpected end of file")),
            GzState::Header(_) if self.members == 0 => Err(err(at, "gzip: unexpected end of file")),
            _ => Err(err(at, "gzip: unexpected end of file")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bzip2: concatenated streams, like `bzip2 -dc`.

struct Bzip2 {
    dec: bzip2::Decompress,
    /// Bytes of a possible next stream header (`BZh`), or `None` inside a stream.
    between: Option<Vec<u8>>,
    streams: u64,
    in_stream: bool,
}

impl Bzip2 {
    fn new() -> Bzip2 {
        Bzip2 {
            dec: bzip2::Decompress::new(false),
            between: None,
            streams: 0,
            in_stream: true,
        }
    }

    fn push(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut [u8],
        sink: Sink,
    ) -> Result<Option<(u64, bool)>, DecodeError> {
        let mut pos = 0;
        while pos < input.len() {
            if let Some(h) = &mut self.between {
                let had = h.len();
                let take = (3 - had).min(input.len() - pos);
                h.extend_from_slice(&input[pos..pos + take]);
                if h.len() < 3 && h[..] == b"BZh"[..h.len()] {
                    return Ok(None);
                }
                if h[..] != b"BZh"[..] {
                    let prefix_zero = h[..had].iter().all(|&b| b == 0);
                    return Ok(Some(((base + pos as u64) - had as u64, prefix_zero)));
                }
                // A new stream: replay the three header bytes.
                let hdr = std::mem::take(h);
                self.between = None;
                self.dec = bzip2::Decompress::new(false);
                self.in_stream = true;
                pos += take;
                self.run(&hdr, base + pos as u64 - 3, out, sink)?;
                continue;
            }
            let (used, ended) = self.run(&input[pos..], base + pos as u64, out, sink)?;
            pos += used;
            if ended {
                self.streams += 1;
                self.in_stream = false;
                self.between = Some(Vec::new());
            } else if used == 0 {
                break;
            }
        }
        Ok(None)
    }

    /// Returns (bytes used, stream ended).
    fn run(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut [u8],
        sink: Sink,
    ) -> Result<(usize, bool), DecodeError> {
        let mut pos = 0;
        loop {
            let before_in = self.dec.total_in();
            let before_out = self.dec.total_out();
            let status = self.dec.decompress(&input[pos..], out).map_err(|e| {
                let what = match e {
                    bzip2::Error::DataMagic => {
                        "bzip2: bad magic number (file not created by bzip2)"
                    }
                    bzip2::Error::Data => "bzip2: Data integrity error when decompressing",
                    _ => "bzip2: decompression error",
                };
                err(base + pos as u64, what)
            })?;
            let used = (self.dec.total_in() - before_in) as usize;
            let made = (self.dec.total_out() - before_out) as usize;
            pos += used;
            sink(&out[..made]);
            if status == bzip2::Status::StreamEnd {
                return Ok((pos, true));
            }
            if used == 0 && made < out.len() {
                return Ok((pos, false));
            }
        }
    }

    fn finish(&mut self, at: u64) -> Result<(), DecodeError> {
        match &self.between {
            Some(h) if h.is_empty() => Ok(()),
            Some(_) => Ok(()), // a partial "BZ" after a complete stream is trailing garbage
            None => Err(err(at, "bzip2: Compressed file ends unexpectedly")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// zstd: frames (and skippable frames) over ruzstd's slice-in/slice-out frame decoder.

struct Zstd {
    /// Native builds use libzstd (3× faster than ruzstd here); wasm builds use pure-Rust ruzstd.
    #[cfg(not(target_arch = "wasm32"))]
    dctx: zstd_safe::DCtx<'static>,
    #[cfg(target_arch = "wasm32")]
    dec: ruzstd::decoding::FrameDecoder,
    pending: Vec<u8>,
    start: usize,
    /// Offset (in the compressed file) of `pending[start]`.
    pending_offset: u64,
    state: ZState,
    frames: u64,
}

#[derive(PartialEq)]
enum ZState {
    /// Expecting a frame header (the first, or after a finished frame).
    Header,
    Blocks,
    /// Skipping this many bytes of a skippable frame.
    Skip(u64),
}

fn zstd_header_len(b: &[u8]) -> Option<usize> {
    if b.len() < 5 {
        return None;
    }
    let fhd = b[4];
    let single = (fhd >> 5) & 1 == 1;
    let did = [0usize, 1, 2, 4][(fhd & 3) as usize];
    let fcs = match fhd >> 6 {
        0 => usize::from(single),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    Some(5 + usize::from(!single) + did + fcs)
}

impl Zstd {
    fn new() -> Zstd {
        #[cfg(not(target_arch = "wasm32"))]
        let dctx = {
            let mut d = zstd_safe::DCtx::create();
            let log = 63 - MAX_DECODER_WINDOW.leading_zeros();
            let _ = d.set_parameter(zstd_safe::DParameter::WindowLogMax(log));
            d
        };
        #[cfg(target_arch = "wasm32")]
        let dec = {
            let mut d = ruzstd::decoding::FrameDecoder::new();
            d.set_max_window_size(MAX_DECODER_WINDOW);
            d
        };
        Zstd {
            #[cfg(not(target_arch = "wasm32"))]
            dctx,
            #[cfg(target_arch = "wasm32")]
            dec,
            pending: Vec::new(),
            start: 0,
            pending_offset: 0,
            state: ZState::Header,
            frames: 0,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.pending[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pending_offset += n as u64;
        if self.start == self.pending.len() {
            self.pending.clear();
            self.start = 0;
        } else if self.start > (256 << 10) {
            self.pending.drain(..self.start);
            self.start = 0;
        }
    }

    fn push(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut [u8],
        sink: Sink,
    ) -> Result<Option<(u64, bool)>, DecodeError> {
        if self.pending.is_empty() {
            self.pending_offset = base;
        }
        self.pending.extend_from_slice(input);
        Ok(self
            .drive(out, sink, false)?
            .map(|at| self.take_trailing(at, base)))
    }

    /// Drops buffered bytes from `at` (trailing data); says whether those before `base` were zeros.
    fn take_trailing(&mut self, at: u64, base: u64) -> (u64, bool) {
        let before = base.saturating_sub(at) as usize;
        let zero = self.avail()[..before.min(self.avail().len())]
            .iter()
            .all(|&b| b == 0);
        self.pending.clear();
        self.start = 0;
        (at, zero)
    }

    /// Decodes what it can; returns `Some(offset)` if trailing non-zstd data starts at `offset`.
    fn drive(
        &mut self,
        out: &mut [u8],
        sink: Sink,
        at_end: bool,
    ) -> Result<Option<u64>, DecodeError> {
        loop {
            match self.state {
                ZState::Header => {
                    let a = self.avail();
                    if a.len() < 4 {
                        if !a.is_empty() && self.frames > 0 && at_end {
                            return Ok(Some(self.pending_offset));
                        }
                        return Ok(None);
                    }
                    let magic = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
                    if magic & 0xffff_fff0 == 0x184d_2a50 {
                        if a.len() < 8 {
                            return Ok(None);
                        }
                        let size = u32::from_le_bytes([a[4], a[5], a[6], a[7]]) as u64;
                        self.consume(8);
                        self.state = ZState::Skip(size);
                        continue;
                    }
                    if magic != 0xfd2f_b528 {
                        if self.frames > 0 {
                            return Ok(Some(self.pending_offset));
                        }
                        return Err(err(self.pending_offset, "zstd: unknown header"));
                    }
                    let Some(n) = zstd_header_len(a) else {
                        return Ok(None);
                    };
                    if a.len() < n {
                        return Ok(None);
                    }
                    // libzstd reads the frame header itself; ruzstd is given it here.
                    #[cfg(target_arch = "wasm32")]
                    {
                        let at = self.pending_offset;
                        let start = self.start;
                        let mut hdr = &self.pending[start..start + n];
                        self.dec
                            .reset(&mut hdr)
                            .map_err(|e| err(at, &format!("zstd: {e}")))?;
                        self.consume(n);
                    }
                    self.state = ZState::Blocks;
                }
                ZState::Skip(left) => {
                    let n = (left as usize).min(self.avail().len());
                    self.consume(n);
                    if (n as u64) < left {
                        self.state = ZState::Skip(left - n as u64);
                        return Ok(None);
                    }
                    self.frames += 1;
                    self.state = ZState::Header;
                }
                #[cfg(target_arch = "wasm32")]
                ZState::Blocks => {
                    let at = self.pending_offset;
                    if self.avail().len() < 4 && !at_end && !self.dec.is_finished() {
                        // ruzstd needs the 4 checksum bytes in one piece; wait for them.
                        let (_, made) = self
                            .dec
                            .decode_from_to(&[], out)
                            .map_err(|e| err(at, &format!("zstd: {e}")))?;
                        sink(&out[..made]);
                        if made == out.len() {
                            continue;
                        }
                        return Ok(None);
                    }
                    // One block per call: ruzstd decodes every complete block it is given before
                    // draining, so a run of tiny RLE blocks would otherwise balloon its buffer.
                    let a = self.avail();
                    let one = if a.len() >= 3 {
                        let h = u32::from(a[0]) | u32::from(a[1]) << 8 | u32::from(a[2]) << 16;
                        let body = if (h >> 1) & 3 == 1 {
                            1
                        } else {
                            (h >> 3) as usize
                        };
                        (3 + body + 4).min(a.len())
                    } else {
                        a.len()
                    };
                    let start = self.start;
                    let (used, made) = self
                        .dec
                        .decode_from_to(&self.pending[start..start + one], out)
                        .map_err(|e| err(at, &format!("zstd: {e}")))?;
                    let used = used.min(self.avail().len());
                    self.consume(used);
                    sink(&out[..made]);
                    if self.dec.is_finished() && self.dec.can_collect() == 0 {
                        if let (Some(want), Some(got)) = (
                            self.dec.get_checksum_from_data(),
                            self.dec.get_calculated_checksum(),
                        ) {
                            if want != got {
                                return Err(err(self.pending_offset, "zstd: checksum error"));
                            }
                        }
                        self.frames += 1;
                        self.state = ZState::Header;
                        continue;
                    }
                    if used == 0 && made < out.len() {
                        return Ok(None);
                    }
                }
                #[cfg(not(target_arch = "wasm32"))]
                ZState::Blocks => {
                    let at = self.pending_offset;
                    let start = self.start;
                    let mut input = zstd_safe::InBuffer::around(&self.pending[start..]);
                    let mut output = zstd_safe::OutBuffer::around(&mut out[..]);
                    let hint = self
                        .dctx
                        .decompress_stream(&mut output, &mut input)
                        .map_err(|code| {
                            err(at, &format!("zstd: {}", zstd_safe::get_error_name(code)))
                        })?;
                    let (used, made) = (input.pos(), output.pos());
                    self.consume(used);
                    sink(&out[..made]);
                    if hint == 0 {
                        self.frames += 1;
                        self.state = ZState::Header;
                        continue;
                    }
                    if used == 0 && made < out.len() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn finish(&mut self, at: u64, out: &mut [u8], sink: Sink) -> Result<Option<u64>, DecodeError> {
        if self.pending.is_empty() {
            self.pending_offset = at;
        }
        if let Some(start) = self.drive(out, sink, true)? {
            return Ok(Some(start));
        }
        match self.state {
            ZState::Header if self.avail().is_empty() => Ok(None),
            #[cfg(target_arch = "wasm32")]
            ZState::Blocks => {
                // Like `zstd -d`, hand over every complete block before reporting the cut: end
                // the frame with an empty raw last block (and a dummy checksum), which makes
                // ruzstd release the window it holds back.
                self.pending.clear();
                self.start = 0;
                let end = [1u8, 0, 0, 0, 0, 0, 0];
                if let Ok((_, made)) = self.dec.decode_from_to(&end, out) {
                    sink(&out[..made]);
                    loop {
                        match self.dec.decode_from_to(&[], out) {
                            Ok((_, made)) if made > 0 => sink(&out[..made]),
                            _ => break,
                        }
                    }
                }
                Err(err(at, "zstd: Read error (39) : premature end"))
            }
            _ => Err(err(at, "zstd: Read error (39) : premature end")),
        }
    }
}

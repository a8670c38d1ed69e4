//! Push-driven decompressors: compressed bytes in, decoded bytes out to a sink, bounded memory.
//!
//! Each codec is fed slices of any size and hands every decoded byte to the sink before
//! returning, so the output for a given input prefix does not depend on how it was chunked.
//! Errors carry the compressed offset at which they were detected and the words the matching
//! command-line tool (`gzip`, `xz`, …) would use.

mod bzip2;
mod gzip;
mod lz;
mod zstd;

use crate::detect::Format;
use crate::limits::{DECODE_CHUNK, DECODE_PIECE, MAX_DECODER_WINDOW};
use bzip2::Bzip2;
use gzip::Gzip;
use lz::{lz_finish, lz_push, Xz};
use lzma_rust2::LzmaStream;
use zstd::Zstd;

/// A decoding failure: what went wrong and at which compressed byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: u64,
    pub message: String,
}

/// The expansion limits of one compressed file (see [`crate::Options::max_decoded_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpansionLimits {
    /// Decoded bytes past which the ratio is checked.
    pub max_decoded: u64,
    /// Decoded bytes per compressed byte read, past which decoding stops.
    pub max_ratio: u64,
}

impl ExpansionLimits {
    /// Whether `decoded` bytes out of `compressed` bytes read pass both limits.
    pub fn exceeded(&self, decoded: u64, compressed: u64) -> bool {
        decoded > self.max_decoded
            && u128::from(decoded) > u128::from(self.max_ratio) * u128::from(compressed)
    }
}

/// Where decoding of a file stopped because it passed its [`ExpansionLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bomb {
    /// Compressed bytes read when decoding stopped: the end of the aligned piece being decoded
    /// (so the same whatever the caller's chunking). Also the offset reported.
    pub compressed: u64,
    /// Bytes decoded by then (all of them reached the tar walk).
    pub decoded: u64,
    /// The limits in force.
    pub limits: ExpansionLimits,
}

impl Bomb {
    /// The expansion ratio, decoded bytes per compressed byte, rounded down.
    pub fn ratio(&self) -> u64 {
        self.decoded / self.compressed.max(1)
    }

    /// What happened, in plain words (`what`: "unified image", "rootfs file", …).
    pub fn describe(&self, what: &str) -> String {
        format!(
            "decoding stopped at byte {} of the {what}: its first {} compressed bytes expand to {} bytes ({}:1), past lxdimg's limits of {} decoded bytes and {}:1 (a decompression bomb)",
            self.compressed,
            self.compressed,
            self.decoded,
            self.ratio(),
            self.limits.max_decoded,
            self.limits.max_ratio,
        )
    }
}

/// Why a codec returned early: a decoding error, or the sink's expansion limit.
pub(super) enum Halt {
    Error(DecodeError),
    Limit,
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
    /// Decode in short calls, so that an error loses as little output as possible (see
    /// `lz::FINE_STEP`); the caller turns it off once the output no longer matters to LXD's
    /// verdict.
    fine: bool,
    /// Decoded bytes handed to the sink so far.
    decoded: u64,
    limits: ExpansionLimits,
    bomb: Option<Bomb>,
}

enum Codec {
    Plain,
    Gzip(Box<Gzip>),
    Bzip2(Box<Bzip2>),
    Xz(Box<Xz>),
    Lzma(Box<LzmaStream>, bool),
    Zstd(Box<Zstd>),
}

/// Where a codec hands its output; an `Err` (the expansion limit) makes the codec return at once.
pub(super) type Sink<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), Halt>;

/// The caller's sink.
pub type Output<'a> = &'a mut dyn FnMut(&[u8]);

/// Counts what a codec decodes, hands it on, and stops the codec once the limits are passed
/// (`at`: compressed bytes read by the end of the current piece). A plain tar is never limited.
fn metered<'a>(
    decoded: &'a mut u64,
    bomb: &'a mut Option<Bomb>,
    limits: ExpansionLimits,
    limited: bool,
    at: u64,
    sink: Output<'a>,
) -> impl FnMut(&[u8]) -> Result<(), Halt> + 'a {
    move |out: &[u8]| {
        if out.is_empty() {
            return Ok(());
        }
        if bomb.is_some() {
            return Err(Halt::Limit);
        }
        sink(out);
        *decoded += out.len() as u64;
        if limited && limits.exceeded(*decoded, at) {
            *bomb = Some(Bomb {
                compressed: at,
                decoded: *decoded,
                limits,
            });
            return Err(Halt::Limit);
        }
        Ok(())
    }
}

impl Decoder {
    /// A decoder for `format`; `None` for formats that are not tarballs (squashfs, qcow2, …).
    pub fn new(format: Format, limits: ExpansionLimits) -> Option<Decoder> {
        let window_kb = (MAX_DECODER_WINDOW / 1024) as u32;
        let codec = match format {
            Format::Tar => Codec::Plain,
            Format::Gzip => Codec::Gzip(Box::new(Gzip::new())),
            Format::Bzip2 => Codec::Bzip2(Box::new(Bzip2::new())),
            Format::Xz => Codec::Xz(Box::new(Xz::new(window_kb))),
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
            fine: true,
            decoded: 0,
            limits,
            bomb: None,
        })
    }

    /// From now on, decode in longer calls (LXD's verdict no longer depends on the output).
    pub fn coarse(&mut self) {
        self.fine = false;
    }

    /// Compressed bytes pushed so far (decoded, or held back to complete an aligned piece).
    pub fn fed(&self) -> u64 {
        self.offset + self.stage.len() as u64
    }

    /// Compressed bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where decoding stopped because the file passed its expansion limits.
    pub fn bomb(&self) -> Option<Bomb> {
        self.bomb
    }

    /// Whether the decoder takes no more input (an error, or the expansion limit).
    pub fn stopped(&self) -> bool {
        self.failed || self.bomb.is_some()
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
    pub fn push(&mut self, mut input: &[u8], sink: Output) -> Result<(), DecodeError> {
        if self.stopped() {
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

    fn push_piece(&mut self, input: &[u8], sink: Output) -> Result<(), DecodeError> {
        if self.stopped() {
            return Ok(());
        }
        let base = self.offset;
        let r = self.push_inner(input, sink);
        self.offset = base + input.len() as u64;
        self.halted(r)
    }

    /// The outcome of a codec call: an error stops the decoder for good; so does the limit, but
    /// it is no decoding error (see [`Decoder::bomb`]).
    fn halted(&mut self, r: Result<(), Halt>) -> Result<(), DecodeError> {
        match r {
            Ok(()) | Err(Halt::Limit) => Ok(()),
            Err(Halt::Error(e)) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn push_inner(&mut self, input: &[u8], sink: Output) -> Result<(), Halt> {
        let base = self.offset;
        if self.trailing.is_some() {
            self.note_trailing(input, base);
            return Ok(());
        }
        let Decoder {
            codec,
            out,
            decoded,
            limits,
            bomb,
            fine,
            ..
        } = self;
        let limited = !matches!(codec, Codec::Plain);
        let at = base + input.len() as u64;
        let mut metered = metered(decoded, bomb, *limits, limited, at, sink);
        let sink = &mut metered;
        let done_at = match codec {
            Codec::Plain => {
                sink(input)?;
                None
            }
            Codec::Gzip(g) => g.push(input, base, out, sink)?,
            Codec::Bzip2(b) => b.push(input, base, out, sink)?,
            Codec::Xz(x) => x.push(input, base, out, sink, *fine)?,
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
                        *fine,
                    )?;
                    *ended = r.is_some();
                    // lzma-rust2 absorbs a few bytes past the end of a .lzma stream; they are the
                    // start of the trailing data (`xz --format=lzma -dc` refuses them).
                    r.map(|used| {
                        let unused = l.unused_input();
                        let end = (base + used as u64).saturating_sub(unused.len() as u64);
                        let before = (base.saturating_sub(end) as usize).min(unused.len());
                        (end, unused[..before].iter().all(|&b| b == 0))
                    })
                }
            }
            Codec::Zstd(z) => z.push(input, base, out, sink)?,
        };
        drop(metered);
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
    pub fn flush_stage(&mut self, sink: Output) -> Result<(), DecodeError> {
        if self.stage.is_empty() || self.stopped() {
            return Ok(());
        }
        let stage = std::mem::take(&mut self.stage);
        self.push_piece(&stage, sink)
    }

    /// Signals the end of the compressed input: reports truncation.
    pub fn finish(&mut self, sink: Output) -> Result<(), DecodeError> {
        self.flush_stage(sink)?;
        if self.stopped() || self.trailing.is_some() {
            return Ok(());
        }
        let at = self.offset;
        let Decoder {
            codec,
            out,
            decoded,
            limits,
            bomb,
            ..
        } = self;
        let limited = !matches!(codec, Codec::Plain);
        let mut metered = metered(decoded, bomb, *limits, limited, at, sink);
        let sink = &mut metered;
        // Where trailing data starts, if the end of the input shows some.
        let r = match codec {
            Codec::Plain => Ok(None),
            Codec::Gzip(g) => g.finish(at).map(|()| None),
            Codec::Bzip2(b) => b.finish(at).map(|()| None),
            Codec::Xz(x) => x.finish(at, out, sink),
            Codec::Lzma(_, true) => Ok(None),
            Codec::Lzma(l, false) => {
                lz_finish("lzma", &mut |i, o, a| l.process(i, o, a), at, out, sink).map(|()| None)
            }
            Codec::Zstd(z) => z.finish(at, out, sink),
        };
        drop(metered);
        let r = r.map(|trailing| {
            if let Some((start, all_zero)) = trailing {
                self.trailing = Some(Trailing {
                    offset: start,
                    len: at - start,
                    all_zero,
                });
            }
        });
        self.halted(r)
    }
}

pub(super) fn err(offset: u64, message: &str) -> Halt {
    Halt::Error(DecodeError {
        offset,
        message: message.to_string(),
    })
}

pub(super) fn xz_message(e: &std::io::Error) -> String {
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

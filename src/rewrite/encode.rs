//! Re-encoding: the rewritten tar stream in, the same codec out, hashed as it is produced.
//!
//! Every codec is fed in pieces of [`ENCODE_PIECE`] bytes (the last one shorter), whatever the
//! caller's chunking, so the output — and so the new fingerprint — is a function of the input
//! bytes alone.

use super::RewriteError;
use crate::detect::Format;
use crate::Fingerprinter;
use std::io::Write;

/// Tar bytes handed to the encoder per call.
pub(super) const ENCODE_PIECE: usize = 256 << 10;

/// The compression level used when the caller gives none: what the usual tool does by default,
/// unless the original file says otherwise (gzip's XFL byte, bzip2's block size digit).
pub fn default_level(format: Format, head: &[u8]) -> u32 {
    match format {
        // gzip writes XFL 2 for -9 (and -8…), 4 for -1; anything else is gzip's default, -6.
        Format::Gzip => match head.get(8) {
            Some(2) => 9,
            Some(4) => 1,
            _ => 6,
        },
        // bzip2 -N writes "BZhN"; its default is -9.
        Format::Bzip2 => match head.get(3) {
            Some(&d @ b'1'..=b'9') => u32::from(d - b'0'),
            _ => 9,
        },
        Format::Xz | Format::Lzma => 6,
        Format::Zstd => 3,
        _ => 0,
    }
}

enum Codec {
    Plain,
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Bzip2(bzip2::write::BzEncoder<Vec<u8>>),
    Xz(Box<lzma_rust2::XzWriter<Vec<u8>>>),
    Lzma(Box<lzma_rust2::LzmaWriter<Vec<u8>>>),
    Zstd(Box<zstd_safe::CCtx<'static>>, Box<[u8]>),
}

pub(super) struct Encoder {
    codec: Codec,
    stage: Vec<u8>,
    /// Encoded bytes not yet handed to the caller.
    pub(super) out: Vec<u8>,
    sha: Fingerprinter,
    pub(super) bytes_out: u64,
    pub(super) tar_bytes: u64,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> RewriteError {
    RewriteError::new(None, format!("{what} encoder: {e}"))
}

fn zstd_err(code: usize) -> RewriteError {
    io_err("zstd", zstd_safe::get_error_name(code))
}

impl Encoder {
    pub(super) fn new(format: Format, level: u32) -> Result<Encoder, RewriteError> {
        let codec = match format {
            Format::Tar => Codec::Plain,
            Format::Gzip => Codec::Gzip(
                flate2::GzBuilder::new()
                    .operating_system(3) // Unix, as gzip writes
                    .write(Vec::new(), flate2::Compression::new(level.min(9))),
            ),
            Format::Bzip2 => Codec::Bzip2(bzip2::write::BzEncoder::new(
                Vec::new(),
                bzip2::Compression::new(level.clamp(1, 9)),
            )),
            Format::Xz => Codec::Xz(Box::new(
                lzma_rust2::XzWriter::new(
                    Vec::new(),
                    lzma_rust2::XzOptions::with_preset(level.min(9)),
                )
                .map_err(|e| io_err("xz", e))?,
            )),
            Format::Lzma => Codec::Lzma(Box::new(
                lzma_rust2::LzmaWriter::new_use_header(
                    Vec::new(),
                    &lzma_rust2::LzmaOptions::with_preset(level.min(9)),
                    None,
                )
                .map_err(|e| io_err("lzma", e))?,
            )),
            Format::Zstd => {
                let mut c = zstd_safe::CCtx::create();
                let level = i32::try_from(level).unwrap_or(3);
                c.set_parameter(zstd_safe::CParameter::CompressionLevel(level))
                    .map_err(zstd_err)?;
                // The zstd tool writes a content checksum by default.
                c.set_parameter(zstd_safe::CParameter::ChecksumFlag(true))
                    .map_err(zstd_err)?;
                Codec::Zstd(
                    Box::new(c),
                    vec![0u8; zstd_safe::CCtx::out_size()].into_boxed_slice(),
                )
            }
            other => {
                return Err(RewriteError::new(
                    None,
                    format!("lxdimg cannot write {} images", other.name()),
                ))
            }
        };
        Ok(Encoder {
            codec,
            stage: Vec::new(),
            out: Vec::new(),
            sha: Fingerprinter::new(),
            bytes_out: 0,
            tar_bytes: 0,
        })
    }

    /// Takes the next tar bytes.
    pub(super) fn write(&mut self, mut data: &[u8]) -> Result<(), RewriteError> {
        self.tar_bytes += data.len() as u64;
        if let Codec::Plain = self.codec {
            self.emit_plain(data);
            return Ok(());
        }
        while !data.is_empty() {
            if self.stage.is_empty() && data.len() >= ENCODE_PIECE {
                self.encode_piece(&data[..ENCODE_PIECE], false)?;
                data = &data[ENCODE_PIECE..];
                continue;
            }
            let n = (ENCODE_PIECE - self.stage.len()).min(data.len());
            self.stage.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.stage.len() == ENCODE_PIECE {
                let stage = std::mem::take(&mut self.stage);
                let r = self.encode_piece(&stage, false);
                self.stage = stage;
                self.stage.clear();
                r?;
            }
        }
        Ok(())
    }

    fn emit_plain(&mut self, data: &[u8]) {
        self.sha.push(data);
        self.bytes_out += data.len() as u64;
        self.out.extend_from_slice(data);
    }

    fn drain(out: &mut Vec<u8>, sha: &mut Fingerprinter, bytes_out: &mut u64, from: &mut Vec<u8>) {
        sha.push(&from[..]);
        *bytes_out += from.len() as u64;
        if out.is_empty() {
            std::mem::swap(out, from);
        } else {
            out.append(from);
        }
    }

    fn encode_piece(&mut self, data: &[u8], last: bool) -> Result<(), RewriteError> {
        let Encoder {
            codec,
            out,
            sha,
            bytes_out,
            ..
        } = self;
        match codec {
            Codec::Plain => unreachable!("plain tar is not staged"),
            Codec::Gzip(e) => {
                e.write_all(data).map_err(|e| io_err("gzip", e))?;
                Self::drain(out, sha, bytes_out, e.get_mut());
            }
            Codec::Bzip2(e) => {
                e.write_all(data).map_err(|e| io_err("bzip2", e))?;
                Self::drain(out, sha, bytes_out, e.get_mut());
            }
            Codec::Xz(e) => {
                e.write_all(data).map_err(|e| io_err("xz", e))?;
                Self::drain(out, sha, bytes_out, e.inner_mut());
            }
            Codec::Lzma(e) => {
                e.write_all(data).map_err(|e| io_err("lzma", e))?;
                Self::drain(out, sha, bytes_out, e.inner_mut());
            }
            Codec::Zstd(c, buf) => {
                let mut input = zstd_safe::InBuffer::around(data);
                loop {
                    let mut o = zstd_safe::OutBuffer::around(&mut buf[..]);
                    let r = if last {
                        c.end_stream(&mut o)
                    } else {
                        c.compress_stream2(
                            &mut o,
                            &mut input,
                            zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue,
                        )
                    }
                    .map_err(zstd_err)?;
                    let n = o.pos();
                    sha.push(&buf[..n]);
                    *bytes_out += n as u64;
                    out.extend_from_slice(&buf[..n]);
                    let done = if last {
                        r == 0
                    } else {
                        input.pos() == data.len() && n < buf.len()
                    };
                    if done {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the stream; returns the SHA-256 of everything produced.
    /// The new fingerprint (SHA-256 of every byte written), as 64 lowercase hex digits.
    pub(super) fn finish(&mut self) -> Result<String, RewriteError> {
        let stage = std::mem::take(&mut self.stage);
        if !matches!(self.codec, Codec::Plain) && !stage.is_empty() {
            self.encode_piece(&stage, false)?;
        }
        let codec = std::mem::replace(&mut self.codec, Codec::Plain);
        let mut tail = match codec {
            Codec::Plain => Vec::new(),
            Codec::Gzip(e) => e.finish().map_err(|e| io_err("gzip", e))?,
            Codec::Bzip2(e) => e.finish().map_err(|e| io_err("bzip2", e))?,
            Codec::Xz(e) => e.finish().map_err(|e| io_err("xz", e))?,
            Codec::Lzma(e) => e.finish().map_err(|e| io_err("lzma", e))?,
            Codec::Zstd(c, buf) => {
                self.codec = Codec::Zstd(c, buf);
                self.encode_piece(&[], true)?;
                self.codec = Codec::Plain;
                Vec::new()
            }
        };
        Self::drain(&mut self.out, &mut self.sha, &mut self.bytes_out, &mut tail);
        Ok(std::mem::take(&mut self.sha).finish())
    }
}

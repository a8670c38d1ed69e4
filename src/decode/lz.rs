//! lzma-rust2's push decoders (`XzStream`, `LzmaStream`) driven over slices.

use super::{err, xz_message, Halt, Sink};
use lzma_rust2::{Action, Status as LzStatus, XzStream};

/// The `process` call shared by lzma-rust2's push decoders (`XzStream`, `LzmaStream`).
pub(crate) type LzProcess<'a> =
    &'a mut dyn FnMut(&[u8], &mut [u8], Action) -> std::io::Result<lzma_rust2::StreamResult>;

/// Compressed bytes handed to lzma-rust2 per call. It reports no output from a call that fails,
/// so while LXD's verdict still depends on what is decoded (`fine`), the calls are kept short:
/// what was decoded before a corrupt spot still reaches the walk (as `xz -d` writes it), give or
/// take what these few bytes decode to. Afterwards longer calls cost less (256-byte calls
/// throughout measured 8% slower on the bench's 111 MB `.tar.xz`).
pub(super) const FINE_STEP: usize = 256;
pub(super) const COARSE_STEP: usize = 4 << 10;

/// Runs an lzma-rust2 stream over `input`; returns `Some(bytes used)` when the stream ended.
#[allow(clippy::too_many_arguments)]
pub(super) fn lz_push(
    tool: &str,
    process: LzProcess,
    input: &[u8],
    base: u64,
    out: &mut [u8],
    sink: Sink,
    fine: bool,
) -> Result<Option<usize>, Halt> {
    let chosen = if fine { FINE_STEP } else { COARSE_STEP };
    let mut pos = 0;
    let mut step = chosen;
    loop {
        let end = (pos + step).min(input.len());
        let res = process(&input[pos..end], out, Action::Run)
            .map_err(|e| err(base + pos as u64, &format!("{tool}: {}", xz_message(&e))))?;
        pos += res.bytes_consumed;
        sink(&out[..res.bytes_produced])?;
        if res.status == LzStatus::StreamEnd {
            return Ok(Some(pos));
        }
        if res.bytes_consumed == 0 && res.bytes_produced < out.len() {
            if end == input.len() {
                return Ok(None);
            }
            step = input.len() - pos; // no progress on a short step: give it all
        } else {
            step = chosen;
        }
    }
}

/// The magic of an xz stream header.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];

/// xz: concatenated streams with stream padding between them, like `xz -dc`. The streams are
/// framed here (not by lzma-rust2's multi-stream mode), so bytes after the last stream are
/// trailing data and everything decoded before them has reached the walk.
pub(super) struct Xz {
    stream: Box<XzStream>,
    window_kb: u32,
    /// After a stream: where it ended, the zero bytes of stream padding seen so far, and the
    /// first bytes of what may be the next stream's header.
    between: Option<(u64, u64, Vec<u8>)>,
}

impl Xz {
    pub(super) fn new(window_kb: u32) -> Xz {
        Xz {
            stream: Box::new(XzStream::new_mem_limit(false, window_kb)),
            window_kb,
            between: None,
        }
    }

    /// Returns `Some((offset, zero))` once bytes that are neither padding nor a stream start at
    /// `offset` (`zero`: the ones before this call were all zeros).
    pub(super) fn push(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut [u8],
        sink: Sink,
        fine: bool,
    ) -> Result<Option<(u64, bool)>, Halt> {
        let mut pos = 0;
        while pos < input.len() {
            let Some((end, zeros, magic)) = self.between.as_mut() else {
                let stream = &mut self.stream;
                let r = lz_push(
                    "xz",
                    &mut |i, o, a| stream.process(i, o, a),
                    &input[pos..],
                    base + pos as u64,
                    out,
                    sink,
                    fine,
                )?;
                match r {
                    Some(used) => {
                        pos += used;
                        self.between = Some((base + pos as u64, 0, Vec::new()));
                    }
                    None => pos = input.len(),
                }
                continue;
            };
            if magic.is_empty() {
                let n = input[pos..].iter().take_while(|&&b| b == 0).count();
                *zeros += n as u64;
                pos += n;
                if pos == input.len() {
                    break;
                }
            }
            let had = magic.len();
            let take = (XZ_MAGIC.len() - had).min(input.len() - pos);
            magic.extend_from_slice(&input[pos..pos + take]);
            if *zeros % 4 != 0 || magic[..] != XZ_MAGIC[..magic.len()] {
                return Ok(Some((*end, had == 0)));
            }
            pos += take;
            if magic.len() < XZ_MAGIC.len() {
                break;
            }
            // A further stream: start a decoder and give it the header bytes.
            let at = base + pos as u64 - XZ_MAGIC.len() as u64;
            self.between = None;
            self.stream = Box::new(XzStream::new_mem_limit(false, self.window_kb));
            let stream = &mut self.stream;
            if let Some(used) = lz_push(
                "xz",
                &mut |i, o, a| stream.process(i, o, a),
                &XZ_MAGIC,
                at,
                out,
                sink,
                fine,
            )? {
                self.between = Some((at + used as u64, 0, Vec::new()));
            }
        }
        Ok(None)
    }

    /// The end of the input: `Ok(Some((offset, zero)))` if what followed the last stream is not
    /// valid stream padding.
    pub(super) fn finish(
        &mut self,
        at: u64,
        out: &mut [u8],
        sink: Sink,
    ) -> Result<Option<(u64, bool)>, Halt> {
        if let Some((end, zeros, magic)) = &self.between {
            return Ok((zeros % 4 != 0 || !magic.is_empty()).then_some((*end, magic.is_empty())));
        }
        let stream = &mut self.stream;
        lz_finish("xz", &mut |i, o, a| stream.process(i, o, a), at, out, sink).map(|()| None)
    }
}

/// Ends an lzma-rust2 stream: hands over what it still holds, or reports the truncation.
pub(super) fn lz_finish(
    tool: &str,
    process: LzProcess,
    at: u64,
    out: &mut [u8],
    sink: Sink,
) -> Result<(), Halt> {
    loop {
        let res = process(&[], out, Action::Finish)
            .map_err(|e| err(at, &format!("{tool}: {}", xz_message(&e))))?;
        sink(&out[..res.bytes_produced])?;
        if res.status == LzStatus::StreamEnd {
            return Ok(());
        }
        if res.bytes_produced == 0 {
            return Err(err(at, &format!("{tool}: Unexpected end of input")));
        }
    }
}

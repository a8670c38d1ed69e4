//! lzma-rust2's push decoders (`XzStream`, `LzmaStream`) driven over slices.

use super::{err, xz_message, DecodeError, Sink};
use lzma_rust2::{Action, Status as LzStatus};

/// The `process` call shared by lzma-rust2's push decoders (`XzStream`, `LzmaStream`).
pub(crate) type LzProcess<'a> =
    &'a mut dyn FnMut(&[u8], &mut [u8], Action) -> std::io::Result<lzma_rust2::StreamResult>;

/// Runs an lzma-rust2 stream over `input`; returns `Some(bytes used)` when the stream ended.
pub(super) fn lz_push(
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

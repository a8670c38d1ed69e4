//! The six squashfs compressors, each accepting and refusing exactly what the library behind
//! squashfs-tools 4.5's `*_uncompress()` accepts and refuses (zlib `uncompress`, liblzma
//! `lzma_alone_decoder` and `lzma_stream_buffer_decode`, liblzo2 `lzo1x_decompress_safe`, liblz4
//! `LZ4_decompress_safe`, libzstd `ZSTD_decompress`). `outsize` is unsquashfs's output buffer:
//! 8192 for a metadata block, the exact table size for the id/fragment/xattr-id tables.

use lzma_rust2::{Action, Status};

/// Decompresses one block. `Ok` holds what unsquashfs's `compressor_uncompress` returns (its
/// length is the return value; for lzma it is the size the block header declares).
pub(super) fn uncompress(comp: u16, src: &[u8], outsize: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; outsize];
    let n = match comp {
        1 => gzip(src, &mut out)?,
        2 => lzma(src, &mut out)?,
        3 => lzo(src, &mut out)?,
        4 => xz(src, &mut out)?,
        5 => lz4(src, &mut out)?,
        6 => zstd_safe::decompress(&mut out[..], src).map_err(|code| {
            format!(
                "zstd uncompress failed: {}",
                zstd_safe::get_error_name(code)
            )
        })?,
        _ => return Err(format!("unknown compressor {comp}")),
    };
    out.truncate(n);
    Ok(out)
}

/// zlib's `uncompress()`: a zlib stream (header, deflate, Adler-32) that ends within `out`;
/// bytes after the stream's end are ignored.
fn gzip(src: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut d = flate2::Decompress::new(true);
    match d.decompress(src, out, flate2::FlushDecompress::Finish) {
        Ok(flate2::Status::StreamEnd) => Ok(d.total_out() as usize),
        Ok(_) => Err(if d.total_out() as usize == out.len() {
            format!("gzip uncompress failed: more than {} bytes", out.len())
        } else {
            "gzip uncompress failed: the stream is truncated".into()
        }),
        Err(e) => Err(format!("gzip uncompress failed: {e}")),
    }
}

/// liblzma's `lzma_stream_buffer_decode`: exactly one .xz stream, every input byte consumed,
/// 32 MiB memory limit.
fn xz(src: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut x = lzma_rust2::XzStream::new_mem_limit(false, 32 << 10);
    let (mut pos, mut total) = (0, 0);
    loop {
        let r = x
            .process(&src[pos..], &mut out[total..], Action::Finish)
            .map_err(|e| format!("xz uncompress failed: {e}"))?;
        pos += r.bytes_consumed;
        total += r.bytes_produced;
        if r.status == Status::StreamEnd {
            if pos != src.len() {
                return Err(format!(
                    "xz uncompress failed: {} bytes after the xz stream",
                    src.len() - pos
                ));
            }
            return Ok(total);
        }
        if r.bytes_consumed == 0 && r.bytes_produced == 0 {
            return Err(if total == out.len() {
                format!("xz uncompress failed: more than {} bytes", out.len())
            } else {
                "xz uncompress failed: the stream is truncated".into()
            });
        }
    }
}

/// squashfs-tools' `lzma_xz_wrapper.c`: an LZMA-alone header (5 property bytes, a 64-bit size
/// of which unsquashfs reads the low 32 bits and then ignores), decoded as of unknown size. It
/// succeeds at the end-of-payload marker, or when all input is used and at least the declared
/// size came out; it returns the declared size.
fn lzma(src: &[u8], out: &mut [u8]) -> Result<usize, String> {
    if src.len() < 13 {
        return Err("lzma uncompress failed: shorter than the 13-byte header".into());
    }
    let declared = u32::from_le_bytes(src[5..9].try_into().expect("4 bytes")) as usize;
    if declared > out.len() {
        return Err(format!(
            "lzma uncompress failed: the header declares {declared} bytes, more than {}",
            out.len()
        ));
    }
    let props = src[0];
    let dict = u32::from_le_bytes(src[1..5].try_into().expect("4 bytes"));
    // liblzma: props byte at most 224 and lc + lp <= 4; memory within unsquashfs's 32 MiB.
    let (lc, lp) = (props % 9, (props / 9) % 5);
    if props > 224 || lc + lp > 4 {
        return Err(format!(
            "lzma uncompress failed: bad properties byte {props:#x}"
        ));
    }
    if lzma_rust2::lzma_get_memory_usage_by_props(dict.max(4096), props).unwrap_or(u32::MAX)
        > 32 << 10
    {
        return Err(format!(
            "lzma uncompress failed: dictionary of {dict} bytes exceeds the 32 MiB memory limit"
        ));
    }
    let mut d = lzma_rust2::LzmaStream::new_with_props(u64::MAX, props, dict.max(4096), None)
        .map_err(|e| format!("lzma uncompress failed: {e}"))?;
    let data = &src[13..];
    // One byte more than unsquashfs's buffer: output that does not fit is seen as such.
    let mut buf = vec![0u8; out.len() + 1];
    let (mut pos, mut total) = (0, 0);
    let ended = loop {
        match d.process(&data[pos..], &mut buf[total..], Action::Finish) {
            Ok(r) => {
                pos += r.bytes_consumed;
                total += r.bytes_produced;
                if r.status == Status::StreamEnd {
                    break true;
                }
                if r.bytes_consumed == 0 && r.bytes_produced == 0 {
                    break false;
                }
            }
            Err(e) if pos < data.len() || total > out.len() => {
                return Err(format!("lzma uncompress failed: {e}"))
            }
            Err(_) => break false,
        }
        if total > out.len() {
            return Err(format!(
                "lzma uncompress failed: more than {} bytes",
                out.len()
            ));
        }
    };
    if total > out.len() {
        return Err(format!(
            "lzma uncompress failed: more than {} bytes",
            out.len()
        ));
    }
    if !ended && !(pos == data.len() && total >= declared) {
        return Err("lzma uncompress failed: the stream is truncated".into());
    }
    let n = total.min(declared);
    out[..n].copy_from_slice(&buf[..n]);
    Ok(declared)
}

/// liblzo2's `lzo1x_decompress_safe`. The `lzo` crate decodes LZO1X as liblzo2 does, except that
/// it refuses an end-of-stream instruction (`0x11 0 0`) whose length bits are not 1, which liblzo2
/// ignores: such a final instruction is rewritten to the canonical one and decoded again.
fn lzo(src: &[u8], out: &mut [u8]) -> Result<usize, String> {
    match lzo::decompress_into(src, out) {
        Ok(n) => Ok(n),
        Err(lzo::Error::Malformed)
            if src.len() >= 3
                && src[src.len() - 3] & 0xf8 == 0x10
                && src[src.len() - 3] & 7 != 0 =>
        {
            let mut fixed = src.to_vec();
            let at = fixed.len() - 3;
            fixed[at] = 0x11;
            lzo::decompress_into(&fixed, out).map_err(|e| format!("lzo uncompress failed: {e}"))
        }
        Err(e) => Err(format!("lzo uncompress failed: {e}")),
    }
}

/// liblz4's `LZ4_decompress_safe(src, dst, srcSize, outsize)`: the lz4 block format with the
/// reference decoder's end-of-block rules (checked by [`lz4_block_rules`]), decoded by lz4_flex.
fn lz4(src: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let n = lz4_block_rules(src, out.len()).map_err(|e| format!("lz4 uncompress failed: {e}"))?;
    let m = lz4_flex::block::decompress_into(src, out)
        .map_err(|e| format!("lz4 uncompress failed: {e}"))?;
    if m != n {
        return Err(format!("lz4 uncompress failed: {m} bytes, expected {n}"));
    }
    Ok(n)
}

/// Walks the sequences of an lz4 block as LZ4 1.9.4's `LZ4_decompress_generic` does for
/// `LZ4_decompress_safe` (full block, no dictionary, x86-64 build with its fast loop), without
/// copying: the same input and output position checks, in the same order, so the same blocks
/// fail (length extensions near the input end, a last sequence that must be literals ending
/// exactly at the input end, matches ending in the last 5 bytes of the output buffer, offsets
/// before the output start). Returns the output size.
fn lz4_block_rules(src: &[u8], outsize: usize) -> Result<usize, &'static str> {
    const RUN_MASK: i64 = 15;
    const FASTLOOP_SAFE_DISTANCE: i64 = 64;
    let (iend, oend) = (src.len() as i64, outsize as i64);
    if oend == 0 {
        return if src == [0] {
            Ok(0)
        } else {
            Err("empty output")
        };
    }
    if iend == 0 {
        return Err("empty input");
    }
    let byte = |i: i64| -> Result<i64, &'static str> {
        src.get(i as usize)
            .map(|&b| b as i64)
            .ok_or("input ends early")
    };
    let le16 = |i: i64| -> Result<i64, &'static str> { Ok(byte(i)? | byte(i + 1)? << 8) };
    // read_variable_length(iend - RUN_MASK, loop_check, initial_check): only the initial check
    // fails a literal length.
    let lit_len = |ip: &mut i64| -> Result<i64, &'static str> {
        let lencheck = iend - RUN_MASK;
        if *ip >= lencheck {
            return Err("literal length runs past the input");
        }
        let mut len = 0;
        loop {
            let s = byte(*ip)?;
            *ip += 1;
            len += s;
            if *ip >= lencheck || s != 255 {
                return Ok(len);
            }
        }
    };
    // read_variable_length(iend - LASTLITERALS + 1, loop_check, no initial check).
    let match_len = |ip: &mut i64| -> Result<i64, &'static str> {
        let lencheck = iend - 5 + 1;
        let mut len = 0;
        loop {
            let s = byte(*ip)?;
            *ip += 1;
            len += s;
            if *ip >= lencheck {
                return Err("match length runs past the input");
            }
            if s != 255 {
                return Ok(len);
            }
        }
    };
    enum Jump {
        Literal(i64, i64),
        Match(i64, i64),
    }
    let (mut ip, mut op) = (0i64, 0i64);
    let mut jump = None;
    if oend - op >= FASTLOOP_SAFE_DISTANCE {
        loop {
            let token = byte(ip)?;
            ip += 1;
            let mut length = token >> 4;
            if length == RUN_MASK {
                length += lit_len(&mut ip)?;
                if op + length > oend - 32 || ip + length > iend - 32 {
                    jump = Some(Jump::Literal(token, length));
                    break;
                }
            } else if ip > iend - 17 {
                jump = Some(Jump::Literal(token, length));
                break;
            }
            ip += length;
            op += length;
            let offset = le16(ip)?;
            ip += 2;
            let mut mlen = token & 15;
            if mlen == 15 {
                if offset > op {
                    return Err("match offset before the output start");
                }
                mlen += match_len(&mut ip)?;
            }
            mlen += 4;
            if op + mlen >= oend - FASTLOOP_SAFE_DISTANCE {
                jump = Some(Jump::Match(mlen, offset));
                break;
            }
            if offset > op {
                return Err("match offset before the output start");
            }
            op += mlen;
        }
    }
    loop {
        let (token, mut length, mut mlen, offset);
        match jump.take() {
            Some(Jump::Match(m, o)) => {
                (mlen, offset) = (m, o);
            }
            other => {
                if let Some(Jump::Literal(t, l)) = other {
                    (token, length) = (t, l);
                } else {
                    token = byte(ip)?;
                    ip += 1;
                    length = token >> 4;
                    // The two-stage shortcut: no end checks on its literals.
                    if length != RUN_MASK && ip < iend - 16 && op <= oend - 32 {
                        ip += length;
                        op += length;
                        let o = le16(ip)?;
                        ip += 2;
                        let m = token & 15;
                        if m != 15 && o >= 8 && o <= op {
                            op += m + 4;
                            continue;
                        }
                        mlen = m;
                        if mlen == 15 {
                            mlen += match_len(&mut ip)?;
                        }
                        jump = Some(Jump::Match(mlen + 4, o));
                        continue;
                    }
                    if length == RUN_MASK {
                        length += lit_len(&mut ip)?;
                    }
                }
                // safe_literal_copy
                let cpy = op + length;
                if cpy > oend - 12 || ip + length > iend - 8 {
                    if ip + length != iend || cpy > oend {
                        return Err("the last sequence does not end the block");
                    }
                    return Ok(cpy as usize);
                }
                ip += length;
                op = cpy;
                offset = le16(ip)?;
                ip += 2;
                mlen = token & 15;
                if mlen == 15 {
                    mlen += match_len(&mut ip)?;
                }
                mlen += 4;
            }
        }
        // safe_match_copy
        if offset > op {
            return Err("match offset before the output start");
        }
        let cpy = op + mlen;
        if cpy > oend - 5 {
            return Err("a match in the last 5 bytes of the output");
        }
        op = cpy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lz4_rules_accept_what_lz4_flex_writes() {
        let data: Vec<u8> = (0..8192u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        for len in [0, 1, 5, 12, 13, 100, 4096, 8192] {
            let c = lz4_flex::block::compress(&data[..len]);
            assert_eq!(lz4(&c, &mut [0u8; 8192]).unwrap(), len, "{len}");
        }
    }

    #[test]
    fn lzo_end_marker_length_is_ignored() {
        let block = [
            34, 104, 101, 108, 108, 111, 44, 32, 108, 122, 111, 32, 119, 111, 114, 108, 100, 33,
            17, 0, 0,
        ];
        let mut out = [0u8; 64];
        assert_eq!(lzo(&block, &mut out).unwrap(), 17);
        let mut odd = block;
        odd[18] = 0x15;
        assert_eq!(lzo(&odd, &mut out).unwrap(), 17);
        odd[18] = 0x10;
        assert!(lzo(&odd, &mut out).is_err());
    }
}

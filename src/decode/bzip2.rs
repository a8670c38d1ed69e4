//! bzip2: concatenated streams, like `bzip2 -dc` (1.0.8): after a stream, bytes that are not a
//! stream magic (`BZh1`…`BZh9`) are trailing garbage, which it only warns about; the start of a
//! magic cut short by the end of the file is an error ("Compressed file ends unexpectedly").

use super::{err, Halt, Sink};

pub(super) struct Bzip2 {
    dec: bzip2::Decompress,
    /// Bytes of a possible next stream magic (`BZh1`…`BZh9`), or `None` inside a stream.
    between: Option<Vec<u8>>,
    streams: u64,
    in_stream: bool,
}

impl Bzip2 {
    pub(super) fn new() -> Bzip2 {
        Bzip2 {
            dec: bzip2::Decompress::new(false),
            between: None,
            streams: 0,
            in_stream: true,
        }
    }

    pub(super) fn push(
        &mut self,
        input: &[u8],
        base: u64,
        out: &mut [u8],
        sink: Sink,
    ) -> Result<Option<(u64, bool)>, Halt> {
        let mut pos = 0;
        while pos < input.len() {
            if let Some(h) = &mut self.between {
                let had = h.len();
                let take = (MAGIC_LEN - had).min(input.len() - pos);
                h.extend_from_slice(&input[pos..pos + take]);
                if !is_magic_prefix(h) {
                    let prefix_zero = h[..had].iter().all(|&b| b == 0);
                    return Ok(Some(((base + pos as u64) - had as u64, prefix_zero)));
                }
                if h.len() < MAGIC_LEN {
                    return Ok(None);
                }
                // A new stream: replay the magic.
                let hdr = std::mem::take(h);
                self.between = None;
                self.dec = bzip2::Decompress::new(false);
                self.in_stream = true;
                pos += take;
                self.run(&hdr, base + pos as u64 - MAGIC_LEN as u64, out, sink)?;
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
    ) -> Result<(usize, bool), Halt> {
        let mut pos = 0;
        loop {
            let before_in = self.dec.total_in();
            let before_out = self.dec.total_out();
            let r = self.dec.decompress(&input[pos..], out);
            let used = (self.dec.total_in() - before_in) as usize;
            let made = (self.dec.total_out() - before_out) as usize;
            // Every byte decoded before an error reaches the walk, as `bzip2 -dc` writes it.
            sink(&out[..made])?;
            let status = r.map_err(|e| {
                let what = match e {
                    bzip2::Error::DataMagic => {
                        "bzip2: bad magic number (file not created by bzip2)"
                    }
                    bzip2::Error::Data => "bzip2: Data integrity error when decompressing",
                    _ => "bzip2: decompression error",
                };
                err(base + (pos + used) as u64, what)
            })?;
            pos += used;
            if status == bzip2::Status::StreamEnd {
                return Ok((pos, true));
            }
            if used == 0 && made < out.len() {
                return Ok((pos, false));
            }
        }
    }

    pub(super) fn finish(&mut self, at: u64) -> Result<(), Halt> {
        match &self.between {
            Some(h) if h.is_empty() => Ok(()),
            // The start of a further stream's magic, cut short: `bzip2 -dc` fails.
            Some(_) | None => Err(err(at, "bzip2: Compressed file ends unexpectedly")),
        }
    }
}

/// `BZh` and the block size digit.
const MAGIC_LEN: usize = 4;

/// Whether `h` (at most [`MAGIC_LEN`] bytes) is the start of a stream magic, as libbzip2 checks
/// it (`BZ_X_MAGIC_1`…`4`: anything else is `BZ_DATA_ERROR_MAGIC`).
fn is_magic_prefix(h: &[u8]) -> bool {
    h.iter().enumerate().all(|(i, &b)| {
        if i < 3 {
            b == b"BZh"[i]
        } else {
            (b'1'..=b'9').contains(&b)
        }
    })
}

//! bzip2: concatenated streams, like `bzip2 -dc`.

use super::{err, Halt, Sink};

pub(super) struct Bzip2 {
    dec: bzip2::Decompress,
    /// Bytes of a possible next stream header (`BZh`), or `None` inside a stream.
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
            Some(_) => Ok(()), // a partial "BZ" after a complete stream is trailing garbage
            None => Err(err(at, "bzip2: Compressed file ends unexpectedly")),
        }
    }
}

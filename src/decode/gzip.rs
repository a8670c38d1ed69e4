//! gzip: RFC 1952 member framing over a raw-deflate decoder, multi-member like `gzip -dc`.

use super::{err, Halt, Sink};
use crate::limits::GZIP_HEADER_MAX;
use flate2::{Crc, Decompress, FlushDecompress, Status as FlateStatus};

enum GzState {
    Header(Vec<u8>),
    Body,
    Trailer(Vec<u8>),
    /// Between members: the next bytes are either a new member or trailing data.
    Between(Vec<u8>),
}

pub(super) struct Gzip {
    state: GzState,
    inflate: Decompress,
    crc: Crc,
    members: u64,
}

/// Why bytes are not a usable gzip member header.
enum HeaderError {
    /// Not a gzip header at all (after a member: trailing data).
    NotGzip(&'static str),
    /// A gzip header whose FHCRC does not match (`gzip -d` refuses the member, and writes
    /// nothing of it): the offset of the checksum in the header, and gzip's words.
    BadCrc(usize, String),
}

/// Parses a gzip member header; `Ok(None)` if more bytes are needed.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, HeaderError> {
    use HeaderError::NotGzip;
    if (!b.is_empty() && b[0] != 0x1f) || (b.len() >= 2 && b[..2] != [0x1f, 0x8b]) {
        return Err(NotGzip("not in gzip format"));
    }
    if b.len() >= 3 && b[2] != 8 {
        return Err(NotGzip("unknown method -- not supported"));
    }
    if b.len() < 10 {
        return Ok(None);
    }
    let flags = b[3];
    if flags & 0xe0 != 0 {
        return Err(NotGzip("has flags 0xe0 -- not supported"));
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
        if b.len() < pos + 2 {
            return Ok(None);
        }
        // FHCRC: the low 16 bits of the CRC-32 of the header before it; GNU gzip checks it.
        let stored = u16::from_le_bytes([b[pos], b[pos + 1]]);
        let mut crc = Crc::new();
        crc.update(&b[..pos]);
        let computed = crc.sum() as u16;
        if stored != computed {
            return Err(HeaderError::BadCrc(
                pos,
                format!(
                    "gzip: header checksum 0x{stored:04x} != computed checksum 0x{computed:04x}"
                ),
            ));
        }
        pos += 2;
    }
    Ok(Some(pos))
}

impl Gzip {
    pub(super) fn new() -> Gzip {
        Gzip {
            state: GzState::Header(Vec::new()),
            inflate: Decompress::new(false),
            crc: Crc::new(),
            members: 0,
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
                        Err(HeaderError::BadCrc(at, message)) => {
                            return Err(err((base + pos as u64) - had as u64 + at as u64, &message))
                        }
                        Err(HeaderError::NotGzip(_)) if between => {
                            // Not a new member: everything from the member's end on is trailing data.
                            let prefix_zero = h[..had].iter().all(|&b| b == 0);
                            return Ok(Some(((base + pos as u64) - had as u64, prefix_zero)));
                        }
                        Err(HeaderError::NotGzip(e)) => {
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
                    let r = self
                        .inflate
                        .decompress(&input[pos..], out, FlushDecompress::None);
                    let used = (self.inflate.total_in() - before_in) as usize;
                    let made = (self.inflate.total_out() - before_out) as usize;
                    // Every byte inflated before an error reaches the walk (`gzip -d` writes it).
                    self.crc.update(&out[..made]);
                    sink(&out[..made])?;
                    let status = r.map_err(|_| {
                        err(
                            base + (pos + used) as u64,
                            "gzip: invalid compressed data--format violated",
                        )
                    })?;
                    pos += used;
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

    pub(super) fn finish(&mut self, at: u64) -> Result<(), Halt> {
        match &self.state {
            GzState::Between(h) if h.is_empty() => Ok(()),
            GzState::Between(_) => Err(err(at, "gzip: unexpected end of file")),
            GzState::Header(_) if self.members == 0 => Err(err(at, "gzip: unexpected end of file")),
            _ => Err(err(at, "gzip: unexpected end of file")),
        }
    }
}

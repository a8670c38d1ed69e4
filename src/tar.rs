//! A push-driven tar walk: decoded bytes in, entries out, nothing buffered but headers.
//!
//! Each 512-byte header is decoded with the `tar` crate's [`tar::Header`]; GNU long names and
//! links (`L`/`K`), PAX extended headers (`x`: `path`, `linkpath`, `size`) and USTAR prefixes are
//! folded into the next entry the way Go's `archive/tar` (LXD's reader) does. Errors use Go's words
//! (`archive/tar: invalid tar header`, `unexpected EOF`), since those are what LXD prints.

use crate::limits::{ENTRIES_MAX, PAX_HEADER_MAX};

/// Go's `archive/tar` message for a malformed header.
pub const ERR_HEADER: &str = "archive/tar: invalid tar header";
/// Go's message for a stream that ends inside a header or an entry's data.
pub const ERR_UNEXPECTED_EOF: &str = "unexpected EOF";
/// Go's message for a GNU long name or PAX header over 1 MiB.
pub const ERR_FIELD_TOO_LONG: &str = "archive/tar: header field too long";

/// One archive member, as Go's reader presents it.
#[derive(Debug, Clone)]
pub struct EntryHeader {
    /// Full name: PAX `path`, else GNU long name, else USTAR prefix + name.
    pub name: Vec<u8>,
    /// Link target (symlinks and hard links).
    pub link: Vec<u8>,
    /// Type flag, with `\0` already turned into `0` (or `5` for names ending in `/`), as Go does.
    pub kind: u8,
    /// Data bytes that follow the header (0 for header-only types such as links and directories).
    pub size: u64,
    /// Offset of the header in the decoded stream.
    pub offset: u64,
}

impl EntryHeader {
    pub fn is_regular(&self) -> bool {
        self.kind == b'0' || self.kind == b'7'
    }
    pub fn is_symlink(&self) -> bool {
        self.kind == b'2'
    }
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Receives what the walk finds.
pub trait Visitor {
    /// A new entry; return `true` to be handed its data.
    fn entry(&mut self, header: &EntryHeader) -> bool;
    /// A piece of the current entry's data (only if [`Visitor::entry`] returned `true`).
    fn data(&mut self, chunk: &[u8]);
    /// The current entry's data is complete.
    fn entry_end(&mut self);
}

/// A malformed or truncated archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarError {
    /// Offset in the decoded stream.
    pub offset: u64,
    /// The message Go's `archive/tar` (and so LXD) gives.
    pub go_message: &'static str,
    /// What is wrong, in plain words.
    pub detail: String,
    /// Name of the entry being read, if any.
    pub entry: Option<String>,
    /// The stream ended inside a header block: Go calls that `unexpected EOF`, but GNU tar
    /// silently drops a final partial block.
    pub in_header: bool,
}

/// How the archive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarEnd {
    /// Two zero blocks: a proper end-of-archive marker.
    Marker,
    /// One zero block, then the end of the stream.
    LoneZeroBlock,
    /// The stream ended on a header boundary without an end-of-archive marker.
    NoMarker,
}

enum State {
    Header,
    /// Data of an ordinary entry: `left` data bytes, then `pad` padding bytes.
    Data {
        left: u64,
        pad: u64,
        wanted: bool,
    },
    /// Data of a GNU `L`/`K` or PAX `x`/`g` header, collected into `ext`.
    Special {
        kind: u8,
        left: u64,
        pad: u64,
    },
    /// After the end-of-archive marker (or an error): bytes are only counted.
    Done,
}

#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

/// The walk's state.
pub struct TarWalker {
    state: State,
    block: [u8; 512],
    fill: usize,
    /// Decoded bytes seen.
    offset: u64,
    zero_blocks: u8,
    pending: Pending,
    ext: Vec<u8>,
    current: Option<String>,
    /// Entries seen (not counting GNU/PAX meta headers).
    pub entries: u64,
    /// Data bytes of those entries.
    pub data_bytes: u64,
    error: Option<TarError>,
    end: Option<TarEnd>,
    /// Bytes after the end-of-archive marker.
    pub after_end: u64,
}

/// Computes a header's checksum and compares it with the stored one (unsigned or signed sum).
pub fn checksum_ok(block: &[u8; 512]) -> bool {
    let header = tar::Header::from_byte_slice(block);
    let Ok(stored) = header.cksum() else {
        return false;
    };
    let mut unsigned: u32 = 0;
    let mut signed: i32 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    stored == unsigned || stored as i32 == signed
}

fn parse_pax(data: &[u8], p: &mut Pending) -> Result<(), String> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("PAX record without length")?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("PAX record length does not match".into());
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        match key {
            b"path" => p.pax_path = Some(value.to_vec()),
            b"linkpath" => p.pax_link = Some(value.to_vec()),
            b"size" => {
                let s = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                p.pax_size = Some(s.ok_or("PAX size is not a number")?);
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

fn trim_nul(v: &[u8]) -> &[u8] {
    match v.iter().position(|&b| b == 0) {
        Some(i) => &v[..i],
        None => v,
    }
}

impl Default for TarWalker {
    fn default() -> Self {
        Self::new()
    }
}

impl TarWalker {
    pub fn new() -> TarWalker {
        TarWalker {
            state: State::Header,
            block: [0; 512],
            fill: 0,
            offset: 0,
            zero_blocks: 0,
            pending: Pending::default(),
            ext: Vec::new(),
            current: None,
            entries: 0,
            data_bytes: 0,
            error: None,
            end: None,
            after_end: 0,
        }
    }

    /// The first error, if the archive is malformed. The walk stops there.
    pub fn error(&self) -> Option<&TarError> {
        self.error.as_ref()
    }

    /// How the archive ended (known once [`TarWalker::finish`] was called or the marker was seen).
    pub fn end(&self) -> Option<TarEnd> {
        self.end
    }

    /// Decoded bytes pushed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the walk has stopped (end marker or error); further bytes are only counted.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn fail(&mut self, at: u64, go_message: &'static str, detail: impl Into<String>) {
        let in_header = go_message == ERR_UNEXPECTED_EOF && matches!(self.state, State::Header);
        self.error = Some(TarError {
            offset: at,
            go_message,
            detail: detail.into(),
            entry: self.current.clone(),
            in_header,
        });
        self.state = State::Done;
    }

    /// Feeds decoded bytes.
    pub fn push(&mut self, mut input: &[u8], v: &mut dyn Visitor) {
        while !input.is_empty() {
            match &mut self.state {
                State::Done => {
                    if self.end == Some(TarEnd::Marker) {
                        self.after_end += input.len() as u64;
                    }
                    self.offset += input.len() as u64;
                    return;
                }
                State::Header => {
                    let take = (512 - self.fill).min(input.len());
                    self.block[self.fill..self.fill + take].copy_from_slice(&input[..take]);
                    self.fill += take;
                    input = &input[take..];
                    self.offset += take as u64;
                    if self.fill == 512 {
                        self.fill = 0;
                        self.header(v);
                    }
                }
                State::Data { left, pad, wanted } => {
                    if *left > 0 {
                        let n = (*left).min(input.len() as u64) as usize;
                        if *wanted {
                            v.data(&input[..n]);
                        }
                        *left -= n as u64;
                        input = &input[n..];
                        self.offset += n as u64;
                        if *left == 0 && *wanted {
                            v.entry_end();
                        }
                    } else {
                        let n = (*pad).min(input.len() as u64) as usize;
                        *pad -= n as u64;
                        input = &input[n..];
                        self.offset += n as u64;
                    }
                    if let State::Data {
                        left: 0, pad: 0, ..
                    } = self.state
                    {
                        self.state = State::Header;
                        self.current = None;
                    }
                }
                State::Special { kind, left, pad } => {
                    let kind = *kind;
                    if *left > 0 {
                        let n = (*left).min(input.len() as u64) as usize;
                        self.ext.extend_from_slice(&input[..n]);
                        *left -= n as u64;
                        input = &input[n..];
                        self.offset += n as u64;
                    } else {
                        let n = (*pad).min(input.len() as u64) as usize;
                        *pad -= n as u64;
                        input = &input[n..];
                        self.offset += n as u64;
                    }
                    if let State::Special {
                        left: 0, pad: 0, ..
                    } = self.state
                    {
                        self.state = State::Header;
                        let data = std::mem::take(&mut self.ext);
                        match kind {
                            b'L' => self.pending.long_name = Some(trim_nul(&data).to_vec()),
                            b'K' => self.pending.long_link = Some(trim_nul(&data).to_vec()),
                            b'x' => {
                                if let Err(e) = parse_pax(&data, &mut self.pending) {
                                    let at = self.offset;
                                    self.fail(
                                        at,
                                        ERR_HEADER,
                                        format!("malformed PAX extended header: {e}"),
                                    );
                                }
                            }
                            _ => {} // global PAX headers: nothing LXD uses
                        }
                    }
                }
            }
        }
    }

    fn header(&mut self, v: &mut dyn Visitor) {
        let at = self.offset - 512;
        if self.block.iter().all(|&b| b == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks == 2 {
                self.end = Some(TarEnd::Marker);
                self.state = State::Done;
            }
            return;
        }
        if self.zero_blocks == 1 {
            self.fail(
                at,
                ERR_HEADER,
                format!(
                    "a zero block followed by a non-zero block at decoded offset {}",
                    at
                ),
            );
            return;
        }
        if !checksum_ok(&self.block) {
            self.fail(
                at,
                ERR_HEADER,
                format!("header checksum mismatch at decoded offset {at}"),
            );
            return;
        }
        let header = tar::Header::from_byte_slice(&self.block);
        let size = match header.entry_size() {
            Ok(s) => s,
            Err(_) => {
                self.fail(
                    at,
                    ERR_HEADER,
                    format!("unreadable size field in the header at decoded offset {at}"),
                );
                return;
            }
        };
        let mut kind = self.block[156];
        let pad_of = |n: u64| (512 - n % 512) % 512;
        if matches!(kind, b'L' | b'K' | b'x' | b'g') {
            if size > PAX_HEADER_MAX as u64 {
                self.fail(
                    at,
                    ERR_FIELD_TOO_LONG,
                    format!(
                        "{} header of {size} bytes at decoded offset {at}",
                        kind as char
                    ),
                );
                return;
            }
            if kind == b'g' {
                // Go hands global headers to the caller as an entry; LXD ignores them by name.
                self.state = State::Data {
                    left: size,
                    pad: pad_of(size),
                    wanted: false,
                };
                if size == 0 {
                    self.state = State::Header;
                }
                return;
            }
            self.ext.clear();
            self.state = State::Special {
                kind,
                left: size,
                pad: pad_of(size),
            };
            if size == 0 {
                self.state = State::Header;
                match kind {
                    b'L' => self.pending.long_name = Some(Vec::new()),
                    b'K' => self.pending.long_link = Some(Vec::new()),
                    _ => {}
                }
            }
            return;
        }
        let p = std::mem::take(&mut self.pending);
        let name = p
            .pax_path
            .or(p.long_name)
            .unwrap_or_else(|| trim_nul(&header.path_bytes()).to_vec());
        let link = p.pax_link.or(p.long_link).unwrap_or_else(|| {
            header
                .link_name_bytes()
                .map(|l| trim_nul(&l).to_vec())
                .unwrap_or_default()
        });
        let size = p.pax_size.unwrap_or(size);
        if kind == 0 {
            kind = if name.ends_with(b"/") { b'5' } else { b'0' };
        }
        // Go gives header-only types no data, whatever their size field says.
        let data = if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
            0
        } else {
            size
        };
        self.entries += 1;
        self.data_bytes += data;
        let entry = EntryHeader {
            name,
            link,
            kind,
            size: data,
            offset: at,
        };
        self.current = Some(entry.name_lossy());
        if self.entries > ENTRIES_MAX {
            self.fail(
                at,
                ERR_HEADER,
                format!("more than {ENTRIES_MAX} entries; lxdimg stops walking here"),
            );
            return;
        }
        let wanted = v.entry(&entry);
        self.state = State::Data {
            left: data,
            pad: pad_of(data),
            wanted,
        };
        if data == 0 {
            if wanted {
                v.entry_end();
            }
            self.state = State::Header;
            self.current = None;
        }
    }

    /// Signals the end of the decoded stream.
    pub fn finish(&mut self) {
        if self.error.is_some() || self.end.is_some() {
            return;
        }
        let at = self.offset;
        match self.state {
            State::Header if self.fill == 0 => {
                self.end = Some(if self.zero_blocks == 1 {
                    TarEnd::LoneZeroBlock
                } else {
                    TarEnd::NoMarker
                });
                self.state = State::Done;
            }
            State::Header => self.fail(
                at,
                ERR_UNEXPECTED_EOF,
                format!("the stream ends inside a header, at decoded offset {at}"),
            ),
            State::Data { .. } => {
                let who = self.current.clone().unwrap_or_default();
                self.fail(
                    at,
                    ERR_UNEXPECTED_EOF,
                    format!("the stream ends inside the data of \"{who}\", at decoded offset {at}"),
                )
            }
            State::Special { .. } => self.fail(
                at,
                ERR_UNEXPECTED_EOF,
                format!("the stream ends inside an extended header, at decoded offset {at}"),
            ),
            State::Done => {}
        }
    }
}

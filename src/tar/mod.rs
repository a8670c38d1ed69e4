//! A push-driven tar walk: decoded bytes in, entries out, nothing buffered but headers.
//!
//! Each 512-byte header is decoded with the `tar` crate's [`tar::Header`]; GNU long names and
//! links (`L`/`K`), PAX extended headers (`x`: `path`, `linkpath`, `size`) and USTAR prefixes are
//! folded into the next entry the way Go's `archive/tar` (LXD's reader) does. Errors use Go's words
//! (`archive/tar: invalid tar header`, `unexpected EOF`), since those are what LXD prints.
//!
//! GNU sparse members (`tar -S`) are read in every flavour GNU tar and bsdtar write, as Go's
//! reader presents them: the old GNU `S` header with its map in the header and in extension
//! blocks, and the PAX formats 0.0 (`GNU.sparse.offset`/`numbytes` records), 0.1
//! (`GNU.sparse.map`) and 1.0 (the map at the start of the member's data). The entry carries the
//! real name (`GNU.sparse.name`, not the `GNUSparseFile.N/` header name) and the real size, and
//! its data is handed over with the holes filled with zeros. Where GNU tar (which unpacks the
//! image) and Go's reader (which imports it) disagree on a sparse map, both readings are kept:
//! see [`TarError::in_header`] and [`TarWalker::gnu_error`].

mod header;
mod sparse;
mod sparse_map;
pub mod stream;

use crate::limits::{ENTRIES_MAX, PAX_HEADER_MAX};
use header::{parse_pax, Pending};
use sparse::{Building, Expander};

/// Go's `archive/tar` message for a malformed header.
pub const ERR_HEADER: &str = "archive/tar: invalid tar header";
/// Go's message for a stream that ends inside a header or an entry's data.
pub const ERR_UNEXPECTED_EOF: &str = "unexpected EOF";
/// Go's message for a GNU long name or PAX header over 1 MiB.
pub const ERR_FIELD_TOO_LONG: &str = "archive/tar: header field too long";

/// Logical bytes of a sparse member handed to the [`Visitor`] at most. Holes cost nothing in the
/// archive, so a few bytes could otherwise claim terabytes of zeros; this is far above anything
/// the inspector keeps of an entry. The entry still ends normally ([`Visitor::entry_end`]).
pub const SPARSE_DELIVER_MAX: u64 = 64 << 20;
/// Data regions of one sparse member kept to rebuild its data; further regions are only
/// checked, and the data is handed over up to the first region not kept.
pub const SPARSE_REGIONS_KEEP: usize = 1 << 16;

/// The GNU sparse formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseFormat {
    /// Type `S`: the map in the header (4 regions) and in 512-byte extension blocks of 21
    /// regions each (`tar --format=gnu -S`).
    OldGnu,
    /// PAX 0.0 / 0.1: the map in `GNU.sparse.offset`/`GNU.sparse.numbytes` records or in one
    /// `GNU.sparse.map` record (`tar --format=posix --sparse-version=0.0|0.1 -S`).
    Pax0,
    /// PAX 1.0: the map as decimal lines at the start of the member's data
    /// (`tar --format=posix -S`, `bsdtar --format=pax --read-sparse`).
    Pax1,
}

/// One archive member, as Go's reader presents it.
#[derive(Debug, Clone)]
pub struct EntryHeader {
    /// Full name: GNU long name, else PAX `path`, else USTAR prefix + name; for a PAX sparse
    /// member, `GNU.sparse.name`.
    pub name: Vec<u8>,
    /// Link target (symlinks and hard links).
    pub link: Vec<u8>,
    /// Type flag, with `\0` already turned into `0` (or `5` for names ending in `/`), as Go does
    /// (an old GNU sparse member keeps its `S`).
    pub kind: u8,
    /// Size of the data as Go's reader gives it (0 for header-only types such as links and
    /// directories); for a sparse member, its real size, holes included.
    pub size: u64,
    /// Offset of the header in the decoded stream.
    pub offset: u64,
    /// The sparse format, for a sparse member.
    pub sparse: Option<SparseFormat>,
}

impl EntryHeader {
    /// Whether the member unpacks as a regular file (an old GNU sparse member does).
    pub fn is_regular(&self) -> bool {
        matches!(self.kind, b'0' | b'7' | b'S')
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
    /// The current entry's data is complete. Not called when Go's reader fails while reading
    /// it (a sparse map that references data the archive does not hold, or leaves some unused).
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
    /// GNU tar does not fail where Go does: the stream ended inside a header block (Go calls
    /// that `unexpected EOF`, but GNU tar silently drops a final partial block), or Go refuses a
    /// sparse map GNU tar extracts (regions out of order or past the real size, a map on a
    /// directory, an old GNU `S` header without the GNU magic, a region count that does not match).
    pub in_header: bool,
}

/// A member GNU tar fails to extract although Go's reader, and so LXD's import, reads past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GnuTarError {
    /// Offset of the member's header in the decoded stream.
    pub offset: u64,
    /// What GNU tar prints.
    pub gnu_message: String,
    /// What is wrong, in plain words.
    pub detail: String,
    /// The member's name.
    pub entry: Option<String>,
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
    /// The extension blocks of an old GNU sparse header, or the map blocks of a PAX 1.0 sparse
    /// member, collected one by one into `block`; the member is in `building`.
    SparseBlocks,
    /// After the end-of-archive marker (or an error): bytes are only counted.
    Done,
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
    building: Option<Box<Building>>,
    expander: Option<Box<Expander>>,
    /// Entries seen (not counting GNU/PAX meta headers).
    pub entries: u64,
    /// Data bytes of those entries (the real size of a sparse member).
    pub data_bytes: u64,
    error: Option<TarError>,
    gnu_error: Option<GnuTarError>,
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
fn trim_nul(v: &[u8]) -> &[u8] {
    match v.iter().position(|&b| b == 0) {
        Some(i) => &v[..i],
        None => v,
    }
}

fn header_only(kind: u8) -> bool {
    matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
}

fn pad_of(n: u64) -> u64 {
    (512 - n % 512) % 512
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
            building: None,
            expander: None,
            entries: 0,
            data_bytes: 0,
            error: None,
            gnu_error: None,
            end: None,
            after_end: 0,
        }
    }

    /// The first error, if the archive is malformed. The walk stops there.
    pub fn error(&self) -> Option<&TarError> {
        self.error.as_ref()
    }

    /// The first member GNU tar fails to extract although Go's reader walks on (a sparse map
    /// GNU tar refuses, or one whose regions do not add up to the member's archive blocks, so
    /// that GNU tar loses its place in the archive). LXD's import is not affected; unpacking is.
    pub fn gnu_error(&self) -> Option<&GnuTarError> {
        self.gnu_error.as_ref()
    }

    /// How the archive ended (known once [`TarWalker::finish`] was called or the marker was seen).
    pub fn end(&self) -> Option<TarEnd> {
        self.end
    }

    /// Decoded bytes pushed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes that can be pushed next without the walk changing state more than once (the rest of
    /// a header block, of an entry's data, or of its padding). The rewriter
    /// ([`crate::rewrite`]) pushes this many at a time to know where each member's blocks end.
    pub fn step_len(&self) -> usize {
        let part = |left: u64, pad: u64| {
            usize::try_from(if left > 0 { left } else { pad }).unwrap_or(usize::MAX)
        };
        match &self.state {
            State::Header | State::SparseBlocks => 512 - self.fill,
            State::Data { left, pad, .. } => part(*left, *pad),
            State::Special { left, pad, .. } => part(*left, *pad),
            State::Done => usize::MAX,
        }
    }

    /// Whether the walk is at a block boundary, expecting a header (between members, or between
    /// a member's GNU/PAX extension headers).
    pub fn at_header(&self) -> bool {
        matches!(self.state, State::Header) && self.fill == 0
    }

    /// Whether the walk has stopped (end marker or error); further bytes are only counted.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn fail(&mut self, at: u64, go_message: &'static str, detail: impl Into<String>) {
        let in_header = go_message == ERR_UNEXPECTED_EOF && matches!(self.state, State::Header);
        self.fail_as(at, go_message, detail, in_header);
    }

    fn fail_as(
        &mut self,
        at: u64,
        go_message: &'static str,
        detail: impl Into<String>,
        gnu_ok: bool,
    ) {
        let mut detail = detail.into();
        if gnu_ok && go_message == ERR_HEADER {
            detail.push_str("; Go's archive/tar refuses it, GNU tar unpacks it");
        }
        self.error = Some(TarError {
            offset: at,
            go_message,
            detail,
            entry: self.current.clone(),
            in_header: gnu_ok,
        });
        self.state = State::Done;
        self.building = None;
        self.expander = None;
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
                State::Header | State::SparseBlocks => {
                    let take = (512 - self.fill).min(input.len());
                    self.block[self.fill..self.fill + take].copy_from_slice(&input[..take]);
                    self.fill += take;
                    input = &input[take..];
                    self.offset += take as u64;
                    if self.fill == 512 {
                        self.fill = 0;
                        if matches!(self.state, State::Header) {
                            self.header(v);
                        } else {
                            self.sparse_block(v);
                        }
                    }
                }
                State::Data { left, pad, wanted } => {
                    if *left > 0 {
                        let n = (*left).min(input.len() as u64) as usize;
                        if *wanted {
                            match self.expander.as_mut() {
                                Some(x) => x.data(&input[..n], v),
                                None => v.data(&input[..n]),
                            }
                        }
                        *left -= n as u64;
                        input = &input[n..];
                        self.offset += n as u64;
                        if *left == 0 && *wanted {
                            self.data_end(v);
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

    /// The current entry's data is over: the visitor hears of it (unless Go's reader fails on
    /// a sparse member's data).
    fn data_end(&mut self, v: &mut dyn Visitor) {
        match self.expander.take() {
            Some(mut x) => x.finish(v),
            None => v.entry_end(),
        }
    }
}

impl TarWalker {
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
            State::SparseBlocks => self.fail(
                at,
                ERR_UNEXPECTED_EOF,
                format!("the stream ends inside a sparse map, at decoded offset {at}"),
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

#[cfg(test)]
mod tests {
    use super::sparse_map::*;
    use super::*;

    #[test]
    fn tar_numbers_as_go_and_gnu_tar_read_them() {
        assert_eq!(go_numeric(b"00000200000\0"), Some(0o200000));
        assert_eq!(go_numeric(&[0; 12]), Some(0));
        assert_eq!(go_numeric(b" 0010000\0   "), Some(0o10000));
        assert_eq!(go_numeric(b"+0010000\0  "), None);
        assert_eq!(go_numeric(b"zzzzzzzzzzz\0"), None);
        assert_eq!(
            go_numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(go_numeric(&[0xff; 12]), Some(-1));
        assert_eq!(gnu_numeric(b"00000200000\0"), Some(0o200000));
        // A leading NUL is skipped, and a field that is then empty reads as 0.
        assert_eq!(gnu_numeric(&[0; 12]), Some(0));
        assert_eq!(gnu_numeric(b" 0010000\0   "), Some(0o10000));
        assert_eq!(gnu_numeric(b"            "), None);
        assert_eq!(gnu_numeric(b"0010000x\0  "), None);
        assert_eq!(gnu_numeric(b"zzzzzzzzzzz\0"), None);
    }

    #[test]
    fn decimal_numbers_as_go_and_gnu_tar_read_them() {
        let t = NumTok::of;
        assert_eq!(
            (t(b"4096").go(), t(b"4096").gnu()),
            (Some(4096), Some(4096))
        );
        assert_eq!((t(b"+5").go(), t(b"+5").gnu()), (Some(5), None));
        assert_eq!((t(b"-1").go(), t(b"-1").gnu()), (Some(-1), None));
        assert_eq!((t(b"").go(), t(b"").gnu()), (None, None));
        assert_eq!((t(b"5 ").go(), t(b"5 ").gnu()), (None, None));
        assert_eq!(t(b"9223372036854775807").go(), Some(i64::MAX));
        assert_eq!(t(b"9223372036854775808").go(), None);
        assert_eq!(t(b"-9223372036854775808").go(), Some(i64::MIN));
        assert_eq!(t(b"000000000000000000000000007").go(), Some(7));
    }

    #[test]
    fn pax_sparse_versions_as_go_tells_them() {
        let s = |major: &str, minor: &str, map: &str| PaxSparse {
            major: (!major.is_empty()).then(|| major.into()),
            minor: (!minor.is_empty()).then(|| minor.into()),
            map: (!map.is_empty()).then(|| map.into()),
            ..Default::default()
        };
        assert_eq!(
            pax_sparse_format(&s("1", "0", "")),
            Some(SparseFormat::Pax1)
        );
        assert_eq!(
            pax_sparse_format(&s("0", "1", "")),
            Some(SparseFormat::Pax0)
        );
        assert_eq!(
            pax_sparse_format(&s("0", "0", "")),
            Some(SparseFormat::Pax0)
        );
        assert_eq!(
            pax_sparse_format(&s("", "", "0,1")),
            Some(SparseFormat::Pax0)
        );
        assert_eq!(pax_sparse_format(&s("2", "0", "0,1")), None);
        assert_eq!(pax_sparse_format(&s("1", "", "")), None);
        assert_eq!(pax_sparse_format(&s("", "", "")), None);
    }
}

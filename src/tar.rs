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

use crate::limits::{ENTRIES_MAX, PAX_HEADER_MAX};

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

#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
    sparse: PaxSparse,
}

/// The `GNU.sparse.*` records of the last PAX header, as Go keeps them, and GNU tar's reading
/// of the same records.
#[derive(Default)]
struct PaxSparse {
    major: Option<Vec<u8>>,
    minor: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    size: Option<Vec<u8>>,
    realsize: Option<Vec<u8>>,
    numblocks: Option<Vec<u8>>,
    map: Option<Vec<u8>>,
    /// PAX 0.0's `GNU.sparse.offset`/`numbytes` values in order (Go joins them into the map).
    list: Vec<Vec<u8>>,
    gnu: GnuPax0,
}

/// GNU tar's reading of PAX 0.x sparse records (xheader.c's decoders, in record order).
#[derive(Default)]
struct GnuPax0 {
    /// `GNU.sparse.numblocks`: the map's capacity.
    capacity: Option<u64>,
    /// Regions stored so far.
    regions: u64,
    /// Data blocks they take in the archive (each region is block-aligned).
    blocks: u64,
    /// The first record GNU tar complains about.
    bad: Option<String>,
}

impl GnuPax0 {
    fn complain(&mut self, msg: String) {
        self.bad.get_or_insert(msg);
    }

    fn add_region(&mut self, key: &str, value: &[u8], len: u64) {
        match self.capacity {
            Some(c) if self.regions < c => {
                self.regions += 1;
                self.blocks = self.blocks.saturating_add(len.div_ceil(512));
            }
            _ => self.complain(format!(
                "tar: Malformed extended header: excess {key}={}",
                String::from_utf8_lossy(value)
            )),
        }
    }

    fn record(&mut self, key: &[u8], value: &[u8]) {
        let keyword = String::from_utf8_lossy(key).into_owned();
        let invalid = || {
            format!(
                "tar: Malformed extended header: invalid {keyword}={}",
                String::from_utf8_lossy(value)
            )
        };
        let num = |max: u64| {
            let t = NumTok::of(value);
            t.gnu().filter(|&n| n <= max)
        };
        match key {
            b"GNU.sparse.numblocks" => match num(u64::MAX) {
                Some(n) => {
                    self.capacity = Some(n);
                    self.regions = 0;
                    self.blocks = 0;
                }
                None => self.complain(invalid()),
            },
            b"GNU.sparse.size" | b"GNU.sparse.realsize" if num(i64::MAX as u64).is_none() => {
                self.complain(invalid())
            }
            b"GNU.sparse.offset" => {
                if num(i64::MAX as u64).is_none() {
                    self.complain(invalid());
                } else if self.capacity.is_none_or(|c| self.regions >= c) {
                    self.complain(format!(
                        "tar: Malformed extended header: excess GNU.sparse.offset={}",
                        String::from_utf8_lossy(value)
                    ));
                }
            }
            b"GNU.sparse.numbytes" => match num(u64::MAX) {
                Some(n) => self.add_region("GNU.sparse.numbytes", value, n),
                None => self.complain(invalid()),
            },
            b"GNU.sparse.major" | b"GNU.sparse.minor" if num(i32::MAX as u64).is_none() => {
                self.complain(invalid())
            }
            b"GNU.sparse.map" => {
                self.regions = 0;
                self.blocks = 0;
                let mut offset_next = true;
                for v in value.split(|&b| b == b',') {
                    // Each value starts with a digit and runs to a comma or the end.
                    let Some(n) = NumTok::of(v).gnu().filter(|&n| n <= i64::MAX as u64) else {
                        self.complain(invalid());
                        return;
                    };
                    if !offset_next {
                        self.add_region("GNU.sparse.map", v, n);
                        if self.bad.is_some() {
                            return;
                        }
                    }
                    offset_next = !offset_next;
                }
                if !offset_next {
                    self.complain(format!(
                        "tar: Malformed extended header: invalid {keyword}: odd number of values"
                    ));
                }
            }
            _ => {}
        }
    }
}

/// A decimal number read byte by byte, judged as Go's `strconv.ParseInt(s, 10, 64)` and as GNU
/// tar's `decode_num` (digits only) would.
#[derive(Default, Clone, Copy)]
struct NumTok {
    len: u64,
    digits: u64,
    value: u64,
    signed: bool,
    negative: bool,
    overflow: bool,
    other: bool,
}

impl NumTok {
    fn of(s: &[u8]) -> NumTok {
        let mut t = NumTok::default();
        for &b in s {
            t.push(b);
        }
        t
    }

    fn push(&mut self, b: u8) {
        if self.len == 0 && (b == b'+' || b == b'-') {
            self.signed = true;
            self.negative = b == b'-';
        } else if b.is_ascii_digit() {
            self.digits += 1;
            match self
                .value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
            {
                Some(v) => self.value = v,
                None => self.overflow = true,
            }
        } else {
            self.other = true;
        }
        self.len += 1;
    }

    /// Go's `strconv.ParseInt(s, 10, 64)`.
    fn go(&self) -> Option<i64> {
        if self.other || self.digits == 0 || self.overflow {
            return None;
        }
        if self.negative {
            (self.value <= 1 << 63).then(|| (self.value as i64).wrapping_neg())
        } else {
            i64::try_from(self.value).ok()
        }
    }

    /// GNU tar's `decode_num`: digits only.
    fn gnu(&self) -> Option<u64> {
        (!self.other && !self.signed && self.digits > 0 && !self.overflow).then_some(self.value)
    }
}

/// Go's `parseNumeric` (base-256 or octal, NULs and spaces trimmed).
fn go_numeric(b: &[u8]) -> Option<i64> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        let inv: u8 = if b[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in b.iter().enumerate() {
            let mut c = c ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            if x >> 56 > 0 {
                return None;
            }
            x = x << 8 | u64::from(c);
        }
        if x >> 63 > 0 {
            return None;
        }
        return Some(if inv == 0xff { !(x as i64) } else { x as i64 });
    }
    let trim = |c: &u8| *c == b' ' || *c == 0;
    let start = b.iter().position(|c| !trim(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !trim(c)).map_or(start, |i| i + 1);
    let s = trim_nul(&b[start..end]);
    if s.is_empty() {
        return Some(0);
    }
    let s = std::str::from_utf8(s).ok()?;
    // Go's ParseUint takes no sign; Rust's from_str_radix would take a '+'.
    if s.starts_with('+') {
        return None;
    }
    u64::from_str_radix(s, 8).ok().map(|x| x as i64)
}

/// GNU tar's `OFF_FROM_HEADER` for the old GNU sparse fields: an optional leading NUL, leading
/// blanks, octal digits, then the end, a NUL or a blank (a field that starts with a NUL reads as
/// 0). `None` where GNU tar complains.
fn gnu_numeric(b: &[u8]) -> Option<i64> {
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut i = usize::from(b.first() == Some(&0));
    loop {
        if i == b.len() {
            return None;
        }
        if !space(b[i]) {
            break;
        }
        i += 1;
    }
    if (b[i] == 0x80 || b[i] == 0xff) && i + 2 <= b.len() {
        return go_numeric(&b[i..]);
    }
    let mut value: i64 = 0;
    while i < b.len() && (b'0'..=b'7').contains(&b[i]) {
        value = value.checked_mul(8)?.checked_add(i64::from(b[i] - b'0'))?;
        i += 1;
    }
    (i == b.len() || b[i] == 0 || space(b[i])).then_some(value)
}

/// A sparse member's map as it is read, checked both by Go's rules and by GNU tar's.
struct SparseMap {
    format: SparseFormat,
    /// The real size (Go's `Header.Size`).
    size: i64,
    /// Go: end of the previous region, and why `validateSparseEntries` refuses the map.
    prev_end: i64,
    invalid: Option<String>,
    /// Go: a region number it cannot parse (PAX 1.0: reported once the map is read).
    unparsable: bool,
    /// Regions kept to rebuild the data, and whether that is all of them (with data).
    regions: Vec<(u64, u64)>,
    all_kept: bool,
    /// Rebuilt data is handed over below this logical offset.
    deliver: u64,
    /// GNU tar: why it fails on the map, the data blocks it reads for the regions, and the real
    /// size it checks regions against (old GNU only).
    gnu_bad: Option<String>,
    gnu_blocks: u64,
    gnu_bound: Option<u64>,
    /// Old GNU: whether Go / GNU tar read another extension block, and how many each read.
    go_more: bool,
    gnu_more: bool,
    go_ext: u64,
    gnu_ext: u64,
    /// PAX 1.0: the line being read, the lines read, the region count, the pending offset (Go,
    /// GNU), and the map blocks read.
    tok: NumTok,
    lines: u64,
    count: Option<u64>,
    offset: (Option<i64>, Option<u64>),
    map_blocks: u64,
}

impl SparseMap {
    fn new(format: SparseFormat, size: i64) -> SparseMap {
        SparseMap {
            format,
            size,
            prev_end: 0,
            invalid: (size < 0).then(|| format!("negative real size {size}")),
            unparsable: false,
            regions: Vec::new(),
            all_kept: true,
            deliver: SPARSE_DELIVER_MAX.min(size.max(0) as u64),
            gnu_bad: None,
            gnu_blocks: 0,
            gnu_bound: None,
            go_more: false,
            gnu_more: false,
            go_ext: 0,
            gnu_ext: 0,
            tok: NumTok::default(),
            lines: 0,
            count: None,
            offset: (None, None),
            map_blocks: 0,
        }
    }

    /// A region as Go reads it: `validateSparseEntries`, and kept for the data.
    fn go_region(&mut self, offset: i64, len: i64) {
        if self.invalid.is_some() {
            return;
        }
        let why = if offset < 0 || len < 0 {
            Some(format!("negative region {offset}+{len}"))
        } else if offset > i64::MAX - len {
            Some(format!("region {offset}+{len} overflows"))
        } else if offset + len > self.size {
            Some(format!(
                "region {offset}+{len} ends past the real size {}",
                self.size
            ))
        } else if self.prev_end > offset {
            Some(format!(
                "region {offset}+{len} overlaps or precedes the one ending at {}",
                self.prev_end
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.invalid = Some(why);
            return;
        }
        self.prev_end = offset + len;
        let (offset, len) = (offset as u64, len as u64);
        if len == 0 {
            return;
        }
        if offset < self.deliver && self.all_kept && self.regions.len() < SPARSE_REGIONS_KEEP {
            self.regions.push((offset, len));
        } else {
            // Not kept: nothing is handed over from here on.
            if self.all_kept {
                self.deliver = self.deliver.min(offset);
            }
            self.all_kept = false;
        }
    }

    /// A region as GNU tar reads it: its data takes whole blocks.
    fn gnu_region(&mut self, offset: u64, len: u64) {
        if let Some(bound) = self.gnu_bound {
            if offset.checked_add(len).is_none_or(|end| end > bound) {
                self.gnu_complain("invalid sparse archive member");
            }
        }
        self.gnu_blocks = self.gnu_blocks.saturating_add(len.div_ceil(512));
    }

    fn gnu_complain(&mut self, what: &str) {
        self.gnu_bad.get_or_insert_with(|| what.to_string());
    }

    /// Whether GNU tar, so far, reads the member without complaint and ends it in place: its map
    /// complete and valid, its regions taking no more blocks than the member's `data` bytes.
    /// (Where Go's reader gives up first, GNU tar's reading is all that matters.)
    fn gnu_self_ok(&self, data: u64) -> bool {
        self.gnu_bad.is_none()
            && !(self.format == SparseFormat::OldGnu && self.gnu_more)
            && self.gnu_blocks <= data.div_ceil(512)
    }

    /// Old GNU: the regions of the header (4) or of an extension block (21), then the
    /// "isextended" byte. Go stops at a region whose offset starts with NUL, GNU tar at one
    /// whose size does, and GNU tar reads no further block once it stopped early.
    fn old_gnu_block(&mut self, regions: &[u8], isextended: u8, gnu_reads: bool) -> bool {
        let mut go_parse_ok = true;
        let mut go_done = false;
        let mut gnu_done = !gnu_reads;
        for r in regions.chunks_exact(24) {
            let (off, len) = r.split_at(12);
            if !go_done {
                if off[0] == 0 {
                    go_done = true;
                } else {
                    match (go_numeric(off), go_numeric(len)) {
                        (Some(o), Some(n)) => self.go_region(o, n),
                        _ => {
                            go_parse_ok = false;
                            go_done = true;
                        }
                    }
                }
            }
            if !gnu_done {
                if len[0] == 0 {
                    gnu_done = true;
                    self.gnu_more = false;
                    continue;
                }
                match (gnu_numeric(off), gnu_numeric(len)) {
                    (Some(o), Some(n)) if o >= 0 && n >= 0 => self.gnu_region(o as u64, n as u64),
                    _ => self.gnu_complain("invalid sparse archive member"),
                }
                if self.gnu_bad.is_some() {
                    gnu_done = true;
                    self.gnu_more = false;
                }
            }
        }
        self.go_more = isextended != 0;
        if gnu_reads && !gnu_done {
            self.gnu_more = isextended != 0;
        }
        go_parse_ok
    }

    /// PAX 1.0: one map block. `Err` is Go's verdict on the count line; `Ok(true)` once the
    /// map is complete (at the end of the block holding its last line, as Go and GNU tar read).
    fn pax1_block(&mut self, block: &[u8; 512]) -> Result<bool, String> {
        self.map_blocks += 1;
        for &b in block {
            if self.count.is_some_and(|n| self.lines > 2 * n) {
                break;
            }
            if b != b'\n' {
                self.tok.push(b);
                continue;
            }
            let t = std::mem::take(&mut self.tok);
            // GNU tar 1.34 copies each line into a 20-byte buffer, newline included.
            let gnu = t.gnu().filter(|_| t.len <= 19);
            if self.lines == 0 {
                match t.go() {
                    Some(n) if (0..1 << 62).contains(&n) => self.count = Some(n as u64),
                    _ => return Err("the region count line is not a number".into()),
                }
                if gnu.is_none() {
                    self.gnu_complain("malformed sparse archive member");
                }
            } else if self.lines % 2 == 1 {
                self.offset = (t.go(), gnu);
            } else {
                match (self.offset.0, t.go()) {
                    (Some(o), Some(n)) => self.go_region(o, n),
                    _ => self.unparsable = true,
                }
                match (self.offset.1, gnu) {
                    (Some(o), Some(n)) if o <= i64::MAX as u64 => self.gnu_region(o, n),
                    _ => self.gnu_complain("malformed sparse archive member"),
                }
            }
            self.lines += 1;
        }
        Ok(self.count.is_some_and(|n| self.lines > 2 * n))
    }
}

/// A sparse member whose map is being read.
struct Building {
    entry: EntryHeader,
    /// Go's data size of the member (the header's or PAX `size`), and what is left of it.
    stored: u64,
    left: u64,
    map: SparseMap,
}

/// Rebuilds a sparse member's data for the visitor: zeros for the holes, the archive's bytes
/// for the regions, as Go's `sparseFileReader` reads them.
struct Expander {
    regions: Vec<(u64, u64)>,
    all_kept: bool,
    /// Current region, and its bytes already seen.
    idx: usize,
    done_in_region: u64,
    /// Logical bytes handed over (or passed, past `deliver`).
    pos: u64,
    size: u64,
    deliver: u64,
    /// Go's reader fails on this data: the entry never ends.
    broken: bool,
}

static ZEROS: [u8; 4096] = [0; 4096];

impl Expander {
    fn give(&mut self, chunk: &[u8], v: &mut dyn Visitor) {
        if self.pos < self.deliver {
            let n = (self.deliver - self.pos).min(chunk.len() as u64) as usize;
            v.data(&chunk[..n]);
        }
        self.pos += chunk.len() as u64;
    }

    fn zeros_to(&mut self, to: u64, v: &mut dyn Visitor) {
        while self.pos < to.min(self.deliver) {
            let n = (to.min(self.deliver) - self.pos).min(ZEROS.len() as u64) as usize;
            v.data(&ZEROS[..n]);
            self.pos += n as u64;
        }
        self.pos = self.pos.max(to);
    }

    fn data(&mut self, mut chunk: &[u8], v: &mut dyn Visitor) {
        while !chunk.is_empty() && !self.broken {
            let Some(&(offset, len)) = self.regions.get(self.idx) else {
                // Past the regions kept: more data is Go's "unreferenced data" if those were
                // all; else it belongs to regions at or past `deliver`, so zeros up to there.
                if self.all_kept {
                    self.broken = true;
                } else {
                    self.zeros_to(self.deliver, v);
                }
                return;
            };
            self.zeros_to(offset, v);
            let n = (len - self.done_in_region).min(chunk.len() as u64) as usize;
            self.give(&chunk[..n], v);
            chunk = &chunk[n..];
            self.done_in_region += n as u64;
            if self.done_in_region == len {
                self.idx += 1;
                self.done_in_region = 0;
            }
        }
    }

    /// The member's archive data is over.
    fn finish(&mut self, v: &mut dyn Visitor) {
        if self.idx < self.regions.len() {
            // Go: "sparse file references non-existent data".
            self.broken = true;
        }
        if !self.broken {
            self.zeros_to(self.size, v);
            v.entry_end();
        }
    }
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

/// Parses one PAX header's records; they replace those of any earlier PAX header, as in Go.
fn parse_pax(data: &[u8], p: &mut Pending) -> Result<(), String> {
    p.pax_path = None;
    p.pax_link = None;
    p.pax_size = None;
    p.sparse = PaxSparse::default();
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
        let s = &mut p.sparse;
        if key.starts_with(b"GNU.sparse.") {
            s.gnu.record(key, value);
        }
        // Go keeps the header's own field where a record is empty.
        let some = |v: &[u8]| (!v.is_empty()).then(|| v.to_vec());
        match key {
            b"path" => p.pax_path = some(value),
            b"linkpath" => p.pax_link = some(value),
            b"size" if !value.is_empty() => {
                let s = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                p.pax_size = Some(s.ok_or("PAX size is not a number")?);
            }
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let want_offset = s.list.len().is_multiple_of(2);
                if want_offset != (key == b"GNU.sparse.offset") || value.contains(&b',') {
                    return Err("GNU.sparse.offset/numbytes records out of order".into());
                }
                s.list.push(value.to_vec());
            }
            b"GNU.sparse.major" => s.major = Some(value.to_vec()),
            b"GNU.sparse.minor" => s.minor = Some(value.to_vec()),
            b"GNU.sparse.name" => s.name = Some(value.to_vec()),
            b"GNU.sparse.size" => s.size = Some(value.to_vec()),
            b"GNU.sparse.realsize" => s.realsize = Some(value.to_vec()),
            b"GNU.sparse.numblocks" => s.numblocks = Some(value.to_vec()),
            b"GNU.sparse.map" => s.map = Some(value.to_vec()),
            _ => {}
        }
        rest = &rest[len..];
    }
    let s = &mut p.sparse;
    if !s.list.is_empty() {
        s.map = Some(s.list.join(&b","[..]));
    }
    Ok(())
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

/// Go's reading of a PAX 0.x map (`readGNUSparseMap0x1`): `Err` is why it refuses it.
fn pax0_map(s: &PaxSparse, map: &mut SparseMap) -> Result<(), String> {
    let count = NumTok::of(s.numblocks.as_deref().unwrap_or_default())
        .go()
        .filter(|n| (0..1 << 62).contains(n))
        .ok_or("GNU.sparse.numblocks is not a count")?;
    let text = s.map.as_deref().unwrap_or_default();
    let values: Vec<&[u8]> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(|&b| b == b',').collect()
    };
    if values.len() as i64 != 2 * count {
        return Err(format!(
            "GNU.sparse.numblocks={count} but GNU.sparse.map holds {} numbers",
            values.len()
        ));
    }
    for pair in values.chunks_exact(2) {
        match (NumTok::of(pair[0]).go(), NumTok::of(pair[1]).go()) {
            (Some(o), Some(n)) => map.go_region(o, n),
            _ => return Err("a GNU.sparse.map number does not parse".into()),
        }
    }
    Ok(())
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
                    b'x' => {
                        let _ = parse_pax(&[], &mut self.pending);
                    }
                    _ => {}
                }
            }
            return;
        }
        // A member. Go's order: the header's name, the PAX `path`, the GNU long name (empty
        // ones change nothing), then, for a PAX sparse member, `GNU.sparse.name`.
        let p = std::mem::take(&mut self.pending);
        let nonempty = |v: &Option<Vec<u8>>| v.clone().filter(|v| !v.is_empty());
        let name = nonempty(&p.long_name)
            .or(p.pax_path)
            .unwrap_or_else(|| trim_nul(&header.path_bytes()).to_vec());
        let link = nonempty(&p.long_link).or(p.pax_link).unwrap_or_else(|| {
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
        let stored = if header_only(kind) { 0 } else { size };
        let entry = EntryHeader {
            name,
            link,
            kind,
            size: stored,
            offset: at,
            sparse: None,
        };
        if kind == b'S' {
            self.current = Some(entry.name_lossy());
            self.old_gnu_header(entry, stored, v);
            return;
        }
        if let Some(format) = pax_sparse_format(&p.sparse) {
            self.pax_sparse_header(entry, stored, size, format, &p.sparse, v);
            return;
        }
        self.begin_entry(entry, stored, None, v);
    }

    /// Counts the entry, shows it to the visitor and walks into its data.
    fn begin_entry(
        &mut self,
        entry: EntryHeader,
        stored: u64,
        map: Option<SparseMap>,
        v: &mut dyn Visitor,
    ) {
        self.entries += 1;
        self.data_bytes += entry.size;
        self.current = Some(entry.name_lossy());
        if self.entries > ENTRIES_MAX {
            self.fail(
                entry.offset,
                ERR_HEADER,
                format!("more than {ENTRIES_MAX} entries; lxdimg stops walking here"),
            );
            return;
        }
        let wanted = v.entry(&entry);
        self.expander = match map {
            Some(m) if wanted => Some(Box::new(Expander {
                regions: m.regions,
                all_kept: m.all_kept,
                idx: 0,
                done_in_region: 0,
                pos: 0,
                size: entry.size,
                deliver: m.deliver,
                broken: false,
            })),
            _ => None,
        };
        self.state = State::Data {
            left: stored,
            pad: pad_of(stored),
            wanted,
        };
        if stored == 0 {
            if wanted {
                self.data_end(v);
            }
            self.state = State::Header;
            self.current = None;
        }
    }

    /// An old GNU `S` header: the real size and the first 4 regions, maybe extension blocks.
    fn old_gnu_header(&mut self, entry: EntryHeader, stored: u64, v: &mut dyn Visitor) {
        let at = entry.offset;
        let b = self.block;
        if &b[257..265] != b"ustar  \0" {
            // Go reads an `S` header only in the GNU format; GNU tar then extracts the member
            // as a plain file.
            self.fail_as(
                at,
                ERR_HEADER,
                format!("sparse member (type S) without the GNU magic at decoded offset {at}"),
                true,
            );
            return;
        }
        let Some(size) = go_numeric(&b[483..495]) else {
            self.fail(
                at,
                ERR_HEADER,
                format!("unreadable real size of the sparse member at decoded offset {at}"),
            );
            return;
        };
        let mut map = SparseMap::new(SparseFormat::OldGnu, size);
        match gnu_numeric(&b[483..495]) {
            Some(r) => map.gnu_bound = Some(r.max(0) as u64),
            None => map.gnu_complain("invalid sparse archive member"),
        }
        if !map.old_gnu_block(&b[386..482], b[482], true) {
            let gnu_ok = map.gnu_self_ok(stored);
            self.fail_as(
                at,
                ERR_HEADER,
                format!("unreadable sparse map in the header at decoded offset {at}"),
                gnu_ok,
            );
            return;
        }
        let mut building = Box::new(Building {
            entry,
            stored,
            left: stored,
            map,
        });
        building.map.gnu_more = building.map.gnu_more && building.map.gnu_bad.is_none();
        self.building = Some(building);
        self.continue_sparse(v);
    }

    /// A member with PAX `GNU.sparse.*` records Go recognises.
    fn pax_sparse_header(
        &mut self,
        mut entry: EntryHeader,
        stored: u64,
        size: u64,
        format: SparseFormat,
        s: &PaxSparse,
        v: &mut dyn Visitor,
    ) {
        let at = entry.offset;
        if let Some(name) = s.name.as_ref().filter(|n| !n.is_empty()) {
            entry.name = name.clone();
        }
        self.current = Some(entry.name_lossy());
        let real = s
            .size
            .as_ref()
            .filter(|v| !v.is_empty())
            .or(s.realsize.as_ref().filter(|v| !v.is_empty()));
        let real = match real {
            None => size as i64,
            Some(r) => match NumTok::of(r).go() {
                Some(r) => r,
                None => {
                    self.fail(
                        at,
                        ERR_HEADER,
                        format!("GNU.sparse real size is not a number at decoded offset {at}"),
                    );
                    return;
                }
            },
        };
        let mut map = SparseMap::new(format, real);
        if let Some(bad) = &s.gnu.bad {
            map.gnu_bad = Some(bad.clone());
        }
        if format == SparseFormat::Pax1 {
            if header_only(entry.kind) {
                // Go reads the map from the data a directory or link does not have. GNU tar
                // reads it from the blocks that follow, whatever they are: whether it copes is
                // not known here, so it is taken to fail too.
                self.fail_as(
                    at,
                    ERR_UNEXPECTED_EOF,
                    format!(
                        "PAX 1.0 sparse map expected in the data of a type {} entry, which has none",
                        entry.kind as char
                    ),
                    false,
                );
                return;
            }
            self.building = Some(Box::new(Building {
                entry,
                stored,
                left: stored,
                map,
            }));
            self.continue_sparse(v);
            return;
        }
        map.gnu_blocks = s.gnu.blocks;
        if let Err(e) = pax0_map(s, &mut map) {
            // GNU tar extracts the member as sparse only if it holds regions.
            let gnu_ok = s.gnu.regions > 0 && (header_only(entry.kind) || map.gnu_self_ok(stored));
            self.fail_as(
                at,
                ERR_HEADER,
                format!("sparse map: {e}"),
                gnu_ok && map.gnu_bad.is_none(),
            );
            return;
        }
        let building = Building {
            entry,
            stored,
            left: stored,
            map,
        };
        self.finish_sparse(building, v);
    }

    /// Reads the next map block, or finishes the member once its map is complete.
    fn continue_sparse(&mut self, v: &mut dyn Visitor) {
        let Some(b) = self.building.as_ref() else {
            return;
        };
        let more = match b.map.format {
            SparseFormat::OldGnu => b.map.go_more,
            SparseFormat::Pax1 => true,
            SparseFormat::Pax0 => false,
        };
        if !more {
            let b = self.building.take().expect("building");
            self.finish_sparse(*b, v);
            return;
        }
        if b.map.format == SparseFormat::Pax1 && b.left < 512 {
            // Go reads the map in whole blocks out of the member's data.
            let at = self.offset;
            self.fail_as(
                at,
                ERR_UNEXPECTED_EOF,
                format!("the sparse map runs past the member's data, at decoded offset {at}"),
                false,
            );
            return;
        }
        self.state = State::SparseBlocks;
    }

    /// One extension block (old GNU) or map block (PAX 1.0) is in `block`.
    fn sparse_block(&mut self, v: &mut dyn Visitor) {
        let at = self.offset - 512;
        let block = self.block;
        let Some(b) = self.building.as_mut() else {
            return;
        };
        self.state = State::Header;
        match b.map.format {
            SparseFormat::OldGnu => {
                let m = &mut b.map;
                m.go_ext += 1;
                let gnu_reads = m.gnu_more;
                if gnu_reads {
                    m.gnu_ext += 1;
                }
                if !m.old_gnu_block(&block[..504], block[504], gnu_reads) {
                    let gnu_ok = m.gnu_self_ok(b.stored);
                    self.fail_as(
                        at,
                        ERR_HEADER,
                        format!("unreadable sparse extension block at decoded offset {at}"),
                        gnu_ok,
                    );
                    return;
                }
            }
            SparseFormat::Pax1 => {
                b.left -= 512;
                match b.map.pax1_block(&block) {
                    Err(e) => {
                        self.fail(at, ERR_HEADER, format!("PAX 1.0 sparse map: {e}"));
                        return;
                    }
                    Ok(true) => {
                        let b = self.building.take().expect("building");
                        self.finish_sparse(*b, v);
                        return;
                    }
                    Ok(false) => {}
                }
            }
            SparseFormat::Pax0 => {}
        }
        self.continue_sparse(v);
    }

    /// The map is read: Go's verdict on it, GNU tar's, then the entry.
    fn finish_sparse(&mut self, b: Building, v: &mut dyn Visitor) {
        let Building {
            mut entry,
            left,
            map,
            ..
        } = b;
        let at = entry.offset;
        let data_blocks = left.div_ceil(512);
        // Whether GNU tar reads this member without complaint and ends it where it should: its
        // map complete and valid, its regions (each block-aligned) no more blocks than the
        // member holds, the rest of which it skips.
        let gnu_fails = if let Some(bad) = &map.gnu_bad {
            Some((bad.clone(), "GNU tar refuses the sparse map".to_string()))
        } else if header_only(entry.kind) {
            None
        } else if map.format == SparseFormat::OldGnu && map.gnu_more {
            Some((
                "Skipping to next header".into(),
                "GNU tar reads sparse extension blocks where Go's reader reads data".into(),
            ))
        } else if map.gnu_blocks > data_blocks {
            Some((
                "Skipping to next header".into(),
                format!(
                    "GNU tar reads {} blocks of region data where the member holds {data_blocks}",
                    map.gnu_blocks
                ),
            ))
        } else {
            None
        };
        let go_refuses = if map.unparsable {
            Some("a region number does not parse".to_string())
        } else if let Some(why) = &map.invalid {
            Some(why.clone())
        } else if header_only(entry.kind) {
            Some(format!(
                "a sparse map on a type {} entry",
                entry.kind as char
            ))
        } else {
            None
        };
        if let Some(why) = go_refuses {
            self.fail_as(
                at,
                ERR_HEADER,
                format!("sparse map of \"{}\": {why}", entry.name_lossy()),
                gnu_fails.is_none(),
            );
            return;
        }
        // Go's reader goes on after the extension blocks it read; GNU tar after its own.
        let gnu_fails = gnu_fails.or_else(|| {
            (map.gnu_ext != map.go_ext).then(|| {
                (
                    "Skipping to next header".into(),
                    format!(
                        "GNU tar reads {} sparse extension blocks where Go's reader reads {}",
                        map.gnu_ext, map.go_ext
                    ),
                )
            })
        });
        if let Some((msg, detail)) = gnu_fails {
            if self.gnu_error.is_none() {
                let name = entry.name_lossy();
                let gnu_message = if msg.starts_with("tar: ") {
                    msg
                } else if msg.contains("sparse archive member") {
                    format!("tar: {name}: {msg}")
                } else {
                    format!("tar: {msg}")
                };
                self.gnu_error = Some(GnuTarError {
                    offset: at,
                    gnu_message,
                    detail: format!("{detail} (\"{name}\", decoded offset {at})"),
                    entry: Some(name),
                });
            }
        }
        entry.size = map.size as u64;
        entry.sparse = Some(map.format);
        self.begin_entry(entry, left, Some(map), v);
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

/// Which PAX sparse format Go's `readGNUSparsePAXHeaders` sees in these records, if any.
fn pax_sparse_format(s: &PaxSparse) -> Option<SparseFormat> {
    let major = s.major.as_deref().unwrap_or_default();
    let minor = s.minor.as_deref().unwrap_or_default();
    match (major, minor) {
        (b"0", b"0" | b"1") => Some(SparseFormat::Pax0),
        (b"1", b"0") => Some(SparseFormat::Pax1),
        _ if !major.is_empty() || !minor.is_empty() => None,
        _ if s.map.as_ref().is_some_and(|m| !m.is_empty()) => Some(SparseFormat::Pax0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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

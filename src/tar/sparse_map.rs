//! Sparse maps: old GNU headers, PAX 0.0/0.1 records and PAX 1.0 map blocks, checked as Go's
//! `archive/tar` and GNU tar check them.

use super::*;

/// The `GNU.sparse.*` records of the last PAX header, as Go keeps them, and GNU tar's reading
/// of the same records.
#[derive(Default)]
pub(super) struct PaxSparse {
    pub(super) major: Option<Vec<u8>>,
    pub(super) minor: Option<Vec<u8>>,
    pub(super) name: Option<Vec<u8>>,
    pub(super) size: Option<Vec<u8>>,
    pub(super) realsize: Option<Vec<u8>>,
    pub(super) numblocks: Option<Vec<u8>>,
    pub(super) map: Option<Vec<u8>>,
    /// PAX 0.0's `GNU.sparse.offset`/`numbytes` values in order (Go joins them into the map).
    pub(super) list: Vec<Vec<u8>>,
    pub(super) gnu: GnuPax0,
}

/// GNU tar's reading of PAX 0.x sparse records (xheader.c's decoders, in record order).
#[derive(Default)]
pub(super) struct GnuPax0 {
    /// `GNU.sparse.numblocks`: the map's capacity.
    pub(super) capacity: Option<u64>,
    /// Regions stored so far.
    pub(super) regions: u64,
    /// Data blocks they take in the archive (each region is block-aligned).
    pub(super) blocks: u64,
    /// The first record GNU tar complains about.
    pub(super) bad: Option<String>,
}

impl GnuPax0 {
    pub(super) fn complain(&mut self, msg: String) {
        self.bad.get_or_insert(msg);
    }

    pub(super) fn add_region(&mut self, key: &str, value: &[u8], len: u64) {
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

    pub(super) fn record(&mut self, key: &[u8], value: &[u8]) {
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
pub(super) struct NumTok {
    pub(super) len: u64,
    pub(super) digits: u64,
    pub(super) value: u64,
    pub(super) signed: bool,
    pub(super) negative: bool,
    pub(super) overflow: bool,
    pub(super) other: bool,
}

impl NumTok {
    pub(super) fn of(s: &[u8]) -> NumTok {
        let mut t = NumTok::default();
        for &b in s {
            t.push(b);
        }
        t
    }

    pub(super) fn push(&mut self, b: u8) {
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
    pub(super) fn go(&self) -> Option<i64> {
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
    pub(super) fn gnu(&self) -> Option<u64> {
        (!self.other && !self.signed && self.digits > 0 && !self.overflow).then_some(self.value)
    }
}

/// Go's `parseNumeric` (base-256 or octal, NULs and spaces trimmed).
pub(super) fn go_numeric(b: &[u8]) -> Option<i64> {
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
pub(super) fn gnu_numeric(b: &[u8]) -> Option<i64> {
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
pub(super) struct SparseMap {
    pub(super) format: SparseFormat,
    /// The real size (Go's `Header.Size`).
    pub(super) size: i64,
    /// Go: end of the previous region, and why `validateSparseEntries` refuses the map.
    pub(super) prev_end: i64,
    pub(super) invalid: Option<String>,
    /// Go: a region number it cannot parse (PAX 1.0: reported once the map is read).
    pub(super) unparsable: bool,
    /// Regions kept to rebuild the data, and whether that is all of them (with data).
    pub(super) regions: Vec<(u64, u64)>,
    pub(super) all_kept: bool,
    /// Rebuilt data is handed over below this logical offset.
    pub(super) deliver: u64,
    /// GNU tar: why it fails on the map, the data blocks it reads for the regions, and the real
    /// size it checks regions against (old GNU only).
    pub(super) gnu_bad: Option<String>,
    pub(super) gnu_blocks: u64,
    pub(super) gnu_bound: Option<u64>,
    /// Old GNU: whether Go / GNU tar read another extension block, and how many each read.
    pub(super) go_more: bool,
    pub(super) gnu_more: bool,
    pub(super) go_ext: u64,
    pub(super) gnu_ext: u64,
    /// PAX 1.0: the line being read, the lines read, the region count, the pending offset (Go,
    /// GNU), and the map blocks read.
    pub(super) tok: NumTok,
    pub(super) lines: u64,
    pub(super) count: Option<u64>,
    pub(super) offset: (Option<i64>, Option<u64>),
    pub(super) map_blocks: u64,
}

impl SparseMap {
    pub(super) fn new(format: SparseFormat, size: i64) -> SparseMap {
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
    pub(super) fn go_region(&mut self, offset: i64, len: i64) {
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
    pub(super) fn gnu_region(&mut self, offset: u64, len: u64) {
        if let Some(bound) = self.gnu_bound {
            if offset.checked_add(len).is_none_or(|end| end > bound) {
                self.gnu_complain("invalid sparse archive member");
            }
        }
        self.gnu_blocks = self.gnu_blocks.saturating_add(len.div_ceil(512));
    }

    pub(super) fn gnu_complain(&mut self, what: &str) {
        self.gnu_bad.get_or_insert_with(|| what.to_string());
    }

    /// Whether GNU tar, so far, reads the member without complaint and ends it in place: its map
    /// complete and valid, its regions taking no more blocks than the member's `data` bytes.
    /// (Where Go's reader gives up first, GNU tar's reading is all that matters.)
    pub(super) fn gnu_self_ok(&self, data: u64) -> bool {
        self.gnu_bad.is_none()
            && !(self.format == SparseFormat::OldGnu && self.gnu_more)
            && self.gnu_blocks <= data.div_ceil(512)
    }

    /// Old GNU: the regions of the header (4) or of an extension block (21), then the
    /// "isextended" byte. Go stops at a region whose offset starts with NUL, GNU tar at one
    /// whose size does, and GNU tar reads no further block once it stopped early.
    pub(super) fn old_gnu_block(
        &mut self,
        regions: &[u8],
        isextended: u8,
        gnu_reads: bool,
    ) -> bool {
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
    pub(super) fn pax1_block(&mut self, block: &[u8; 512]) -> Result<bool, String> {
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

/// Go's reading of a PAX 0.x map (`readGNUSparseMap0x1`): `Err` is why it refuses it.
pub(super) fn pax0_map(s: &PaxSparse, map: &mut SparseMap) -> Result<(), String> {
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

/// Which PAX sparse format Go's `readGNUSparsePAXHeaders` sees in these records, if any.
pub(super) fn pax_sparse_format(s: &PaxSparse) -> Option<SparseFormat> {
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

//! Headers: GNU long names and links, PAX records, and the start of each entry.

use super::sparse_map::{pax_sparse_format, PaxSparse, SparseMap};
use super::*;

#[derive(Default)]
pub(super) struct Pending {
    pub(super) long_name: Option<Vec<u8>>,
    pub(super) long_link: Option<Vec<u8>>,
    pub(super) pax_path: Option<Vec<u8>>,
    pub(super) pax_link: Option<Vec<u8>>,
    pub(super) pax_size: Option<u64>,
    pub(super) sparse: PaxSparse,
}

/// Parses one PAX header's records; they replace those of any earlier PAX header, as in Go.
pub(super) fn parse_pax(data: &[u8], p: &mut Pending) -> Result<(), String> {
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

impl TarWalker {
    pub(super) fn header(&mut self, v: &mut dyn Visitor) {
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
    pub(super) fn begin_entry(
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
}

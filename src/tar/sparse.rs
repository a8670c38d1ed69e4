//! Sparse members: reading their maps from the archive and handing their data, holes filled
//! with zeros, to the visitor.

use super::sparse_map::*;
use super::*;

/// A sparse member whose map is being read.
pub(super) struct Building {
    pub(super) entry: EntryHeader,
    /// Go's data size of the member (the header's or PAX `size`), and what is left of it.
    pub(super) stored: u64,
    pub(super) left: u64,
    pub(super) map: SparseMap,
}

/// Rebuilds a sparse member's data for the visitor: zeros for the holes, the archive's bytes
/// for the regions, as Go's `sparseFileReader` reads them.
pub(super) struct Expander {
    pub(super) regions: Vec<(u64, u64)>,
    pub(super) all_kept: bool,
    /// Current region, and its bytes already seen.
    pub(super) idx: usize,
    pub(super) done_in_region: u64,
    /// Logical bytes handed over (or passed, past `deliver`).
    pub(super) pos: u64,
    pub(super) size: u64,
    pub(super) deliver: u64,
    /// Go's reader fails on this data: the entry never ends.
    pub(super) broken: bool,
}

static ZEROS: [u8; 4096] = [0; 4096];

impl Expander {
    pub(super) fn give(&mut self, chunk: &[u8], v: &mut dyn Visitor) {
        if self.pos < self.deliver {
            let n = (self.deliver - self.pos).min(chunk.len() as u64) as usize;
            v.data(&chunk[..n]);
        }
        self.pos += chunk.len() as u64;
    }

    pub(super) fn zeros_to(&mut self, to: u64, v: &mut dyn Visitor) {
        while self.pos < to.min(self.deliver) {
            let n = (to.min(self.deliver) - self.pos).min(ZEROS.len() as u64) as usize;
            v.data(&ZEROS[..n]);
            self.pos += n as u64;
        }
        self.pos = self.pos.max(to);
    }

    pub(super) fn data(&mut self, mut chunk: &[u8], v: &mut dyn Visitor) {
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
    pub(super) fn finish(&mut self, v: &mut dyn Visitor) {
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

impl TarWalker {
    /// An old GNU `S` header: the real size and the first 4 regions, maybe extension blocks.
    pub(super) fn old_gnu_header(&mut self, entry: EntryHeader, stored: u64, v: &mut dyn Visitor) {
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
    pub(super) fn pax_sparse_header(
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
    pub(super) fn continue_sparse(&mut self, v: &mut dyn Visitor) {
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
    pub(super) fn sparse_block(&mut self, v: &mut dyn Visitor) {
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
    pub(super) fn finish_sparse(&mut self, b: Building, v: &mut dyn Visitor) {
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
}

//! unsquashfs 4.5's reading of a squashfs 4.0 filesystem, minus the file data: `check_compression`
//! (the compressor options block), `read_filesystem_tables` (xattr, id, export and fragment
//! tables) and the `pre_scan`/`dir_scan` walk from the root inode (`squashfs_opendir`,
//! `read_inode`, `create_inode`'s block lists, fragment and xattr look-ups). Metadata blocks are
//! read on demand through a cache keyed by their position, as `read_metadata` does, so a block
//! nothing refers to is never read, and a run of bytes may continue into the next block
//! wherever that is. Data blocks are not decoded (their bytes are not kept); only their extent is
//! checked against `bytes_used`.

use super::super::{le16, le32, le64};
use super::codec;
use crate::limits::SQUASHFS_DECODED_MAX;
use std::collections::{HashMap, HashSet};

const META: usize = 8192;
const INVALID: u64 = u64::MAX;
const INVALID_XATTR: u32 = u32::MAX;
const INVALID_FRAG: u32 = u32::MAX;

struct Block {
    data: Vec<u8>,
    next: u64,
}

struct Fs<'a> {
    head: &'a [u8],
    tables: &'a [u8],
    start: u64,
    end: u64,
    comp: u16,
    check_data: bool,
    inodes: u32,
    block_size: u32,
    block_log: u32,
    fragments: u32,
    no_ids: u16,
    inode_table: u64,
    dir_table: u64,
    cache: HashMap<u64, Block>,
    /// Metadata bytes decompressed so far (bounded by `SQUASHFS_DECODED_MAX`).
    decoded: std::cell::Cell<usize>,
    fragment_table: Vec<u8>,
    xattr_ids: u32,
    xattr_id_table: Vec<u8>,
    xattr_blocks: HashSet<u64>,
    xattr_table_start: u64,
}

type R<T> = Result<T, String>;

impl<'a> Fs<'a> {
    /// `read_fs_bytes`: the kept bytes at `at..at + len` (the superblock area or the tables).
    fn bytes(&self, at: u64, len: u64) -> R<&'a [u8]> {
        let to = at.checked_add(len).ok_or("offset overflow")?;
        if at >= self.start && to <= self.end {
            let (i, j) = ((at - self.start) as usize, (to - self.start) as usize);
            return Ok(&self.tables[i..j]);
        }
        if to <= self.head.len() as u64 {
            return Ok(&self.head[at as usize..to as usize]);
        }
        Err(format!(
            "reads bytes {at}..{to}, outside the metadata tables ({}..{})",
            self.start, self.end
        ))
    }

    /// `read_block`: one metadata block at `at`; `expected` 0 means "up to 8192 bytes".
    fn read_block(&self, at: u64, expected: usize) -> R<Block> {
        let outlen = if expected == 0 { META } else { expected };
        let fail = |why: String| format!("read_block: failed to read block @{at:#x} ({why})");
        let h = le16(self.bytes(at, 2).map_err(fail)?, 0);
        let offset = if self.check_data { 3 } else { 2 };
        let (compressed, len) = (h & 0x8000 == 0, (h & 0x7fff) as usize);
        if len > outlen {
            return Err(fail(format!(
                "{len} stored bytes, more than the {outlen} it may hold"
            )));
        }
        let raw = self.bytes(at + offset, len as u64).map_err(fail)?;
        let data = if compressed {
            codec::uncompress(self.comp, raw, outlen).map_err(fail)?
        } else {
            raw.to_vec()
        };
        let decoded = self.decoded.get() + data.len();
        if decoded > SQUASHFS_DECODED_MAX {
            return Err(fail(format!(
                "the metadata decompresses to more than lxdimg's limit of {SQUASHFS_DECODED_MAX} bytes, so it was not checked further"
            )));
        }
        self.decoded.set(decoded);
        if data.is_empty() || (expected != 0 && data.len() != expected) {
            return Err(fail(format!(
                "{} bytes where {} were expected",
                data.len(),
                if expected == 0 {
                    "some".to_string()
                } else {
                    expected.to_string()
                }
            )));
        }
        Ok(Block {
            data,
            next: at + offset + len as u64,
        })
    }

    /// `read_metadata`: `len` bytes at `<block, offset>`, running on into the following blocks.
    fn read(&mut self, what: &str, blk: &mut u64, off: &mut usize, len: usize) -> R<Vec<u8>> {
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let (mut block, mut offset) = (*blk, *off);
        loop {
            if !self.cache.contains_key(&block) {
                let b = self
                    .read_block(block, 0)
                    .map_err(|e| format!("{what}: {e}"))?;
                self.cache.insert(block, b);
            }
            let b = &self.cache[&block];
            if offset >= b.data.len() {
                return Err(format!(
                    "{what}: offset {offset} is beyond the {} bytes of the metadata block at {block:#x}",
                    b.data.len()
                ));
            }
            let left = b.data.len() - offset;
            let want = len - out.len();
            if left < want {
                out.extend_from_slice(&b.data[offset..]);
                block = b.next;
                offset = 0;
            } else {
                out.extend_from_slice(&b.data[offset..offset + want]);
                if left == want {
                    *blk = b.next;
                    *off = 0;
                } else {
                    *blk = block;
                    *off = offset + want;
                }
                return Ok(out);
            }
        }
    }

    /// Reads a table index (`length` bytes at `at`) and its metadata blocks of `bytes` in all.
    fn read_indexed(&self, what: &str, at: u64, bytes: u64) -> R<(Vec<u8>, u64)> {
        let indexes = bytes.div_ceil(META as u64);
        let index = self
            .bytes(at, indexes * 8)
            .map_err(|e| format!("{what}: failed to read the index ({e})"))?;
        if bytes > SQUASHFS_DECODED_MAX as u64 {
            return Err(format!(
                "{what}: {bytes} bytes, over lxdimg's limit of {SQUASHFS_DECODED_MAX} bytes of decompressed metadata, so it was not checked"
            ));
        }
        let mut table = Vec::with_capacity(bytes as usize);
        for i in 0..indexes as usize {
            let expected = if i + 1 != indexes as usize {
                META
            } else {
                (bytes as usize) & (META - 1)
            };
            let b = self
                .read_block(le64(index, i * 8), expected)
                .map_err(|e| format!("{what}: {e}"))?;
            table.extend_from_slice(&b.data);
        }
        // A last block read with `expected` 0 (a table of whole blocks) may come out short;
        // unsquashfs then reads whatever its buffer held: zeros here.
        table.resize(table.len().max(bytes as usize), 0);
        let first = if indexes > 0 { le64(index, 0) } else { at };
        Ok((table, first))
    }

    fn read_filesystem_tables(&mut self, bytes_used: u64, sb: &[u8]) -> R<()> {
        let id_start = le64(sb, 48);
        let xattr_start = le64(sb, 56);
        let frag_start = le64(sb, 80);
        let lookup_start = le64(sb, 88);
        let mut table_start = bytes_used;
        if xattr_start != INVALID {
            if xattr_start >= bytes_used {
                return Err("xattr id table start too large in super block".into());
            }
            self.read_xattrs(xattr_start, bytes_used, &mut table_start)?;
        }
        if id_start >= table_start {
            return Err("id table start too large in super block".into());
        }
        if self.no_ids == 0 || self.no_ids as u64 > self.inodes as u64 * 2 {
            return Err(format!("bad id count {} in super block", self.no_ids));
        }
        let id_bytes = self.no_ids as u64 * 4;
        if id_bytes.div_ceil(META as u64) * 8 != table_start - id_start {
            return Err("read_id_table: bad id count in super block".into());
        }
        let (_, first) = self.read_indexed("id table", id_start, id_bytes)?;
        table_start = first;
        if lookup_start != INVALID {
            if lookup_start >= table_start {
                return Err("lookup table start too large in super block".into());
            }
            let len = (self.inodes as u64 * 8).div_ceil(META as u64) * 8;
            if len != table_start - lookup_start {
                return Err("parse_exports_table: bad inode count in super block".into());
            }
            let index = self
                .bytes(lookup_start, len)
                .map_err(|e| format!("export table: failed to read the index ({e})"))?;
            table_start = if len > 0 {
                le64(index, 0)
            } else {
                lookup_start
            };
        }
        if self.fragments != 0 {
            if frag_start >= table_start {
                return Err("fragment table start too large in super block".into());
            }
            if self.fragments > self.inodes {
                return Err("bad fragment count in super block".into());
            }
            let bytes = self.fragments as u64 * 16;
            if bytes.div_ceil(META as u64) * 8 != table_start - frag_start {
                return Err("read_fragment_table: bad fragment count in super block".into());
            }
            let (table, first) = self.read_indexed("fragment table", frag_start, bytes)?;
            self.fragment_table = table;
            table_start = first;
        }
        if self.dir_table > table_start {
            return Err("directory table start too large in super block".into());
        }
        if self.inode_table >= self.dir_table {
            return Err("inode table start too large in super block".into());
        }
        Ok(())
    }

    /// `read_xattrs_from_disk`.
    fn read_xattrs(&mut self, at: u64, bytes_used: u64, table_start: &mut u64) -> R<()> {
        let t = self
            .bytes(at, 16)
            .map_err(|e| format!("xattr table: {e}"))?;
        let (start, ids) = (le64(t, 0), le32(t, 8));
        if ids == 0 {
            return Err("xattr_ids is 0 in xattr table".into());
        }
        let bytes = ids as u64 * 16;
        if Some(bytes.div_ceil(META as u64) * 8) != bytes_used.checked_sub(at + 16) {
            return Err("bad xattr_ids count in super block".into());
        }
        *table_start = start;
        let (table, first) = self.read_indexed("xattr id table", at + 16, bytes)?;
        self.xattr_id_table = table;
        self.xattr_ids = ids;
        self.xattr_table_start = start;
        let mut pos = start;
        while pos < first {
            self.xattr_blocks.insert(pos);
            let b = self
                .read_block(pos, 0)
                .map_err(|e| format!("xattr table: {e}"))?;
            pos = b.next;
            if pos != first && b.data.len() != META {
                return Err(format!(
                    "xattr block should be {META} bytes in length, it is {} bytes",
                    b.data.len()
                ));
            }
        }
        Ok(())
    }

    /// `write_xattr`'s checks: the index is in the table and points at an xattr block.
    fn check_xattr(&self, xattr: u32) -> R<()> {
        if xattr == INVALID_XATTR || self.xattr_ids == 0 {
            return Ok(());
        }
        if xattr >= self.xattr_ids {
            return Err(format!("xattr index in inode too large (xattr: {xattr})"));
        }
        let e = &self.xattr_id_table[xattr as usize * 16..];
        if le32(e, 8) == 0 {
            return Ok(()); // count 0: an error message, not a failure
        }
        let blk = (le64(e, 0) >> 16) + self.xattr_table_start;
        if !self.xattr_blocks.contains(&blk) {
            return Err("incorrect xattr value in metadata".into());
        }
        Ok(())
    }
}

/// An inode as `read_inode` leaves it.
struct Inode {
    ty: u16,
    number: u32,
    /// Directory: file_size; file: file size.
    data: u64,
    start: u64,
    offset: u32,
    fragment: u32,
    block_start: u64,
    block_offset: usize,
    xattr: u32,
}

impl Fs<'_> {
    fn read_inode(&mut self, start_block: u32, offset: u32) -> R<Inode> {
        let what = format!("inode {start_block}:{offset}");
        let mut blk = self.inode_table + start_block as u64;
        let mut off = offset as usize;
        let (b0, o0) = (blk, off);
        let base = self.read(&what, &mut blk, &mut off, 16)?;
        let (ty, uid, gid, number) = (
            le16(&base, 0),
            le16(&base, 4),
            le16(&base, 6),
            le32(&base, 12),
        );
        if uid >= self.no_ids || gid >= self.no_ids {
            return Err(format!("{what}: uid/gid index too large"));
        }
        if !(1..=14).contains(&ty) {
            return Err(format!("{what}: invalid type {ty}"));
        }
        if number > self.inodes || number == 0 {
            return Err(format!("{what}: invalid inode number {number}"));
        }
        let mut i = Inode {
            ty,
            number,
            data: 0,
            start: 0,
            offset: 0,
            fragment: INVALID_FRAG,
            block_start: 0,
            block_offset: 0,
            xattr: INVALID_XATTR,
        };
        // Each type's header is read again from the inode's start, as read_inode does.
        let (mut blk, mut off) = (b0, o0);
        let size = match ty {
            1 => 32,
            2 => 32,
            3 | 10 => 24,
            4 | 5 => 24,
            6 | 7 => 0,
            8 => 40,
            9 => 56,
            11 | 12 => 28,
            _ => 24,
        };
        if size == 0 {
            return Ok(i);
        }
        let h = self.read(&what, &mut blk, &mut off, size)?;
        match ty {
            1 => {
                i.start = le32(&h, 16) as u64;
                i.data = le16(&h, 24) as u64;
                i.offset = le16(&h, 26) as u32;
            }
            8 => {
                i.data = le32(&h, 20) as u64;
                i.start = le32(&h, 24) as u64;
                i.offset = le16(&h, 34) as u32;
                i.xattr = le32(&h, 36);
            }
            2 | 9 => {
                if ty == 2 {
                    i.start = le32(&h, 16) as u64;
                    i.fragment = le32(&h, 20);
                    i.offset = le32(&h, 24);
                    i.data = le32(&h, 28) as u64;
                } else {
                    i.start = le64(&h, 16);
                    i.data = le64(&h, 24);
                    i.fragment = le32(&h, 44);
                    i.offset = le32(&h, 48);
                    i.xattr = le32(&h, 52);
                }
                i.block_start = blk;
                i.block_offset = off;
            }
            3 | 10 => {
                let len = le32(&h, 20);
                if len > 65535 {
                    return Err(format!("{what}: symlink_size {len} too large"));
                }
                self.read(&what, &mut blk, &mut off, len as usize)?;
                if ty == 10 {
                    i.xattr = self
                        .read(&what, &mut blk, &mut off, 4)
                        .map(|x| le32(&x, 0))
                        .unwrap_or(INVALID_XATTR);
                }
            }
            11 | 12 => i.xattr = le32(&h, 24),
            13 | 14 => i.xattr = le32(&h, 20),
            _ => {}
        }
        Ok(i)
    }

    /// `squashfs_opendir`: the entries (name, inode block, inode offset, type) of a directory.
    fn opendir(&mut self, dir: &Inode) -> R<Vec<(Vec<u8>, u32, u32, u16)>> {
        let mut entries: Vec<(Vec<u8>, u32, u32, u16)> = Vec::new();
        if dir.data == 3 {
            return Ok(entries);
        }
        let what = format!("directory of inode {}", dir.number);
        let mut blk = self.dir_table + dir.start;
        let mut off = dir.offset as usize;
        let size = dir.data as i64 - 3;
        let mut bytes = 0i64;
        while bytes < size {
            let h = self.read(&what, &mut blk, &mut off, 12)?;
            let (count, start_block) = (le32(&h, 0) as u64 + 1, le32(&h, 4));
            bytes += 12;
            if count > 256 {
                return Err(format!("{what}: too many entries in directory"));
            }
            for _ in 0..count {
                let e = self.read(&what, &mut blk, &mut off, 8)?;
                let (offset, ty, len) = (le16(&e, 0), le16(&e, 4), le16(&e, 6) as usize);
                bytes += 8;
                if len >= 256 {
                    return Err(format!("{what}: filename too long"));
                }
                let name = self.read(&what, &mut blk, &mut off, len + 1)?;
                let bad_dot = name[0] == b'.'
                    && (name.get(1).is_none_or(|&c| c == 0 || c == b'/')
                        || (name.get(1) == Some(&b'.')
                            && name.get(2).is_none_or(|&c| c == 0 || c == b'/')));
                if bad_dot || name.iter().any(|&c| c == b'/' || c == 0) {
                    return Err(format!("{what}: invalid characters in name"));
                }
                bytes += len as i64 + 1;
                entries.push((name, start_block, offset as u32, ty));
            }
        }
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(format!(
                "{what}: directory has duplicate names or is unsorted"
            ));
        }
        Ok(entries)
    }

    /// `write_file`'s metadata reads: the block list, the data extents, the fragment.
    fn check_file(&mut self, i: &Inode, bytes_used: u64) -> R<()> {
        let bs = self.block_size as u64;
        let what = format!("file inode {}", i.number);
        let blocks = if i.fragment == INVALID_FRAG {
            i.data.div_ceil(bs)
        } else {
            i.data >> self.block_log
        };
        // More block list than the tables could ever hold: the read runs out.
        if blocks.saturating_mul(4) > (self.tables.len() as u64 / 3 + 1) * META as u64 {
            return Err(format!(
                "{what}: block list of {blocks} blocks cannot be read"
            ));
        }
        let (mut blk, mut off) = (i.block_start, i.block_offset);
        let list = self.read(&what, &mut blk, &mut off, blocks as usize * 4)?;
        let mut start = i.start;
        for k in 0..blocks as usize {
            let size = le32(&list, k * 4);
            let c = (size & !(1 << 24)) as u64;
            if size != 0 {
                if start.saturating_add(c) > bytes_used {
                    return Err(format!(
                        "{what}: data block {k} at {start} ({c} bytes) is beyond bytes_used {bytes_used}"
                    ));
                }
                start += c;
            }
        }
        let frag_bytes = if i.fragment == INVALID_FRAG {
            0
        } else {
            i.data % bs
        };
        if frag_bytes != 0 {
            if i.fragment >= self.fragments {
                return Err(format!("{what}: fragment index {} too large", i.fragment));
            }
            let e = &self.fragment_table[i.fragment as usize * 16..];
            let (at, size) = (le64(e, 0), le32(e, 8));
            let c = (size & !(1 << 24)) as u64;
            if at.saturating_add(c) > bytes_used {
                return Err(format!(
                    "{what}: fragment block at {at} ({c} bytes) is beyond bytes_used {bytes_used}"
                ));
            }
        }
        Ok(())
    }
}

/// See [`super::squashfs_tables`].
pub(super) fn check(head: &[u8], tables: &[u8]) -> R<()> {
    if head.len() < 96 || head[..4] != *b"hsqs" || (le16(head, 28), le16(head, 30)) != (4, 0) {
        return Ok(());
    }
    let sb = &head[..96];
    let (start, end) = (le64(sb, 64), le64(sb, 40));
    let comp = le16(sb, 20);
    let block_size = le32(sb, 12);
    let block_log = le16(sb, 22) as u32;
    // Problems the superblock check reports already, or tables not all kept: nothing to add.
    if start >= end
        || tables.len() as u64 != end - start
        || !(1..=6).contains(&comp)
        || !(4096..=1 << 20).contains(&block_size)
        || 1u32.checked_shl(block_log) != Some(block_size)
    {
        return Ok(());
    }
    let flags = le16(sb, 24);
    let mut fs = Fs {
        head,
        tables,
        start,
        end,
        comp,
        check_data: flags & 4 != 0,
        inodes: le32(sb, 4),
        block_size,
        block_log,
        fragments: le32(sb, 16),
        no_ids: le16(sb, 26),
        inode_table: start,
        dir_table: le64(sb, 72),
        cache: HashMap::new(),
        decoded: std::cell::Cell::new(0),
        fragment_table: Vec::new(),
        xattr_ids: 0,
        xattr_id_table: Vec::new(),
        xattr_blocks: HashSet::new(),
        xattr_table_start: 0,
    };
    // check_compression: the options block after the superblock.
    let mut opts = Vec::new();
    if flags & 0x400 != 0 {
        opts = fs
            .read_block(96, 0)
            .map_err(|e| format!("failed to read compressor options: {e}"))?
            .data;
    }
    if comp == 5 && (opts.len() < 8 || le32(&opts, 0) != 1 || le32(&opts, 4) > 1) {
        return Err("lz4: error reading stored compressor options from filesystem".into());
    }
    fs.read_filesystem_tables(end, sb)?;
    // The walk, depth first in directory order as dir_scan goes: each directory once (a second
    // visit is a loop), each non-directory's inode.
    let root = le64(sb, 32);
    let mut seen_dirs = HashSet::new();
    let mut seen_files = HashSet::new();
    let mut stack: Vec<std::vec::IntoIter<(Vec<u8>, u32, u32, u16)>> = Vec::new();
    let mut next_dir = Some(((root >> 16) as u32, (root & 0xffff) as u32));
    loop {
        if let Some((blk, off)) = next_dir.take() {
            let dir = fs.read_inode(blk, off)?;
            if !seen_dirs.insert(dir.number) {
                return Err("directory loop detected".into());
            }
            if !matches!(dir.ty, 1 | 8) {
                return Err(format!(
                    "inode {} is listed as a directory but has type {}",
                    dir.number, dir.ty
                ));
            }
            fs.check_xattr(dir.xattr)?;
            stack.push(fs.opendir(&dir)?.into_iter());
        }
        let Some(entries) = stack.last_mut() else {
            break;
        };
        let Some((_, eblk, eoff, ty)) = entries.next() else {
            stack.pop();
            continue;
        };
        if ty == 1 {
            next_dir = Some((eblk, eoff));
            continue;
        }
        let i = fs.read_inode(eblk, eoff)?;
        if !seen_files.insert(i.number) {
            continue; // a hard link to a file already created
        }
        match i.ty {
            2 | 9 => fs.check_file(&i, end)?,
            1 | 8 => return Err(format!("unknown inode type {} in create_inode", i.ty)),
            _ => {}
        }
        fs.check_xattr(i.xattr)?;
    }
    Ok(())
}

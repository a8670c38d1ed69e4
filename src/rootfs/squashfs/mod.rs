//! squashfs 4.0: the superblock, and the metadata tables read as unsquashfs 4.5 reads them.

mod codec;
mod walk;

use super::{le16, le32, le64};
use serde::Serialize;

/// A squashfs 4.0 superblock, as `unsquashfs -s` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Squashfs {
    pub version: String,
    pub compressor: String,
    pub block_size: u32,
    pub inode_count: u32,
    #[cfg_attr(test, ts(type = "number"))]
    pub bytes_used: u64,
    pub mkfs_time: u32,
}

/// Reads a squashfs superblock from the first bytes of the file; `file_size` is the whole file's.
/// Returns the parsed superblock and the problems found (each says where).
pub fn squashfs(head: &[u8], file_size: u64) -> (Option<Squashfs>, Vec<String>) {
    let mut problems = Vec::new();
    if head.len() < 96 {
        problems.push(format!(
            "the squashfs superblock needs 96 bytes, the file has {file_size}"
        ));
        return (None, problems);
    }
    let major = le16(head, 28);
    let minor = le16(head, 30);
    let block_size = le32(head, 12);
    let block_log = le16(head, 22);
    let comp = le16(head, 20);
    let compressor = match comp {
        1 => "gzip",
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        _ => "unknown",
    };
    let sb = Squashfs {
        version: format!("{major}.{minor}"),
        compressor: compressor.to_string(),
        block_size,
        inode_count: le32(head, 4),
        bytes_used: le64(head, 40),
        mkfs_time: le32(head, 8),
    };
    if (major, minor) != (4, 0) {
        problems.push(format!(
            "squashfs version {major}.{minor} at byte 28; unsquashfs reads only 4.0"
        ));
    }
    if compressor == "unknown" {
        problems.push(format!("unknown squashfs compressor id {comp} at byte 20"));
    }
    if !(4096..=1 << 20).contains(&block_size)
        || !block_size.is_power_of_two()
        || 1u32.checked_shl(block_log as u32) != Some(block_size)
    {
        problems.push(format!("squashfs block size {block_size} (log {block_log}) at byte 12 is not a power of two between 4 KiB and 1 MiB"));
    }
    if sb.inode_count == 0 {
        problems.push("squashfs inode count is 0 (byte 4)".into());
    }
    if sb.bytes_used > file_size {
        problems.push(format!(
            "squashfs bytes_used (byte 40) is {} but the file has only {file_size} bytes: the filesystem is truncated",
            sb.bytes_used
        ));
    }
    let tables = [
        ("id table", le64(head, 48)),
        ("inode table", le64(head, 64)),
        ("directory table", le64(head, 72)),
    ];
    for (what, at) in tables {
        if at >= sb.bytes_used.max(1) {
            problems.push(format!(
                "squashfs {what} starts at {at}, beyond bytes_used {}",
                sb.bytes_used
            ));
        }
    }
    // unsquashfs reads the fragment table only when there are fragments (`-no-fragments` may leave
    // any value there).
    let fragments = le32(head, 16);
    for (what, at, used) in [
        ("xattr table", le64(head, 56), true),
        ("fragment table", le64(head, 80), fragments != 0),
        ("export table", le64(head, 88), true),
    ] {
        if used && at != u64::MAX && at >= sb.bytes_used.max(1) {
            problems.push(format!(
                "squashfs {what} starts at {at}, beyond bytes_used {}",
                sb.bytes_used
            ));
        }
    }
    (Some(sb), problems)
}

/// Where a squashfs keeps its metadata tables: `[inode_table_start, bytes_used)`. Returned by
/// [`squashfs_tables_range`] so the caller can keep those bytes as they stream past.
pub fn squashfs_tables_range(head: &[u8]) -> Option<(u64, u64)> {
    if head.len() < 96 || head[..4] != *b"hsqs" {
        return None;
    }
    let start = le64(head, 64);
    let end = le64(head, 40);
    (start < end).then_some((start, end))
}

/// Checks the squashfs metadata the way `unsquashfs -f -d DIR IMG` (squashfs-tools 4.5) reads it:
/// the compressor options, the xattr, id, export and fragment tables, then every directory and
/// inode reachable from the root inode, decompressing each metadata block with the
/// filesystem's compressor. `tables` holds the file's bytes from `inode_table_start` on; when it
/// holds fewer than all of them (up to `bytes_used`), nothing is checked. Returns the first
/// problem unsquashfs would stop at (empty if none).
pub fn squashfs_tables(head: &[u8], tables: &[u8]) -> Vec<String> {
    walk::check(head, tables).err().into_iter().collect()
}

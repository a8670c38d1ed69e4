//! Header checks for rootfs files LXD does not decode as tarballs: squashfs superblocks and qcow2
//! headers; plus `os-release` parsing.

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

/// A qcow2 header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Qcow2 {
    pub version: u32,
    #[cfg_attr(test, ts(type = "number"))]
    pub virtual_size: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub cluster_size: u64,
    pub backing_file: bool,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
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
    for (what, at) in [
        ("xattr table", le64(head, 56)),
        ("fragment table", le64(head, 80)),
        ("export table", le64(head, 88)),
    ] {
        if at != u64::MAX && at >= sb.bytes_used.max(1) {
            problems.push(format!(
                "squashfs {what} starts at {at}, beyond bytes_used {}",
                sb.bytes_used
            ));
        }
    }
    (Some(sb), problems)
}

/// Reads a qcow2 header from the first bytes of the file.
pub fn qcow2(head: &[u8], file_size: u64) -> (Option<Qcow2>, Vec<String>) {
    let mut problems = Vec::new();
    if head.len() < 72 {
        problems.push(format!(
            "the qcow2 header needs 72 bytes, the file has {file_size}"
        ));
        return (None, problems);
    }
    if head[..4] != *b"QFI\xfb" {
        problems
            .push("the qcow2 magic is QFI\\xfb; this file has only the first 3 bytes right".into());
    }
    let version = be32(head, 4);
    let cluster_bits = be32(head, 20);
    let q = Qcow2 {
        version,
        virtual_size: be64(head, 24),
        cluster_size: 1u64.checked_shl(cluster_bits).unwrap_or(0),
        backing_file: be64(head, 8) != 0,
    };
    if version != 2 && version != 3 {
        problems.push(format!(
            "qcow2 version {version} at byte 4; qemu-img reads 2 and 3"
        ));
    }
    if !(9..=21).contains(&cluster_bits) {
        problems.push(format!(
            "qcow2 cluster_bits {cluster_bits} at byte 20 is outside 9..21"
        ));
    }
    let l1_offset = be64(head, 40);
    let l1_size = be32(head, 36) as u64;
    if l1_offset.saturating_add(l1_size * 8) > file_size {
        problems.push(format!("qcow2 L1 table ({l1_size} entries at byte {l1_offset}) extends past the end of the file ({file_size} bytes)"));
    }
    if q.backing_file {
        problems.push("qcow2 image has a backing file; LXD needs a self-contained image".into());
    }
    (Some(q), problems)
}

/// The fields of an `os-release` file that say which distribution and release it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OsRelease {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
}

/// Parses `KEY=value` lines (shell-quoted values) of an os-release file.
pub fn os_release(text: &[u8]) -> OsRelease {
    let mut r = OsRelease::default();
    for line in String::from_utf8_lossy(text).lines() {
        let line = line.trim();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v)
            .to_string();
        match k {
            "ID" => r.id = Some(v),
            "NAME" => r.name = Some(v),
            "VERSION_ID" => r.version_id = Some(v),
            "VERSION_CODENAME" => r.version_codename = Some(v),
            "PRETTY_NAME" => r.pretty_name = Some(v),
            _ => {}
        }
    }
    r
}

impl OsRelease {
    /// Whether the `os` property names this distribution.
    pub fn matches_os(&self, os: &str) -> bool {
        let os = os.trim().to_lowercase();
        [&self.id, &self.name, &self.pretty_name]
            .iter()
            .filter_map(|v| v.as_deref())
            .any(|v| {
                v.to_lowercase() == os
                    || v.to_lowercase().split_whitespace().next() == Some(os.as_str())
            })
    }

    /// Whether the `release` property names this release (codename or version).
    pub fn matches_release(&self, release: &str) -> bool {
        let rel = release.trim().to_lowercase();
        let ok = |v: &Option<String>| {
            v.as_deref().map(|v| v.to_lowercase()).is_some_and(|v| {
                v == rel || v.starts_with(&format!("{rel}.")) || rel.starts_with(&format!("{v}."))
            })
        };
        ok(&self.version_id)
            || ok(&self.version_codename)
            || self
                .pretty_name
                .as_deref()
                .is_some_and(|p| p.to_lowercase().contains(&rel))
    }
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

fn decompress_block(compressor: u16, data: &[u8]) -> Result<Vec<u8>, String> {
    const META: usize = 8192;
    let mut out = vec![0u8; META + 1];
    let n = match compressor {
        1 => {
            let mut d = flate2::Decompress::new(true);
            d.decompress(data, &mut out, flate2::FlushDecompress::Finish)
                .map_err(|e| format!("gzip: {e}"))?;
            d.total_out() as usize
        }
        4 => {
            let mut x = lzma_rust2::XzStream::new(false);
            crate::decode::lz_decode_all(&mut |i, o, a| x.process(i, o, a), data, &mut out)
                .map_err(|e| format!("xz uncompress failed: {e}"))?
        }
        2 => {
            let mut x = lzma_rust2::LzmaStream::new_mem_limit(64 << 10, None);
            crate::decode::lz_decode_all(&mut |i, o, a| x.process(i, o, a), data, &mut out)
                .map_err(|e| format!("lzma uncompress failed: {e}"))?
        }
        6 => zstd_safe::decompress(&mut out[..], data).map_err(|code| {
            if zstd_safe::get_error_name(code).contains("too small") {
                format!("metadata block decompresses to more than {META} bytes")
            } else {
                format!("zstd uncompress failed: {}", zstd_safe::get_error_name(code))
            }
        })?,
        _ => return Ok(Vec::new()), // lzo / lz4: not decoded by lxdimg
    };
    if n > META {
        return Err(format!(
            "metadata block decompresses to more than {META} bytes"
        ));
    }
    out.truncate(n);
    Ok(out)
}

/// Checks that the squashfs metadata blocks (inode, directory and fragment tables) chain up and
/// decompress, the way unsquashfs reads them. `tables` holds the file's bytes from
/// `inode_table_start` on (possibly fewer than all of them: then only those are checked).
pub fn squashfs_tables(head: &[u8], tables: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((start, _)) = squashfs_tables_range(head) else {
        return problems;
    };
    let compressor = le16(head, 20);
    let dir_start = le64(head, 72);
    let root_inode = le64(head, 32);
    let mut next_index = u64::MAX;
    for at in [
        le64(head, 80),
        le64(head, 88),
        le64(head, 48),
        le64(head, 56),
    ] {
        if at > dir_start && at != u64::MAX {
            next_index = next_index.min(at);
        }
    }
    let have_to = start + tables.len() as u64;
    let mut inode_blocks = Vec::new();
    for (what, from, to) in [
        ("inode table", start, dir_start),
        ("directory table", dir_start, next_index),
    ] {
        let mut off = from;
        while off < to && off + 2 <= have_to {
            if what == "inode table" {
                inode_blocks.push(off - start);
            }
            let i = (off - start) as usize;
            let h = u16::from_le_bytes([tables[i], tables[i + 1]]);
            let len = (h & 0x7fff) as u64;
            if len == 0 || off + 2 + len > have_to {
                if off + 2 + len > have_to && have_to < to {
                    break; // not kept: not checked
                }
                problems.push(format!("squashfs {what}: metadata block at byte {off} has length {len}, beyond the table"));
                break;
            }
            let data = &tables[i + 2..i + 2 + len as usize];
            if h & 0x8000 == 0 {
                if let Err(e) = decompress_block(compressor, data) {
                    problems.push(format!(
                        "squashfs {what}: read_block: failed to read block @{off:#x} ({e})"
                    ));
                    break;
                }
            } else if len > 8192 {
                problems.push(format!(
                    "squashfs {what}: uncompressed metadata block at byte {off} is {len} bytes"
                ));
                break;
            }
            off += 2 + len;
        }
        if problems.is_empty() && off != to && to != u64::MAX && off < have_to && to <= have_to {
            problems.push(format!(
                "squashfs {what}: metadata blocks end at byte {off}, not at the next table ({to})"
            ));
        }
    }
    if problems.is_empty() && dir_start <= have_to {
        let block = root_inode >> 16;
        let offset = root_inode & 0xffff;
        if !inode_blocks.contains(&block) || offset >= 8192 {
            problems.push(format!(
                "squashfs root inode reference {root_inode:#x} does not point into the inode table"
            ));
        }
    }
    problems
}

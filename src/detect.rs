//! Image file format detection, exactly as LXD's and Incus's `DetectCompressionFile` do it.
//!
//! LXD reads the first 263 bytes with a single `Read` and compares magic numbers in a fixed order,
//! with the unread tail left as zeros (so a 2-byte file `1F 8B` is "gzip"). Incus guards every rule
//! by the number of bytes actually read and checks zstd and lz4 before the ustar magic.

use serde::Serialize;

/// Bytes LXD reads to detect the format.
pub const HEADER_LEN: usize = 263;

/// An image file format as LXD names it (by the tar flags / extension it picks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Zstd,
    /// Uncompressed tar (LXD recognises it only by the `ustar` magic at offset 257).
    Tar,
    Squashfs,
    Qcow2,
    /// Incus only.
    Lz4,
    /// Incus only.
    Vmdk,
}

impl Format {
    /// The extension LXD gives this format (`.tar.xz`, …), used in its messages.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Gzip => ".tar.gz",
            Format::Bzip2 => ".tar.bz2",
            Format::Xz => ".tar.xz",
            Format::Lzma => ".tar.lzma",
            Format::Zstd => ".tar.zst",
            Format::Tar => ".tar",
            Format::Squashfs => ".squashfs",
            Format::Qcow2 => ".qcow2",
            Format::Lz4 => ".tar.lz4",
            Format::Vmdk => ".vmdk",
        }
    }

    /// Whether the format is a compressed or plain tarball.
    pub fn is_tarball(self) -> bool {
        !matches!(self, Format::Squashfs | Format::Qcow2 | Format::Vmdk)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Zstd => "zstd",
            Format::Tar => "tar",
            Format::Squashfs => "squashfs",
            Format::Qcow2 => "qcow2",
            Format::Lz4 => "lz4",
            Format::Vmdk => "vmdk",
        }
    }
}

/// The outcome of format detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    Format(Format),
    /// `Unsupported compression`.
    Unsupported,
    /// The file is empty: the single `Read` returns `io.EOF`, which LXD reports as `EOF`.
    Empty,
}

fn padded(head: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let n = head.len().min(HEADER_LEN);
    h[..n].copy_from_slice(&head[..n]);
    h
}

/// LXD's rule table (5.0.2 through HEAD): first match wins, zero padding takes part.
pub fn detect_lxd(head: &[u8]) -> Detection {
    if head.is_empty() {
        return Detection::Empty;
    }
    let h = padded(head);
    let f = if h[0..2] == *b"BZ" {
        Format::Bzip2
    } else if h[0..2] == [0x1f, 0x8b] {
        Format::Gzip
    } else if h[0] == 0xfd && h[1..5] == *b"7zXZ" {
        Format::Xz
    } else if h[0] != 0xfd && h[1..5] == *b"7zXZ" {
        Format::Lzma
    } else if h[0..3] == [0x5d, 0, 0] {
        Format::Lzma
    } else if h[257..262] == *b"ustar" {
        Format::Tar
    } else if h[0..4] == *b"hsqs" {
        Format::Squashfs
    } else if h[0..3] == *b"QFI" {
        Format::Qcow2
    } else if h[0..4] == [0x28, 0xb5, 0x2f, 0xfd] {
        Format::Zstd
    } else {
        return Detection::Unsupported;
    };
    Detection::Format(f)
}

/// Incus's rule table (HEAD): every rule needs enough bytes; zstd and lz4 precede ustar.
pub fn detect_incus(head: &[u8]) -> Detection {
    detect_incus_table(head, true)
}

/// Incus's rule table; `guarded`: each rule checks that enough bytes were read (Incus after
/// 6.0.4). Incus 6.0.4 has the zstd/lz4 rules but, like LXD, lets the zero padding complete a
/// magic (measured: a 1-byte file `5D` is "lzma" to it).
pub fn detect_incus_table(head: &[u8], guarded: bool) -> Detection {
    if head.is_empty() {
        return Detection::Empty;
    }
    let n = if guarded {
        head.len().min(HEADER_LEN)
    } else {
        HEADER_LEN
    };
    let h = padded(head);
    let f = if n >= 2 && h[0..2] == *b"BZ" {
        Format::Bzip2
    } else if n >= 2 && h[0..2] == [0x1f, 0x8b] {
        Format::Gzip
    } else if n >= 5 && h[0] == 0xfd && h[1..5] == *b"7zXZ" {
        Format::Xz
    } else if n >= 5 && h[0] != 0xfd && h[1..5] == *b"7zXZ" {
        Format::Lzma
    } else if n >= 3 && h[0..3] == [0x5d, 0, 0] {
        Format::Lzma
    } else if n >= 4 && h[0..4] == [0x28, 0xb5, 0x2f, 0xfd] {
        Format::Zstd
    } else if n >= 4 && h[0..4] == [0x04, 0x22, 0x4d, 0x18] {
        Format::Lz4
    } else if n >= 262 && h[257..262] == *b"ustar" {
        Format::Tar
    } else if n >= 4 && h[0..4] == *b"hsqs" {
        Format::Squashfs
    } else if n >= 3 && h[0..3] == *b"QFI" {
        Format::Qcow2
    } else if n >= 4 && h[0..4] == *b"KDMV" {
        Format::Vmdk
    } else {
        return Detection::Unsupported;
    };
    Detection::Format(f)
}

/// Whether the first 512 bytes are a tar header with a valid checksum (any of V7, ustar, GNU, PAX).
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block[..512].iter().all(|&b| b == 0) {
        return false;
    }
    crate::tar::checksum_ok(block[..512].try_into().expect("512 bytes"))
}

/// What the bytes really are, for decoding: LXD's answer, except that a file that starts with a
/// valid tar header is read as a tar even where LXD's table says otherwise (a first member named
/// `BZ…`, or a V7 tar without magic), so its content can still be explained.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if is_tar_header(head) {
        return Some(Format::Tar);
    }
    match detect_lxd(head) {
        Detection::Format(f) => Some(f),
        _ => match detect_incus(head) {
            Detection::Format(f) => Some(f),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lxd_quirks() {
        assert_eq!(detect_lxd(&[]), Detection::Empty);
        assert_eq!(detect_lxd(&[0x1f]), Detection::Unsupported);
        assert_eq!(detect_lxd(&[0x1f, 0x8b]), Detection::Format(Format::Gzip));
        assert_eq!(detect_lxd(&[0x5d]), Detection::Format(Format::Lzma));
        assert_eq!(detect_lxd(b"\x007zXZ\x00"), Detection::Format(Format::Lzma));
        assert_eq!(detect_lxd(b"\xfd7zXZ"), Detection::Format(Format::Xz));
        assert_eq!(detect_lxd(b"QFI\xfb"), Detection::Format(Format::Qcow2));
        assert_eq!(detect_incus(&[0x5d]), Detection::Unsupported);
        assert_eq!(
            detect_incus(&[0x04, 0x22, 0x4d, 0x18]),
            Detection::Format(Format::Lz4)
        );
        assert_eq!(
            detect_lxd(&[0x04, 0x22, 0x4d, 0x18]),
            Detection::Unsupported
        );
    }
}

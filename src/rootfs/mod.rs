//! Header checks for rootfs files LXD does not decode as tarballs: squashfs superblocks and
//! metadata tables, qcow2 headers; plus `os-release` parsing.

mod os_release;
mod qcow2;
mod squashfs;

pub use os_release::{os_release, OsRelease};
pub use qcow2::{qcow2, Qcow2};
pub use squashfs::{squashfs, squashfs_tables, squashfs_tables_range, Squashfs};

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

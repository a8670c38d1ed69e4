//! qcow2 headers.

use super::{be32, be64};
use serde::Serialize;

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

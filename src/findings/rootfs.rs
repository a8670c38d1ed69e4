//! The rootfs part of the Report, and what is wrong with the rootfs for the image's type.

use super::Findings;
use crate::codes::FindingCode as C;
use crate::detect::Format;
use crate::report::{Compression, FileRole, ImageType, RootfsFormat, RootfsReport, Unpacked};
use crate::rootfs;
use crate::view::{is_qcow2, ImageView};

pub(crate) fn rootfs_report(image: &ImageView<'_>, out: &mut Findings) -> Option<RootfsReport> {
    let ty = image.image_type();
    let Some(r) = image.rootfs_file() else {
        // Unified: the rootfs/ tree or rootfs.img inside the tarball.
        let c = image.first().collected;
        if let (Some(ImageType::VirtualMachine), Some(img)) = (ty, &c.root_img) {
            let (q, problems) = rootfs::qcow2(&img.data, img.size);
            if !is_qcow2(&img.data) {
                out.add(
                    C::VmDiskNotQcow2,
                    "rootfs.img is not a qcow2 image; LXD accepts it at import but instance creation fails (\"Unexpected image format\")",
                )
                .file(FileRole::Unified)
                .entry("rootfs.img");
            } else {
                for p in problems {
                    out.add(C::Qcow2Invalid, p)
                        .file(FileRole::Unified)
                        .entry("rootfs.img");
                }
            }
            return Some(RootfsReport {
                format: RootfsFormat::File(Compression::Detected(Format::Qcow2)),
                entries: None,
                bytes: Some(img.size),
                squashfs: None,
                qcow2: q,
            });
        }
        if c.saw_container_root {
            return Some(RootfsReport {
                format: RootfsFormat::Unpacked(Unpacked::Tree),
                entries: Some(c.root_entries),
                bytes: Some(c.root_bytes),
                squashfs: None,
                qcow2: None,
            });
        }
        return None;
    };
    swapped_split(image, out);
    let role = FileRole::Rootfs;
    let size_if_read = if r.partial { u64::MAX } else { r.size };
    let mut rep = RootfsReport {
        format: RootfsFormat::File(Compression::of(r.size, r.format)),
        entries: None,
        bytes: None,
        squashfs: None,
        qcow2: None,
    };
    match (r.format, r.tar) {
        (Some(Format::Squashfs), _) => {
            let (sb, problems) = rootfs::squashfs(r.head, size_if_read);
            rep.squashfs = sb;
            for p in problems.into_iter().chain(r.squashfs_table_problems()) {
                out.add(C::SquashfsInvalid, p).file(role);
            }
            if ty == Some(ImageType::VirtualMachine) {
                out.add(
                    C::RootfsSquashfsAsVm,
                    "a squashfs rootfs cannot be a virtual-machine disk",
                )
                .file(role);
            }
        }
        (Some(Format::Qcow2), _) => {
            let (q, problems) = rootfs::qcow2(r.head, size_if_read);
            rep.qcow2 = q;
            for p in problems {
                out.add(C::Qcow2Invalid, p).file(role);
            }
            if image.split_type == Some(ImageType::Container) {
                out.add(
                    C::RootfsQcow2AsContainer,
                    "a qcow2 disk was given as a container rootfs; LXD imports it but `lxc launch` fails with \"Unsupported image format: .qcow2\"",
                )
                .file(role);
            }
        }
        (Some(_), Some(tar)) => {
            rep.entries = Some(tar.entries);
            rep.bytes = Some(tar.data_bytes);
            if ty == Some(ImageType::VirtualMachine) {
                out.add(
                    C::RootfsTarballAsVm,
                    "a tarball rootfs cannot be a virtual-machine disk",
                )
                .file(role);
            }
            if !r.partial && tar.entries == 0 {
                out.add(C::RootfsEmpty, "the rootfs tarball has no entries")
                    .file(role);
            }
        }
        _ if r.size > 0 => {
            out.add(
                C::RootfsUnsupported,
                "the rootfs is neither squashfs, qcow2 nor a tarball; `lxc image import` refuses it (\"Unsupported compression\") and the server would fail to unpack it",
            )
            .file(role)
            .offset(0);
        }
        _ => {}
    }
    Some(rep)
}

/// A split image given rootfs first: LXD's verdict concerns the wrong file, so say what to do.
fn swapped_split(image: &ImageView<'_>, out: &mut Findings) {
    let (Some(meta), Some(root)) = (image.files.first(), image.rootfs_file()) else {
        return;
    };
    let meta_is_rootfs = matches!(meta.format, Some(Format::Squashfs | Format::Qcow2))
        || (meta.collected.docs.is_empty() && meta.tar.is_some_and(|t| t.entries > 0));
    let root_is_metadata = root.tar.is_some() && root.collected.metadata_in_rootfs;
    if root_is_metadata && !meta.collected.docs.is_empty() {
        out.add(
            C::SplitMetadataTwice,
            "both files of this split image hold metadata.yaml: the metadata tarball seems to be given twice, in place of the rootfs; LXD imports it, but the instance's root file system would be that tarball's content",
        )
        .file(FileRole::Rootfs)
        .offset(0)
        .entry("metadata.yaml");
        return;
    }
    if !(meta_is_rootfs && root_is_metadata) {
        return;
    }
    let name = |n: Option<&str>, dflt: &str| crate::findings::shell_quote(n.unwrap_or(dflt));
    out.add(
        C::SplitFilesSwapped,
        format!(
            "the files of this split image are in the wrong order: the first is a rootfs ({}) and the second holds metadata.yaml; LXD reads the metadata file first. Run: lxc image import {} {}",
            Compression::of(meta.size, meta.format),
            name(root.name, "METADATA"),
            name(meta.name, "ROOTFS"),
        ),
    )
    .file(FileRole::Metadata)
    .offset(0);
}

//! Findings about one file: its format, its compressed stream and its tar walk.

use super::Findings;
use crate::codes::{FindingCode as C, Severity};
use crate::detect::{Detection, Format};
use crate::report::FileRole;
use crate::tar::TarEnd;
use crate::view::FileView;

pub(crate) fn file_findings(f: &FileView<'_>, out: &mut Findings) {
    let role = f.role;
    let what = role.noun();
    if f.size == 0 && !f.partial {
        out.add(C::EmptyFile, format!("the {what} is empty"))
            .file(role)
            .offset(0);
        return;
    }
    if f.format.is_none() && f.size > 0 {
        let hexhead: String = f.head.iter().take(8).map(|b| format!("{b:02x} ")).collect();
        out.add(
            C::UnknownFormat,
            format!("the {what} is none of gzip, bzip2, xz, lzma, zstd, tar, squashfs or qcow2 (first bytes: {})", hexhead.trim_end()),
        )
        .file(role)
        .offset(0);
    }
    let lxd = f.lxd_detection();
    if let (Some(real), Detection::Format(lxd)) = (f.format, lxd) {
        if real != lxd && role != FileRole::Rootfs {
            out.add(
                C::LxdMisdetectsFormat,
                format!(
                    "the {what} is a plain {} but its first bytes match LXD's {} magic (the first member's name), so LXD pipes it through the wrong decompressor and finds nothing; rename or reorder the first member, or compress the tarball",
                    real.name(),
                    lxd.name()
                ),
            )
            .file(role)
            .offset(0);
        }
    }
    if f.format == Some(Format::Tar) && lxd == Detection::Unsupported {
        out.add(
            C::V7Tar,
            format!("the {what} is a tar without the POSIX 'ustar' magic at offset 257 (V7 format), which LXD does not recognise; create it with GNU tar or in --format=gnu/pax, or compress it"),
        )
        .file(role)
        .offset(257);
    }
    if let Some(e) = f.decode_error.filter(|_| !f.partial) {
        out.add(
            C::DecodeError,
            format!("{} at byte {} of the {what}; LXD's import may still succeed if it read what it needed before this point, but unpacking (lxc launch) fails", e.message, e.offset),
        )
        .file(role)
        .offset(e.offset);
    }
    if let Some(b) = f.bomb {
        let named = match f.name {
            Some(n) => format!("{what} {n:?}"),
            None => what.to_string(),
        };
        let verdict = if f.walk_cut().is_some() {
            "LXD's import verdict is not known (its walk had not finished)"
        } else {
            "LXD's import verdict was already settled"
        };
        out.add(
            C::DecompressionBomb,
            format!(
                "{}; {verdict}, the fingerprint still covers every byte; unpacking (lxc launch) would decompress at least {} bytes; raise the expansion limits (lxdimg inspect --max-decoded-bytes, --max-expansion-ratio) to read on",
                b.describe(&named),
                b.decoded
            ),
        )
        .file(role)
        .offset(b.compressed);
    }
    if let Some(t) = f.trailing {
        let zeros = if t.all_zero { "zero " } else { "" };
        out.add(
            C::TrailingData,
            format!(
                "{} {zeros}bytes follow the end of the {} stream at byte {} of the {what}; LXD's import ignores them, but {} at unpack",
                t.len,
                f.format.map(|x| x.name()).unwrap_or("compressed"),
                t.offset,
                if t.all_zero { "decompressors usually tolerate zero padding" } else { "GNU tar may fail on the decompressor's warning" }
            ),
        )
        .severity(if t.all_zero { Severity::Info } else { Severity::Warning })
        .file(role)
        .offset(t.offset);
    }
    let Some(tar) = f.tar else {
        return metadata_entry_findings(f, out);
    };
    if let Some(e) = tar.error.filter(|_| !f.partial) {
        let message = if e.detail.contains("offset") {
            format!("{} ({})", e.detail, e.go_message)
        } else {
            format!(
                "{}, at decoded offset {} ({})",
                e.detail, e.offset, e.go_message
            )
        };
        let add = out.add(C::TarError, message).file(role);
        if let Some(entry) = &e.entry {
            add.entry(entry.clone());
        }
    }
    if !f.partial && f.decode_error.is_none() && tar.error.is_none() {
        match tar.end {
            Some(TarEnd::NoMarker) => {
                out.add(
                    C::TarNoEndMarker,
                    format!("the tar stream of the {what} ends at decoded offset {} without the two zero blocks that mark the end of an archive", tar.offset),
                )
                .file(role);
            }
            Some(TarEnd::LoneZeroBlock) => {
                out.add(
                    C::TarLoneZeroBlock,
                    format!("the tar stream of the {what} ends with a single zero block (GNU tar warns \"A lone zero block\")"),
                )
                .file(role);
            }
            _ => {}
        }
    }
    metadata_entry_findings(f, out);
}

/// The `metadata.yaml` entries of a unified image or metadata tarball, as LXD's walk met them.
fn metadata_entry_findings(f: &FileView<'_>, out: &mut Findings) {
    let c = f.collected;
    let role = f.role;
    if role == FileRole::Rootfs {
        return;
    }
    if c.docs.len() > 1 {
        out.add(
            C::MetadataDuplicate,
            format!("{} metadata.yaml entries before the rootfs; LXD decodes each on top of the previous one", c.docs.len()),
        )
        .file(role)
        .entry(c.docs[1].name.clone());
    }
    for (name, at) in &c.ignored_meta {
        out.add(
            C::MetadataIgnored,
            format!("a further {name} at decoded offset {at} is never read by LXD (it stops once it has seen metadata.yaml and the rootfs)"),
        )
        .file(role)
        .entry(name.clone());
    }
    if let Some(d) = c.docs.iter().find(|d| !d.regular) {
        out.add(
            C::MetadataNotRegular,
            format!("{} is a link or special file, not a regular file: LXD 5.0 reads no data from it (\"EOF\"), newer LXD refuses it", d.name),
        )
        .file(role)
        .entry(d.name.clone());
    }
    if c.root_before_meta > 1000 {
        out.add(
            C::MetadataLate,
            format!("metadata.yaml comes after {} rootfs entries; LXD has to decompress all of them before it can judge the image (put metadata.yaml first)", c.root_before_meta),
        )
        .file(role);
    }
    if c.saw_container_root && c.saw_vm_root {
        out.add(
            C::RootfsAndDisk,
            "the image has both rootfs/ entries and a rootfs.img; LXD takes the type of whichever it meets last before it stops reading",
        )
        .file(role);
    }
}

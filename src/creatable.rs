//! The `creatable` verdict: whether `lxc init`/`lxc launch` can create an instance from the image
//! once imported. LXD then unpacks the whole image with GNU tar and the decompressors (or
//! unsquashfs, or qemu-img), so their rules and their error texts are reproduced here.

use crate::arch;
use crate::decode::DecodeError;
use crate::detect::Format;
use crate::report::{Creatable, CreatableCode as Code, FileRole, ImageType, Verdict};
use crate::rootfs;
use crate::verdict::Target;
use crate::view::{is_qcow2, FileView, ImageView};

/// What GNU tar, the decompressors, unsquashfs and qemu-img make of the whole image when LXD
/// unpacks it for a new instance (independent of the LXD version).
pub fn unpack_outcome(image: &ImageView<'_>, complete: bool) -> Creatable {
    if !complete {
        return Creatable::unknown(Code::NotChecked, "reading stopped once the import verdict was known (--quick): creatability was not checked".into());
    }
    let ty = image.image_type().unwrap_or(ImageType::Container);
    // A file that fails beats one whose outcome is unknown (a decompression bomb).
    let outcomes: Vec<Creatable> = image.files.iter().filter_map(tarball_outcome).collect();
    if let Some(c) = outcomes
        .iter()
        .find(|c| c.ok == Some(false))
        .or(outcomes.first())
    {
        return c.clone();
    }
    if ty == ImageType::VirtualMachine {
        let head: &[u8] = match image.rootfs_file() {
            Some(r) => r.head,
            None => image
                .first()
                .collected
                .root_img
                .as_ref()
                .map(|k| k.data.as_slice())
                .unwrap_or(&[]),
        };
        if !is_qcow2(head) {
            return Creatable::no(Code::Qcow2Invalid, "Unexpected image format \"raw\"".into());
        }
        return Creatable::unknown(
            Code::VirtualMachine,
            "virtual-machine images are converted by qemu-img and need QEMU/KVM on the host; lxdimg checks only the qcow2 header".into(),
        );
    }
    if let Some(r) = image.rootfs_file() {
        match r.format {
            Some(Format::Squashfs) => {
                let (_, problems) = rootfs::squashfs(r.head, r.size);
                if let Some(p) = problems
                    .into_iter()
                    .next()
                    .or_else(|| r.squashfs_table_problems().into_iter().next())
                {
                    return Creatable::no(
                        Code::SquashfsInvalid,
                        format!("Failed creating instance from image: Unpack failed: Failed to run: unsquashfs -f -d <instance>/rootfs -n <image>.rootfs: Process exited with non-zero value 1 (FATAL ERROR: File system corruption detected) [lxdimg: {p}]"),
                    );
                }
            }
            Some(Format::Qcow2) => {
                return Creatable::no(
                    Code::RootfsUnsupported,
                    "Failed creating instance from image: Unsupported image format: .qcow2".into(),
                )
            }
            Some(f) if f.is_tarball() => {}
            _ if r.size == 0 => {
                return Creatable::no(
                    Code::RootfsUnsupported,
                    "Failed creating instance from image: EOF".into(),
                )
            }
            _ => {
                return Creatable::no(
                    Code::RootfsUnsupported,
                    "Failed creating instance from image: Unsupported compression".into(),
                )
            }
        }
    }
    Creatable::yes()
}

/// LXD's error when GNU tar (with its decompressor) fails to unpack a tarball.
fn unpack_failed(fmt: Format, role: FileRole, stderr: &str) -> String {
    let flag = match fmt {
        Format::Gzip => "-zxf",
        Format::Bzip2 => "-jxf",
        Format::Xz => "-Jxf",
        Format::Lzma => "--lzma -xf",
        Format::Zstd => "--zstd -xf",
        _ => "-xf",
    };
    let dest = if role == FileRole::Rootfs {
        "<instance>/rootfs"
    } else {
        "<instance>"
    };
    format!(
        "Failed creating instance from image: Unpack failed: Failed to run: tar --restrict --force-local -C {dest} --numeric-owner --xattrs-include=* {flag} -: Process exited with non-zero value 2 ({stderr})"
    )
}

/// The first line the decompressor prints for a decoding error.
fn tool_stderr(fmt: Format, e: &DecodeError) -> String {
    let m = e.message.as_str();
    let truncated = m.contains("nexpected end")
        || m.contains("ends unexpectedly")
        || m.contains("premature end");
    match fmt {
        Format::Gzip => m.replacen("gzip: ", "gzip: stdin: ", 1),
        Format::Xz | Format::Lzma if truncated => "xz: (stdin): Unexpected end of input".into(),
        Format::Xz | Format::Lzma => "xz: (stdin): Compressed data is corrupt".into(),
        Format::Bzip2 if truncated => "bzip2: Compressed file ends unexpectedly;".into(),
        Format::Bzip2 => "bzip2: Data integrity error when decompressing.".into(),
        Format::Zstd if truncated => "/*stdin*\\ : Read error (39) : premature end ".into(),
        _ => m.to_string(),
    }
}

/// A tarball's stream, as the decompressor and GNU tar see it when reading it to the end.
fn tarball_outcome(f: &FileView<'_>) -> Option<Creatable> {
    let fmt = f.format?;
    let tar = f.tar?;
    let whose = |detail: String| format!(" [lxdimg: {detail} in the {} file]", f.role);
    if let Some(e) = f.decode_error {
        let msg = unpack_failed(fmt, f.role, &tool_stderr(fmt, e))
            + &whose(format!("{} at byte {}", e.message, e.offset));
        return Some(Creatable::no(Code::DecodeError, msg));
    }
    if let Some(t) = f.trailing {
        // Measured with LXD 5.0.2's unpack: gzip ignores trailing zero bytes but warns (exit 2)
        // on any other trailing data, which GNU tar treats as failure; bzip2 only warns; zstd,
        // xz and lzma refuse anything after the stream (xz's valid 4-byte padding is decoded).
        let tool = match fmt {
            Format::Gzip if !t.all_zero => {
                "gzip: stdin: decompression OK, trailing garbage ignored"
            }
            Format::Zstd => "zstd: /*stdin*\\: unsupported format ",
            Format::Xz | Format::Lzma => "xz: (stdin): Compressed data is corrupt",
            _ => "",
        };
        if !tool.is_empty() {
            let msg = unpack_failed(fmt, f.role, tool)
                + &whose(format!("{} trailing bytes at byte {}", t.len, t.offset));
            return Some(Creatable::no(Code::TrailingData, msg));
        }
    }
    if let Some(name) = &f.collected.dotdot {
        let msg = unpack_failed(
            fmt,
            f.role,
            &format!("tar: {name}: Member name contains '..'"),
        );
        return Some(Creatable::no(Code::TarError, msg));
    }
    let tar_failed = tar.error.filter(|e| !e.in_header);
    if let (Some(b), None) = (f.bomb, tar_failed) {
        return Some(Creatable::unknown(
            Code::DecompressionBomb,
            format!(
                "{}; the rest of the stream was not checked, and unpacking it decompresses at least {} bytes",
                b.describe(f.role.noun()),
                b.decoded
            ),
        ));
    }
    if let Some(e) = tar_failed {
        let gnu = if e.go_message == crate::tar::ERR_UNEXPECTED_EOF {
            "tar: Unexpected EOF in archive"
        } else {
            "tar: Skipping to next header\ntar: Exiting with failure status due to previous errors"
        };
        return Some(Creatable::no(
            Code::TarError,
            unpack_failed(fmt, f.role, gnu) + &whose(e.detail.clone()),
        ));
    }
    None
}

/// The `creatable` verdict of one target: its import verdict, the unpack outcome, and whether
/// the host can run the image's architecture (LXD's personalities: i686 on x86_64, …).
pub fn creatable(
    target: &Target,
    verdict: &Verdict,
    unpack: &Creatable,
    arch_text: Option<&str>,
    host_arch: Option<&str>,
) -> Creatable {
    match verdict.accepted {
        Some(true) => {}
        Some(false) => {
            return Creatable::unknown(
                Code::ImportRejected,
                "the image is not imported, so no instance can be created from it".into(),
            )
        }
        None if unpack.code == Some(Code::DecompressionBomb) => return unpack.clone(),
        None => {
            return Creatable::unknown(
                Code::ImportNotJudged,
                "lxdimg cannot judge the import, so not the creation either".into(),
            )
        }
    }
    if unpack.ok == Some(false) {
        return unpack.clone();
    }
    if let (Some(host), Some(a)) = (host_arch, arch_text) {
        if let Some((_, name)) = arch::lookup(target.arch, a) {
            if !arch::personalities(host).contains(&name) {
                return Creatable::no(
                    Code::Architecture,
                    format!("Failed creating instance record: Requested architecture isn't supported by this host [lxdimg: {name} image, {host} host]"),
                );
            }
        }
    }
    unpack.clone()
}

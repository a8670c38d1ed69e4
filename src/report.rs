//! The one `Report` shape shared by the CLI (`--json`), the page and the edge worker.

use crate::rootfs::{OsRelease, Qcow2, Squashfs};
use crate::yaml::Template;
use serde::Serialize;
use std::collections::BTreeMap;

/// `unified` (one tarball) or `split` (metadata tarball + rootfs file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Unified,
    Split,
}

/// LXD's instance type for the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageType {
    Container,
    VirtualMachine,
}

impl ImageType {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageType::Container => "container",
            ImageType::VirtualMachine => "virtual-machine",
        }
    }
}

/// What one LXD/Incus version says about importing the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub accepted: bool,
    /// The error the import would fail with, word for word (without the CLI's `Error: ` prefix).
    pub error: Option<String>,
    /// Whether `lxc init`/`lxc launch` of the imported image would then succeed on the host.
    pub creatable: Creatable,
}

/// Whether an instance can be created from the image (LXD unpacks it whole at that point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Creatable {
    /// `true`/`false`, or `null` when it cannot be known (say why in `error`).
    pub ok: Option<bool>,
    /// What fails, as LXD's unpack reports it (or why it cannot be known).
    pub error: Option<String>,
    /// Failure class: `decode-error`, `trailing-data`, `tar-error`, `squashfs-invalid`,
    /// `qcow2-invalid`, `rootfs-unsupported`, `architecture`; for `null`: `import-rejected`,
    /// `not-checked`, `virtual-machine`, `host-unknown`.
    pub code: Option<&'static str>,
}

impl Creatable {
    pub fn yes() -> Creatable {
        Creatable {
            ok: Some(true),
            error: None,
            code: None,
        }
    }
    pub fn no(code: &'static str, error: String) -> Creatable {
        Creatable {
            ok: Some(false),
            error: Some(error),
            code: Some(code),
        }
    }
    pub fn unknown(code: &'static str, why: String) -> Creatable {
        Creatable {
            ok: None,
            error: Some(why),
            code: Some(code),
        }
    }
}

/// Verdicts per target, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    /// The Debian 12 build of LXD 5.0.2 (`5.0.2-5+deb12u6`), the reference the tests run against.
    #[serde(rename = "lxd-5.0")]
    pub lxd_5_0: Verdict,
    /// LXD 5.21.7.
    #[serde(rename = "lxd-5.21")]
    pub lxd_5_21: Verdict,
    /// LXD 6.9.
    #[serde(rename = "lxd-6")]
    pub lxd_6: Verdict,
    /// Incus 6.x (yaml.v2, no metadata size cap).
    #[serde(rename = "incus-6")]
    pub incus_6: Verdict,
    /// Incus 7 (yaml v4).
    #[serde(rename = "incus-7")]
    pub incus_7: Verdict,
}

impl Verdicts {
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Verdict)> {
        [
            ("lxd-5.0", &self.lxd_5_0),
            ("lxd-5.21", &self.lxd_5_21),
            ("lxd-6", &self.lxd_6),
            ("incus-6", &self.incus_6),
            ("incus-7", &self.incus_7),
        ]
        .into_iter()
    }
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// `unified`, `metadata` or `rootfs`.
    pub role: &'static str,
    pub name: Option<String>,
    pub size: u64,
    /// SHA-256 of the file (null when reading stopped early).
    pub sha256: Option<String>,
    /// `gzip`, `bzip2`, `xz`, `lzma`, `zstd`, `tar`, `squashfs`, `qcow2`, `lz4`, `vmdk`, `empty` or `unknown`.
    pub compression: String,
    /// Decoded (tar stream) bytes, for tarballs.
    pub decoded_size: Option<u64>,
}

/// `metadata.yaml` as LXD 5.0 decodes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataReport {
    /// As written (LXD shows the canonical name, see `Report::architecture`).
    pub architecture: String,
    pub creation_date: i64,
    pub expiry_date: i64,
    /// `creation_date` as an RFC 3339 UTC time, as `lxc image info` shows it.
    pub created: Option<String>,
    pub expires: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub templates: BTreeMap<String, Option<Template>>,
}

/// One template rule, joined with its file in `templates/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateReport {
    /// Target path in the instance (the key in `metadata.yaml`).
    pub path: String,
    /// Triggers.
    pub when: Vec<String>,
    /// File name under `templates/`.
    pub template: String,
    pub create_only: bool,
    pub properties: BTreeMap<String, String>,
    /// Whether `templates/<template>` is in the image.
    pub present: bool,
    pub size: Option<u64>,
    /// The template text (up to 64 KiB, lossy UTF-8).
    pub text: Option<String>,
    pub text_truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// Something lxdimg noticed, beyond (or explaining) LXD's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (see the README's table).
    pub code: &'static str,
    pub severity: Severity,
    /// What is wrong and where.
    pub message: String,
    /// `unified`, `metadata` or `rootfs`.
    pub file: Option<&'static str>,
    /// Byte offset: in the compressed file, unless the message says "decoded".
    pub offset: Option<u64>,
    /// Archive entry concerned.
    pub entry: Option<String>,
}

/// Tar walk counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TarSummary {
    pub entries: u64,
    pub bytes: u64,
    /// `marker` (two zero blocks), `lone-zero-block`, `no-marker`, `error` or `incomplete`.
    pub end: &'static str,
}

/// The rootfs: a split image's second file, or the `rootfs/` tree / `rootfs.img` of a unified one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootfsReport {
    /// `tree` (rootfs/ entries), `squashfs`, `qcow2`, a tarball compression, or `unknown`.
    pub format: String,
    /// Entries and data bytes of a tarball rootfs (or of the unified image's `rootfs/`).
    pub entries: Option<u64>,
    pub bytes: Option<u64>,
    pub squashfs: Option<Squashfs>,
    pub qcow2: Option<Qcow2>,
}

/// Everything lxdimg learned from one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// LXD's fingerprint: 64 lowercase hex (null when reading stopped early, `--quick`).
    pub fingerprint: Option<String>,
    /// The first 12 characters, as `lxc image list` shows.
    pub short_fingerprint: Option<String>,
    pub format: ImageFormat,
    pub files: Vec<FileReport>,
    #[serde(rename = "type")]
    pub image_type: Option<ImageType>,
    /// The canonical name LXD 5.0 stores (`x86_64` for `amd64`); null if LXD cannot resolve it.
    pub architecture: Option<String>,
    pub verdicts: Verdicts,
    pub metadata: Option<MetadataReport>,
    pub templates: Vec<TemplateReport>,
    pub findings: Vec<Finding>,
    /// Compressed bytes consumed when the `lxd-5.0` verdict became known, rounded up to 64 KiB
    /// (or the file size); for split images, an offset in the metadata file.
    pub verdict_offset: Option<u64>,
    /// Whether every byte was read (false after `--quick`).
    pub complete: bool,
    pub tar: Option<TarSummary>,
    pub rootfs: Option<RootfsReport>,
    pub os_release: Option<OsRelease>,
}

impl Report {
    /// Findings of the given severity.
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2016-03-15T11:10:00Z`); `None` outside years 0..=9999.
pub fn rfc3339(t: i64) -> Option<String> {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(1458040200).unwrap(), "2016-03-15T11:10:00Z");
        assert_eq!(super::rfc3339(-5).unwrap(), "1969-12-31T23:59:55Z");
        assert_eq!(
            super::rfc3339(253402300799).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(super::rfc3339(253402300800), None);
        assert_eq!(
            super::rfc3339(-62135596801).unwrap(),
            "0000-12-31T23:59:59Z"
        );
    }
}

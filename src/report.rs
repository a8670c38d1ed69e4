//! The one `Report` shape shared by the CLI (`--json`), the page and the edge worker.

pub use crate::codes::{FindingCode, Severity};
use crate::detect::Format;
use crate::rootfs::{OsRelease, Qcow2, Squashfs};
use crate::yaml::Template;
use serde::Serialize;
use std::collections::BTreeMap;

/// `unified` (one tarball) or `split` (metadata tarball + rootfs file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Unified,
    Split,
}

/// LXD's instance type for the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Verdict {
    /// `true`/`false` as the target decides; `null` when lxdimg cannot judge (see `reason`).
    pub accepted: Option<bool>,
    /// The error the import fails with, word for word (without the CLI's `Error: `): only LXD's
    /// or Incus's own words, never lxdimg's.
    pub error: Option<String>,
    /// Why lxdimg cannot judge (present only when `accepted` is null).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub reason: Option<String>,
    /// Whether `lxc init`/`lxc launch` of the imported image would then succeed on the host.
    pub creatable: Creatable,
    /// The real daemon build this target's verdicts are checked against by lxdimg's tests; null
    /// when they are reproduced from the source code only.
    pub checked_against: Option<&'static str>,
    /// The canonical architecture name this target stores, if it resolves `architecture`.
    pub architecture: Option<&'static str>,
}

impl Verdict {
    pub fn is_accepted(&self) -> bool {
        self.accepted == Some(true)
    }
}

/// Why an instance cannot be created (`ok: false`), or why that cannot be known (`ok: null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum CreatableCode {
    DecodeError,
    TrailingData,
    TarError,
    SquashfsInvalid,
    Qcow2Invalid,
    RootfsUnsupported,
    Architecture,
    /// `ok: null`: the import is refused.
    ImportRejected,
    /// `ok: null`: lxdimg cannot judge the import.
    ImportNotJudged,
    /// `ok: null`: reading stopped early (`--quick`).
    NotChecked,
    /// `ok: null`: virtual-machine images need QEMU/KVM on the host.
    VirtualMachine,
    /// `ok: null`: the host architecture is unknown.
    HostUnknown,
    /// `ok: null`: lxdimg stopped decoding a file at its expansion limits, so the rest of the
    /// stream (and what unpacking it would write) was not checked.
    DecompressionBomb,
}

/// Whether an instance can be created from the image (LXD unpacks it whole at that point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Creatable {
    /// `true`/`false`, or `null` when it cannot be known (say why in `error`).
    pub ok: Option<bool>,
    /// What fails, as LXD's unpack reports it (or why it cannot be known).
    pub error: Option<String>,
    /// Failure class, or why it cannot be known.
    pub code: Option<CreatableCode>,
}

impl Creatable {
    pub fn yes() -> Creatable {
        Creatable {
            ok: Some(true),
            error: None,
            code: None,
        }
    }
    pub fn no(code: CreatableCode, error: String) -> Creatable {
        Creatable {
            ok: Some(false),
            error: Some(error),
            code: Some(code),
        }
    }
    pub fn unknown(code: CreatableCode, why: String) -> Creatable {
        Creatable {
            ok: None,
            error: Some(why),
            code: Some(code),
        }
    }
}

/// Verdicts per target, in the order of [`crate::verdict::TARGETS`]; serialised as an object
/// keyed by the target's key (`"lxd-5.0"`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicts(pub(crate) Vec<(&'static str, Verdict)>);

impl Verdicts {
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Verdict)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }
    /// The verdict of the target with this key.
    pub fn get(&self, key: &str) -> Option<&Verdict> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    /// The verdict of the reference target ([`crate::verdict::REFERENCE`]).
    pub fn reference(&self) -> &Verdict {
        &self[crate::verdict::REFERENCE.key]
    }
}

impl std::ops::Index<&str> for Verdicts {
    type Output = Verdict;
    fn index(&self, key: &str) -> &Verdict {
        self.get(key)
            .unwrap_or_else(|| panic!("no verdict target {key:?}"))
    }
}

impl Serialize for Verdicts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Which file of the image: the unified tarball, or the metadata or rootfs file of a split image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    Unified,
    Metadata,
    Rootfs,
}

impl FileRole {
    pub fn as_str(self) -> &'static str {
        match self {
            FileRole::Unified => "unified",
            FileRole::Metadata => "metadata",
            FileRole::Rootfs => "rootfs",
        }
    }
    /// How messages name the file.
    pub fn noun(self) -> &'static str {
        match self {
            FileRole::Unified => "image",
            FileRole::Metadata => "metadata file",
            FileRole::Rootfs => "rootfs file",
        }
    }
}

impl std::fmt::Display for FileRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file that matched none of the formats, or had no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Undetected {
    Empty,
    Unknown,
}

/// A file's format as detected (`gzip`, …, `vmdk`), or `empty`/`unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(untagged)]
pub enum Compression {
    Detected(Format),
    Undetected(Undetected),
}

impl Compression {
    pub fn of(size: u64, format: Option<Format>) -> Compression {
        match (size, format) {
            (0, _) => Compression::Undetected(Undetected::Empty),
            (_, Some(f)) => Compression::Detected(f),
            (_, None) => Compression::Undetected(Undetected::Unknown),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Detected(f) => f.name(),
            Compression::Undetected(Undetected::Empty) => "empty",
            Compression::Undetected(Undetected::Unknown) => "unknown",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct FileReport {
    pub role: FileRole,
    pub name: Option<String>,
    #[cfg_attr(test, ts(type = "number"))]
    pub size: u64,
    /// SHA-256 of the file (null when reading stopped early).
    pub sha256: Option<String>,
    pub compression: Compression,
    /// Decoded (tar stream) bytes, for tarballs.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub decoded_size: Option<u64>,
}

/// `metadata.yaml` as LXD 5.0 decodes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MetadataReport {
    /// As written (LXD shows the canonical name, see `Report::architecture`).
    pub architecture: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub creation_date: i64,
    #[cfg_attr(test, ts(type = "number"))]
    pub expiry_date: i64,
    /// `creation_date` as an RFC 3339 UTC time, as `lxc image info` shows it.
    pub created: Option<String>,
    pub expires: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub templates: BTreeMap<String, Option<Template>>,
}

/// One template rule, joined with its file in `templates/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
    #[cfg_attr(test, ts(type = "number | null"))]
    pub size: Option<u64>,
    /// The template text (up to 1 MiB, lossy UTF-8; 4 MiB over all templates).
    pub text: Option<String>,
    pub text_truncated: bool,
}

/// Something lxdimg noticed, beyond (or explaining) LXD's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Finding {
    /// Stable identifier (see the README's table).
    pub code: FindingCode,
    pub severity: Severity,
    /// What is wrong and where.
    pub message: String,
    /// The file concerned.
    pub file: Option<FileRole>,
    /// Byte offset: in the compressed file, unless the message says "decoded".
    #[cfg_attr(test, ts(type = "number | null"))]
    pub offset: Option<u64>,
    /// Archive entry concerned.
    pub entry: Option<String>,
}

/// How the tar stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum TarEnd {
    /// Two zero blocks: a proper end-of-archive marker.
    Marker,
    /// One zero block, then the end of the stream.
    LoneZeroBlock,
    /// The stream ended on a header boundary without an end-of-archive marker.
    NoMarker,
    /// The walk failed (see the `tar-error` finding).
    Error,
    /// The stream ended inside an entry, or reading stopped early.
    Incomplete,
}

/// Tar walk counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TarSummary {
    #[cfg_attr(test, ts(type = "number"))]
    pub entries: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub bytes: u64,
    pub end: TarEnd,
}

/// The `rootfs/` tree inside a unified tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Unpacked {
    Tree,
}

/// A rootfs's format: a file's (`squashfs`, `qcow2`, a tarball compression, `empty`, `unknown`)
/// or `tree` (the `rootfs/` entries of a unified image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(untagged)]
pub enum RootfsFormat {
    File(Compression),
    Unpacked(Unpacked),
}

/// The rootfs: a split image's second file, or the `rootfs/` tree / `rootfs.img` of a unified one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RootfsReport {
    pub format: RootfsFormat,
    /// Entries and data bytes of a tarball rootfs (or of the unified image's `rootfs/`).
    #[cfg_attr(test, ts(type = "number | null"))]
    pub entries: Option<u64>,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub bytes: Option<u64>,
    pub squashfs: Option<Squashfs>,
    pub qcow2: Option<Qcow2>,
}

/// Everything lxdimg learned from one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
    #[cfg_attr(test, ts(type = "Verdicts"))]
    pub verdicts: Verdicts,
    pub metadata: Option<MetadataReport>,
    pub templates: Vec<TemplateReport>,
    pub findings: Vec<Finding>,
    /// Compressed bytes consumed when the `lxd-5.0` verdict became known, rounded up to 64 KiB
    /// (or the file size); for split images, an offset in the metadata file.
    #[cfg_attr(test, ts(type = "number | null"))]
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

/// The UTC calendar date and time of a Unix time: `(year, month, day, seconds into the day)`,
/// for any `i64` (proleptic Gregorian; Howard Hinnant's `civil_from_days`).
pub fn civil(t: i64) -> (i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d, secs)
}

/// Formats Unix seconds as RFC 3339 UTC (`2016-03-15T11:10:00Z`); `None` outside years 0..=9999.
pub fn rfc3339(t: i64) -> Option<String> {
    let (y, m, d, secs) = civil(t);
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

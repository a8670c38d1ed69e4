//! The finding codes and severities: stable identifiers that the Report, the page and the edge
//! worker share (serialised as the kebab-case strings of the README's table).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

macro_rules! finding_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal, $severity:ident;)*) => {
        /// What a finding is about. Each code has one meaning and a usual severity (the README's
        /// table); `trailing-data` is `info` when the bytes are all zeros.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[cfg_attr(test, derive(ts_rs::TS))]
        pub enum FindingCode {
            $($(#[$doc])* #[serde(rename = $text)] $variant,)*
        }

        impl FindingCode {
            /// Every code, in the README's order.
            pub const ALL: &'static [FindingCode] = &[$(FindingCode::$variant,)*];

            /// The code as the Report spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingCode::$variant => $text,)*
                }
            }

            /// The severity a finding of this code has unless its builder says otherwise.
            pub fn severity(self) -> Severity {
                match self {
                    $(FindingCode::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

finding_codes! {
    /// A file is empty.
    EmptyFile = "empty-file", Error;
    /// A file is none of the formats LXD reads.
    UnknownFormat = "unknown-format", Error;
    /// A plain tar whose first bytes match an earlier magic in LXD's table.
    LxdMisdetectsFormat = "lxd-misdetects-format", Error;
    /// An uncompressed tar without the `ustar` magic.
    V7Tar = "v7-tar", Error;
    /// The compressed stream is corrupt or truncated.
    DecodeError = "decode-error", Error;
    /// Decoding stopped at the expansion limits (decoded size and ratio).
    DecompressionBomb = "decompression-bomb", Error;
    /// Bytes after the compressed stream.
    TrailingData = "trailing-data", Warning;
    /// A malformed or truncated tar stream.
    TarError = "tar-error", Error;
    /// No end-of-archive marker.
    TarNoEndMarker = "tar-no-end-marker", Warning;
    /// A single zero block at the end.
    TarLoneZeroBlock = "tar-lone-zero-block", Info;
    /// Several `metadata.yaml` entries.
    MetadataDuplicate = "metadata-duplicate", Warning;
    /// A `metadata.yaml` LXD never reads.
    MetadataIgnored = "metadata-ignored", Warning;
    /// `metadata.yaml` is a link or special file.
    MetadataNotRegular = "metadata-not-regular", Error;
    /// `metadata.yaml` comes after many rootfs entries.
    MetadataLate = "metadata-late", Warning;
    /// Both `rootfs/` and `rootfs.img`.
    RootfsAndDisk = "rootfs-and-disk", Warning;
    /// A date LXD's database cannot read back, or before 1970.
    DateOutOfRange = "date-out-of-range", Error;
    /// `expiry_date` before `creation_date`.
    ExpiryBeforeCreation = "expiry-before-creation", Warning;
    /// `expiry_date` in the past (against the caller's `now`).
    Expired = "expired", Warning;
    /// No `properties:` map.
    PropertiesMissing = "properties-missing", Warning;
    /// No `description`, `os` or `release` property.
    PropertyMissing = "property-missing", Warning;
    /// A template rule names a file that is not in the image.
    TemplateFileMissing = "template-file-missing", Error;
    /// A template rule names no file.
    TemplateNameMissing = "template-name-missing", Error;
    /// A template rule names a path, not a file name.
    TemplateNameInvalid = "template-name-invalid", Error;
    /// A trigger LXD never fires.
    TemplateTriggerUnknown = "template-trigger-unknown", Warning;
    /// A rule with no triggers.
    TemplateNoTrigger = "template-no-trigger", Warning;
    /// A relative target path.
    TemplatePathNotAbsolute = "template-path-not-absolute", Warning;
    /// A null rule.
    TemplateEmpty = "template-empty", Warning;
    /// A template file that is a link or special file.
    TemplateFileNotRegular = "template-file-not-regular", Warning;
    /// A file in `templates/` no rule uses.
    TemplateFileUnused = "template-file-unused", Info;
    /// A template pongo2 refuses to parse (LXD fails the instance's start when it applies it).
    TemplateSyntax = "template-syntax", Error;
    /// `os`/`release` disagree with the rootfs's os-release.
    OsReleaseMismatch = "os-release-mismatch", Warning;
    /// The rootfs is no format LXD unpacks.
    RootfsUnsupported = "rootfs-unsupported", Error;
    /// A qcow2 disk given as a container rootfs.
    RootfsQcow2AsContainer = "rootfs-qcow2-as-container", Error;
    /// A squashfs given as a virtual-machine disk.
    RootfsSquashfsAsVm = "rootfs-squashfs-as-vm", Error;
    /// A tarball given as a virtual-machine disk.
    RootfsTarballAsVm = "rootfs-tarball-as-vm", Error;
    /// A unified VM image whose `rootfs.img` is not qcow2.
    VmDiskNotQcow2 = "vm-disk-not-qcow2", Error;
    /// Squashfs superblock or table problems.
    SquashfsInvalid = "squashfs-invalid", Error;
    /// qcow2 header problems.
    Qcow2Invalid = "qcow2-invalid", Error;
    /// A rootfs tarball with no entries.
    RootfsEmpty = "rootfs-empty", Warning;
    /// The two files of a split image were given in the wrong order.
    SplitFilesSwapped = "split-files-swapped", Error;
    /// Metadata holding control characters (escape sequences for the terminal of `lxc image list`).
    ControlCharacters = "control-characters", Warning;
    /// Both files of a split image hold `metadata.yaml` (the metadata tarball given twice).
    SplitMetadataTwice = "split-metadata-twice", Error;
    /// Reading stopped early (`--quick`).
    Quick = "quick", Info;
}

impl FindingCode {
    /// Whether an instance created from the image fails at its first start (template rules
    /// LXD cannot apply), although `lxc init` succeeds.
    pub fn breaks_first_start(self) -> bool {
        matches!(
            self,
            FindingCode::TemplateFileMissing
                | FindingCode::TemplateNameMissing
                | FindingCode::TemplateNameInvalid
                | FindingCode::TemplateSyntax
        )
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for FindingCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

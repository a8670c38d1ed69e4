// Generated from the Rust types by `cargo test` (src/tsgen.rs); do not edit.

/** The key of a verdict target (`crate::verdict::TARGETS`). */
export type TargetKey = "lxd-5.0" | "lxd-5.21" | "lxd-6" | "incus-6.0" | "incus-6" | "incus-7";

/** One verdict per target, in the order of `targets()`. */
export type Verdicts = {
  /** LXD 5.0 (5.0.2, Debian 12) */
  "lxd-5.0": Verdict;
  /** LXD 5.21 */
  "lxd-5.21": Verdict;
  /** LXD 6 */
  "lxd-6": Verdict;
  /** Incus 6.0 (6.0.4, Debian 12 backports) */
  "incus-6.0": Verdict;
  /** Incus 6 (upstream) */
  "incus-6": Verdict;
  /** Incus 7 */
  "incus-7": Verdict;
};

/** A verdict target as `targets()` lists it. */
export type TargetInfo = { key: TargetKey; label: string };

export type Report = { 
/**
 * LXD's fingerprint: 64 lowercase hex (null when reading stopped early, `--quick`).
 */
fingerprint: string | null, 
/**
 * The first 12 characters, as `lxc image list` shows.
 */
short_fingerprint: string | null, format: ImageFormat, files: Array<FileReport>, type: ImageType | null, 
/**
 * The canonical name LXD 5.0 stores (`x86_64` for `amd64`); null if LXD cannot resolve it.
 */
architecture: string | null, verdicts: Verdicts, metadata: MetadataReport | null, templates: Array<TemplateReport>, findings: Array<Finding>, 
/**
 * Compressed bytes consumed when the `lxd-5.0` verdict became known, rounded up to 64 KiB
 * (or the file size); for split images, an offset in the metadata file.
 */
verdict_offset: number | null, 
/**
 * Whether every byte was read (false after `--quick`).
 */
complete: boolean, tar: TarSummary | null, rootfs: RootfsReport | null, os_release: OsRelease | null, };

export type FileReport = { role: FileRole, name: string | null, size: number, 
/**
 * SHA-256 of the file (null when reading stopped early).
 */
sha256: string | null, compression: Compression, 
/**
 * Decoded (tar stream) bytes, for tarballs.
 */
decoded_size: number | null, };

export type FileRole = "unified" | "metadata" | "rootfs";

export type Compression = Format | Undetected;

export type Undetected = "empty" | "unknown";

export type Format = "gzip" | "bzip2" | "xz" | "lzma" | "zstd" | "tar" | "squashfs" | "qcow2" | "lz4" | "vmdk";

export type ImageFormat = "unified" | "split";

export type ImageType = "container" | "virtual-machine";

export type Verdict = { 
/**
 * `true`/`false` as the target decides; `null` when lxdimg cannot judge (see `reason`).
 */
accepted: boolean | null, 
/**
 * The error the import fails with, word for word (without the CLI's `Error: `): only LXD's
 * or Incus's own words, never lxdimg's.
 */
error: string | null, 
/**
 * Why lxdimg cannot judge (present only when `accepted` is null).
 */
reason?: string, 
/**
 * Whether `lxc init`/`lxc launch` of the imported image would then succeed on the host.
 */
creatable: Creatable, 
/**
 * The real daemon build this target's verdicts are checked against by lxdimg's tests; null
 * when they are reproduced from the source code only.
 */
checked_against: string | null, 
/**
 * The canonical architecture name this target stores, if it resolves `architecture`.
 */
architecture: string | null, };

export type Creatable = { 
/**
 * `true`/`false`, or `null` when it cannot be known (say why in `error`).
 */
ok: boolean | null, 
/**
 * What fails, as LXD's unpack reports it (or why it cannot be known).
 */
error: string | null, 
/**
 * Failure class, or why it cannot be known.
 */
code: CreatableCode | null, };

export type CreatableCode = "decode-error" | "trailing-data" | "tar-error" | "squashfs-invalid" | "qcow2-invalid" | "rootfs-unsupported" | "architecture" | "import-rejected" | "import-not-judged" | "not-checked" | "virtual-machine" | "host-unknown" | "decompression-bomb";

export type MetadataReport = { 
/**
 * As written (LXD shows the canonical name, see `Report::architecture`).
 */
architecture: string, creation_date: number, expiry_date: number, 
/**
 * `creation_date` as an RFC 3339 UTC time, as `lxc image info` shows it.
 */
created: string | null, expires: string | null, properties: { [key in string]?: string }, templates: { [key in string]?: Template | null }, };

export type Template = { when: Array<string> | null, create_only: boolean, template: string, properties: { [key in string]?: string } | null, };

export type TemplateReport = { 
/**
 * Target path in the instance (the key in `metadata.yaml`).
 */
path: string, 
/**
 * Triggers.
 */
when: Array<string>, 
/**
 * File name under `templates/`.
 */
template: string, create_only: boolean, properties: { [key in string]?: string }, 
/**
 * Whether `templates/<template>` is in the image.
 */
present: boolean, size: number | null, 
/**
 * The template text (up to 1 MiB, lossy UTF-8; 4 MiB over all templates).
 */
text: string | null, text_truncated: boolean, };

export type Finding = { 
/**
 * Stable identifier (see the README's table).
 */
code: FindingCode, severity: Severity, 
/**
 * What is wrong and where.
 */
message: string, 
/**
 * The file concerned.
 */
file: FileRole | null, 
/**
 * Byte offset: in the compressed file, unless the message says "decoded".
 */
offset: number | null, 
/**
 * Archive entry concerned.
 */
entry: string | null, };

export type FindingCode = "empty-file" | "unknown-format" | "lxd-misdetects-format" | "v7-tar" | "decode-error" | "decompression-bomb" | "trailing-data" | "tar-error" | "tar-no-end-marker" | "tar-lone-zero-block" | "metadata-duplicate" | "metadata-ignored" | "metadata-not-regular" | "metadata-late" | "rootfs-and-disk" | "date-out-of-range" | "expiry-before-creation" | "expired" | "properties-missing" | "property-missing" | "template-file-missing" | "template-name-missing" | "template-name-invalid" | "template-trigger-unknown" | "template-no-trigger" | "template-path-not-absolute" | "template-empty" | "template-file-not-regular" | "template-file-unused" | "template-syntax" | "os-release-mismatch" | "rootfs-unsupported" | "rootfs-qcow2-as-container" | "rootfs-squashfs-as-vm" | "rootfs-tarball-as-vm" | "vm-disk-not-qcow2" | "squashfs-invalid" | "qcow2-invalid" | "rootfs-empty" | "split-files-swapped" | "control-characters" | "split-metadata-twice" | "quick";

export type Severity = "error" | "warning" | "info";

export type TarSummary = { entries: number, bytes: number, end: TarEnd, };

export type TarEnd = "marker" | "lone-zero-block" | "no-marker" | "error" | "incomplete";

export type RootfsReport = { format: RootfsFormat, 
/**
 * Entries and data bytes of a tarball rootfs (or of the unified image's `rootfs/`).
 */
entries: number | null, bytes: number | null, squashfs: Squashfs | null, qcow2: Qcow2 | null, };

export type RootfsFormat = Compression | Unpacked;

export type Unpacked = "tree";

export type Squashfs = { version: string, compressor: string, block_size: number, inode_count: number, bytes_used: number, mkfs_time: number, };

export type Qcow2 = { version: number, virtual_size: number, cluster_size: number, backing_file: boolean, };

export type OsRelease = { id: string | null, name: string | null, version_id: string | null, version_codename: string | null, pretty_name: string | null, };


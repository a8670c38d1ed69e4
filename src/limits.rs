//! Every size and count limit the core enforces, in one place.
//!
//! The core never allocates in proportion to the input except through these limits, so the memory an
//! inspection needs is bounded by their sum plus the decoder window of the stream being read
//! (see [`MAX_DECODER_WINDOW`]).

/// Bytes of one `metadata.yaml` entry that are kept. LXD 5.0.2 (Debian build), LXD ≥ 5.21.5 and
/// Incus ≥ 7 cap the YAML at 1 MiB; older versions read it whole. 4 MiB is kept so the uncapped
/// targets can still be judged on an oversized file; beyond that those targets get an lxdimg error.
pub const METADATA_YAML_KEEP: usize = 4 << 20;

/// The 1 MiB `metadata.yaml` cap of the LXD/Incus versions that have one (1,048,576 bytes is fine,
/// one byte more fails).
pub const LXD_METADATA_YAML_CAP: usize = 1 << 20;

/// Bytes of all `metadata.yaml` entries kept together (16 entries of 4 MiB would be 64 MiB). A
/// later entry that no longer fits whole is not judged for the targets without a cap.
pub const METADATA_YAML_KEEP_TOTAL: usize = 8 << 20;

/// `metadata.yaml` entries kept before the point where LXD stops reading (LXD decodes each one on
/// top of the previous one). Further ones only produce a finding.
pub const METADATA_ENTRIES_MAX: usize = 16;

/// Bytes of one `templates/*` file that are kept (for display, the syntax check and the
/// preview); a longer template is shown cut and not checked.
pub const TEMPLATE_KEEP: usize = 1 << 20;

/// Total bytes of template files kept for display, over all templates.
pub const TEMPLATES_KEEP_TOTAL: usize = 4 << 20;

/// Files under `templates/` whose name (and first bytes) are kept, so that rules can be matched
/// with them. A `metadata.yaml` LXD reads (1 MiB) holds fewer rules than this.
pub const TEMPLATE_FILES_MAX: usize = 100_000;

/// Bytes of the names of those files, together. Past either limit, a rule whose file was not
/// kept is not reported as missing.
pub const TEMPLATE_NAMES_KEEP_TOTAL: usize = 4 << 20;

/// Bytes kept of `rootfs/etc/os-release` and of its usual symlink target.
pub const OS_RELEASE_KEEP: usize = 64 << 10;

/// Longest entry name (GNU long name or PAX `path`) or link target, in bytes. GNU tar itself has no
/// limit; Linux paths cannot exceed 4096 bytes, so anything longer is reported as malformed.
pub const NAME_MAX: usize = 64 << 10;

/// Largest PAX extended header record block that is parsed.
pub const PAX_HEADER_MAX: usize = 1 << 20;

/// Entries walked in one tarball before the walk gives up (the fingerprint is still computed).
pub const ENTRIES_MAX: u64 = 50_000_000;

/// Default of [`crate::Options::max_decoded_bytes`]: decoded bytes of one compressed file before
/// the expansion ratio is checked. A 304 MB Debian rootfs image decodes to 304 MB.
pub const DEFAULT_MAX_DECODED_BYTES: u64 = 1 << 30;

/// Default of [`crate::Options::max_expansion_ratio`]: decoded bytes per compressed byte read
/// beyond which a file that has also passed [`DEFAULT_MAX_DECODED_BYTES`] is a decompression bomb.
/// Real root filesystems compress 3–5:1 (xz -9 of a Debian rootfs: about 4:1); only runs of
/// identical bytes (empty disk space, zero padding) compress past 100:1.
pub const DEFAULT_MAX_EXPANSION_RATIO: u64 = 100;

/// Largest decoder window (xz/lzma dictionary, zstd window) accepted. xz -9 uses 64 MiB and
/// zstd --long=31 2 GiB; an image declaring more than this is reported instead of decoded.
pub const MAX_DECODER_WINDOW: u64 = 512 << 20;

/// Longest gzip member header (with FNAME/FCOMMENT/FEXTRA) that is parsed.
pub const GZIP_HEADER_MAX: usize = 1 << 20;

/// Size of the decoder output buffer handed to the tar walk.
pub const DECODE_CHUNK: usize = 128 << 10;

/// Compressed input reaches the decoders in pieces of this size, aligned to absolute offsets, so
/// their output and error offsets do not depend on how the caller chunks its pushes. Divides
/// [`VERDICT_GRANULE`].
pub const DECODE_PIECE: usize = 16 << 10;

/// Compressed input is fed to the decoders in pieces that never cross a multiple of this many
/// bytes; `verdict_offset` is reported at this granularity, which keeps it independent of how the
/// caller chunks its pushes.
pub const VERDICT_GRANULE: u64 = 64 << 10;

/// Bytes of a split rootfs (or unified `rootfs.img`) kept to read squashfs/qcow2 headers.
pub const ROOTFS_HEADER_KEEP: usize = 512;

/// Nodes (after alias expansion) decoded from one `metadata.yaml` before giving up. yaml.v2 bounds
/// alias expansion by ratio; this caps the absolute work as well.
pub const YAML_NODES_MAX: u64 = 10_000_000;

/// Nodes of the YAML tree built from one `metadata.yaml` (about 100 bytes each). A real one has a
/// few dozen; 20 000 template rules are 140 000. Past this the verdict is "not judged".
pub const YAML_TREE_NODES_MAX: usize = 200_000;

/// Open YAML collections in `metadata.yaml`: Go's YAML scanner (libyaml's `max_indents` and
/// `max_flow_level`) fails past 10000 levels, and so does lxdimg.
pub const YAML_DEPTH_MAX: usize = 10_000;

/// Bytes of a squashfs rootfs's metadata tables (inode table to the end) kept to check that its
/// metadata blocks decode, as unsquashfs will. A 300 MB Debian rootfs needs about 2 MiB.
pub const SQUASHFS_TABLES_KEEP: usize = 64 << 20;

/// Bytes of squashfs metadata decompressed (and cached) while checking those tables. Blocks of
/// 8 KiB can be stored in a few bytes each, so the kept tables alone do not bound this; a
/// 300 MB Debian rootfs decompresses to a few MiB.
pub const SQUASHFS_DECODED_MAX: usize = 32 << 20;

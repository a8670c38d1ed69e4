//! Read-only views of what the inspector learned: each finished file, and the image as a whole.
//!
//! Findings, the creatability verdict and the Report are all built from these views, never from
//! the state machine itself, so each of them can be tested on views built by hand.

use crate::decode::{Bomb, DecodeError, Trailing};
use crate::detect::{detect_lxd, Detection, Format, HEADER_LEN};
use crate::report::{FileRole, ImageType};
use crate::tar::{TarEnd, TarError};
use crate::verdict::{LxdWalk, MetaDoc, SplitRootfs};
use std::collections::BTreeMap;

/// The first bytes of a qcow2 image.
pub const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// Whether these first bytes are a qcow2 image's.
pub fn is_qcow2(head: &[u8]) -> bool {
    head.starts_with(QCOW2_MAGIC)
}

/// An archive entry whose data was kept (up to a limit).
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// Data size according to the header.
    pub size: u64,
    /// The kept data (a prefix of the entry's).
    pub data: Vec<u8>,
    pub regular: bool,
}

impl Kept {
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < self.size
    }
}

/// What the tar walk of one file collected, with LXD's walk rules applied.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// `metadata.yaml` entries LXD decodes (those before its stop, up to the limit).
    pub docs: Vec<MetaDoc>,
    /// `metadata.yaml` entries LXD never reads (after its stop, or over the count limit), with
    /// their decoded offsets.
    pub ignored_meta: Vec<(String, u64)>,
    /// Rootfs entries seen before the first `metadata.yaml`.
    pub root_before_meta: u64,
    /// The instance type LXD takes from the entries it reads (the last one before its stop wins).
    pub root: Option<ImageType>,
    /// Whether LXD has stopped reading (it has seen `metadata.yaml` and the rootfs).
    pub lxd_stopped: bool,
    /// `templates/*` files by name.
    pub templates: BTreeMap<String, Kept>,
    /// Files under `templates/` not in `templates` (over `TEMPLATE_FILES_MAX` or
    /// `TEMPLATE_NAMES_KEEP_TOTAL`).
    pub templates_unlisted: u64,
    /// `etc/os-release`, its link target if it is a symlink, and `usr/lib/os-release`.
    pub os_etc: Option<Kept>,
    pub os_etc_link: Option<Vec<u8>>,
    pub os_usr: Option<Kept>,
    /// Rootfs entries and their data bytes.
    pub root_entries: u64,
    pub root_bytes: u64,
    pub saw_container_root: bool,
    pub saw_vm_root: bool,
    /// The first bytes of a unified VM image's `rootfs.img`.
    pub root_img: Option<Kept>,
    /// The first member whose name has a `..` component (GNU tar refuses to extract it).
    pub dotdot: Option<String>,
    /// A split image's rootfs tarball holds a `metadata.yaml` (the files may be swapped).
    pub metadata_in_rootfs: bool,
}

/// The tar stream of a file that was decoded as a tarball.
#[derive(Debug, Clone, Copy)]
pub struct TarView<'a> {
    pub entries: u64,
    pub data_bytes: u64,
    /// Decoded bytes walked.
    pub offset: u64,
    pub end: Option<TarEnd>,
    pub error: Option<&'a TarError>,
}

/// One file of the image, once read.
#[derive(Debug, Clone, Copy)]
pub struct FileView<'a> {
    pub role: FileRole,
    pub name: Option<&'a str>,
    pub size: u64,
    /// Reading stopped before the end of the file (`--quick`).
    pub partial: bool,
    /// The format lxdimg detected (`None`: none it knows).
    pub format: Option<Format>,
    /// The first bytes (up to [`crate::limits::ROOTFS_HEADER_KEEP`]).
    pub head: &'a [u8],
    /// The tar walk, for a file decoded as a tarball.
    pub tar: Option<TarView<'a>>,
    pub decode_error: Option<&'a DecodeError>,
    /// Decoding stopped at the expansion limits.
    pub bomb: Option<Bomb>,
    pub trailing: Option<Trailing>,
    pub collected: &'a Collected,
    /// A squashfs rootfs's metadata tables as kept (`None`: not a squashfs, or not kept).
    pub squashfs_tables: Option<&'a [u8]>,
}

impl FileView<'_> {
    /// The first bytes LXD reads to detect the format.
    pub fn detect_head(&self) -> &[u8] {
        &self.head[..self.head.len().min(HEADER_LEN)]
    }

    /// How LXD detects the format of this file.
    pub fn lxd_detection(&self) -> Detection {
        detect_lxd(self.head)
    }

    /// The expansion limits stopped decoding before LXD's walk of this file was over: what LXD
    /// would make of the rest is unknown.
    pub fn walk_cut(&self) -> Option<Bomb> {
        let bomb = self.bomb?;
        let tar = self.tar?;
        if tar.end.is_some() || tar.error.is_some() {
            return None; // the walk was over (end marker or error) before the limit
        }
        let c = self.collected;
        let reading_metadata = c.docs.last().is_some_and(|d| !d.complete);
        (!c.lxd_stopped || reading_metadata).then_some(bomb)
    }

    /// Problems in a squashfs rootfs's metadata blocks (empty if none, or if not all were read).
    pub fn squashfs_table_problems(&self) -> Vec<String> {
        match self.squashfs_tables {
            Some(kept) if !self.partial => crate::rootfs::squashfs_tables(self.head, kept),
            _ => Vec::new(),
        }
    }
}

/// The image: one file (unified) or two (split), and what follows from them together.
#[derive(Debug, Clone)]
pub struct ImageView<'a> {
    pub files: Vec<FileView<'a>>,
    /// The type the uploader declares for a split rootfs (`None`: from the content).
    pub split_type: Option<ImageType>,
}

impl<'a> ImageView<'a> {
    pub fn first(&self) -> &FileView<'a> {
        &self.files[0]
    }

    /// The rootfs file of a split image.
    pub fn rootfs_file(&self) -> Option<&FileView<'a>> {
        self.files.get(1)
    }

    pub fn is_split(&self) -> bool {
        self.files.len() > 1
    }

    /// The instance type: for a split image, the declared type or the rootfs's kind (qcow2 is a
    /// virtual machine); for a unified one, what LXD took from its entries (`None` if neither).
    pub fn image_type(&self) -> Option<ImageType> {
        match self.rootfs_file() {
            Some(r) => Some(
                self.split_type
                    .unwrap_or(if r.format == Some(Format::Qcow2) {
                        ImageType::VirtualMachine
                    } else {
                        ImageType::Container
                    }),
            ),
            None => self.first().collected.root,
        }
    }

    /// What LXD's import walk saw, for the import verdicts.
    pub fn lxd_walk(&self) -> (LxdWalk<'_>, Option<SplitRootfs<'_>>) {
        let f = self.first();
        let walk = LxdWalk {
            head: f.detect_head(),
            decoded_as: if f.tar.is_some() {
                f.format
            } else {
                f.format.filter(|x| !x.is_tarball())
            },
            docs: &f.collected.docs,
            root: f.collected.root,
            cut: f.walk_cut().map(|b| b.describe(f.role.noun())),
            tar_error: if f.collected.lxd_stopped {
                None
            } else {
                f.tar.and_then(|t| t.error)
            },
        };
        let split = self.rootfs_file().map(|r| SplitRootfs {
            head: r.detect_head(),
            client_check: self.split_type.is_none(),
        });
        (walk, split)
    }
}

//! The tar visitor: applies LXD's walk rules and keeps the few entries worth keeping.

use crate::limits::{
    METADATA_ENTRIES_MAX, METADATA_YAML_KEEP, METADATA_YAML_KEEP_TOTAL, OS_RELEASE_KEEP,
    ROOTFS_HEADER_KEEP, TEMPLATES_KEEP_TOTAL, TEMPLATE_FILES_MAX, TEMPLATE_KEEP,
    TEMPLATE_NAMES_KEEP_TOTAL,
};
use crate::report::ImageType;
use crate::tar::{EntryHeader, Visitor};
use crate::verdict::{self, MetaDoc, REFERENCE};
use crate::view::{Collected, Kept};

/// Where the data of the current entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Metadata(usize),
    Template,
    OsEtc,
    OsUsr,
    RootImg,
}

#[derive(Default)]
pub(super) struct Collector {
    /// The walk of a split image's rootfs tarball (no metadata rules apply).
    rootfs_mode: bool,
    has_meta: bool,
    /// The reference target already fails on the metadata decoded so far.
    early_error: bool,
    cur: Option<Keep>,
    cur_name: String,
    templates_kept: usize,
    template_names_kept: usize,
    metadata_kept: usize,
    pub(super) out: Collected,
}

fn strip_dot(name: &[u8]) -> &[u8] {
    name.strip_prefix(b"./").unwrap_or(name)
}

impl Collector {
    pub(super) fn new(rootfs_mode: bool) -> Collector {
        Collector {
            rootfs_mode,
            ..Default::default()
        }
    }

    fn keep(&mut self, k: Keep, h: &EntryHeader) -> bool {
        let kept = Kept {
            size: h.size,
            data: Vec::new(),
            regular: h.is_regular(),
        };
        let out = &mut self.out;
        match k {
            Keep::OsEtc => {
                if h.is_symlink() {
                    out.os_etc_link = Some(h.link.clone());
                }
                out.os_etc = Some(kept);
            }
            Keep::OsUsr => out.os_usr = Some(kept),
            Keep::RootImg => out.root_img = Some(kept),
            Keep::Template => {
                if out.templates.len() >= TEMPLATE_FILES_MAX
                    || self.template_names_kept + self.cur_name.len() > TEMPLATE_NAMES_KEEP_TOTAL
                {
                    out.templates_unlisted += 1;
                    return false;
                }
                self.template_names_kept += self.cur_name.len();
                out.templates.insert(self.cur_name.clone(), kept);
            }
            Keep::Metadata(_) => {}
        }
        self.cur = Some(k);
        true
    }

    /// A rootfs entry: counted, and os-release kept.
    fn rootfs_entry(&mut self, path: &[u8], h: &EntryHeader) -> bool {
        self.out.root_entries += 1;
        self.out.root_bytes += h.size;
        match path {
            b"etc/os-release" => self.keep(Keep::OsEtc, h),
            b"usr/lib/os-release" => self.keep(Keep::OsUsr, h),
            _ => false,
        }
    }

    /// A `metadata.yaml` entry is complete: LXD decodes it now, and may fail right here.
    fn metadata_decoded(&mut self) {
        if !self.early_error && verdict::decode_docs(&REFERENCE, &self.out.docs).is_err() {
            self.early_error = true;
        }
    }

    /// Whether LXD has read all it will read of this tarball.
    pub(super) fn lxd_settled(&self) -> bool {
        self.early_error || (self.out.lxd_stopped && !matches!(self.cur, Some(Keep::Metadata(_))))
    }
}

impl Visitor for Collector {
    fn entry(&mut self, h: &EntryHeader) -> bool {
        if self.out.dotdot.is_none() && h.name.split(|&b| b == b'/').any(|c| c == b"..") {
            self.out.dotdot = Some(h.name_lossy());
        }
        let name = strip_dot(&h.name);
        self.cur = None;
        if self.rootfs_mode {
            if name == b"metadata.yaml" {
                self.out.metadata_in_rootfs = true;
            }
            return self.rootfs_entry(name, h);
        }
        let mut wanted = false;
        if h.name == b"metadata.yaml" || h.name == b"./metadata.yaml" {
            if self.out.lxd_stopped || self.out.docs.len() >= METADATA_ENTRIES_MAX {
                self.out.ignored_meta.push((h.name_lossy(), h.offset));
            } else {
                self.has_meta = true;
                self.out.docs.push(MetaDoc {
                    name: h.name_lossy(),
                    regular: h.is_regular(),
                    size: h.size,
                    data: Vec::new(),
                    complete: h.size == 0,
                });
                self.cur = Some(Keep::Metadata(self.out.docs.len() - 1));
                wanted = h.size > 0;
                if !wanted {
                    self.metadata_decoded();
                }
            }
        } else if let Some(rest) = name.strip_prefix(b"rootfs/") {
            if !self.out.lxd_stopped {
                self.out.root = Some(ImageType::Container);
            }
            self.out.saw_container_root = true;
            if !self.has_meta {
                self.out.root_before_meta += 1;
            }
            wanted = self.rootfs_entry(rest, h);
        } else if name == b"rootfs.img" && (h.name == b"rootfs.img" || h.name == b"./rootfs.img") {
            if !self.out.lxd_stopped {
                self.out.root = Some(ImageType::VirtualMachine);
            }
            self.out.saw_vm_root = true;
            wanted = self.keep(Keep::RootImg, h);
        } else if let Some(t) = name.strip_prefix(b"templates/") {
            if !t.is_empty() && !t.contains(&b'/') {
                self.cur_name = String::from_utf8_lossy(t).into_owned();
                wanted = self.keep(Keep::Template, h);
            }
        }
        if self.has_meta && self.out.root.is_some() {
            self.out.lxd_stopped = true;
        }
        wanted
    }

    fn data(&mut self, chunk: &[u8]) {
        let add = |buf: &mut Vec<u8>, cap: usize| {
            let room = cap.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
        };
        let out = &mut self.out;
        match self.cur {
            Some(Keep::Metadata(i)) => {
                let doc = &mut out.docs[i].data;
                let before = doc.len();
                let room = METADATA_YAML_KEEP_TOTAL.saturating_sub(self.metadata_kept);
                add(doc, METADATA_YAML_KEEP.min(before + room));
                self.metadata_kept += doc.len() - before;
            }
            Some(Keep::Template) => {
                let room = TEMPLATES_KEEP_TOTAL.saturating_sub(self.templates_kept);
                if let Some(t) = out.templates.get_mut(&self.cur_name) {
                    let before = t.data.len();
                    add(&mut t.data, TEMPLATE_KEEP.min(before + room));
                    self.templates_kept += t.data.len() - before;
                }
            }
            Some(Keep::OsEtc) => {
                if let Some(k) = out.os_etc.as_mut() {
                    add(&mut k.data, OS_RELEASE_KEEP)
                }
            }
            Some(Keep::OsUsr) => {
                if let Some(k) = out.os_usr.as_mut() {
                    add(&mut k.data, OS_RELEASE_KEEP)
                }
            }
            Some(Keep::RootImg) => {
                if let Some(k) = out.root_img.as_mut() {
                    add(&mut k.data, ROOTFS_HEADER_KEEP)
                }
            }
            None => {}
        }
    }

    fn entry_end(&mut self) {
        if let Some(Keep::Metadata(i)) = self.cur {
            self.out.docs[i].complete = true;
            self.metadata_decoded();
        }
        self.cur = None;
    }
}

//! One streaming read of a rootfs tarball: what `lxdimg make` proposes comes from here.
//!
//! The same decoders and tar walk as the inspector; the visitor keeps only the symlinks and hard
//! links (to follow `/bin/sh` through `bin -> usr/bin` and `sh -> dash`), the first bytes of the
//! regular files in the executable directories, and `os-release`.

use super::elf::{elf_architecture, is_elf, ELF_HEAD};
use crate::decode::ExpansionLimits;
use crate::detect::Format;
use crate::limits::OS_RELEASE_KEEP;
use crate::rootfs::{os_release, OsRelease};
use crate::tar::stream::{TarballEnd, TarballStream};
use crate::tar::{EntryHeader, Visitor};
use std::collections::BTreeMap;

/// Links kept at most (a Debian minbase rootfs has about 1 500).
pub const LINKS_MAX: usize = 1 << 16;
/// Bytes of link names and targets kept at most.
pub const LINK_BYTES_MAX: usize = 8 << 20;
/// Executables whose first bytes are kept at most.
pub const HEADS_MAX: usize = 1 << 16;
/// Symlinks followed in one path at most (Linux's `MAXSYMLINKS`).
const HOPS_MAX: usize = 40;

/// Directories whose files may tell the architecture, in the order they are tried.
const EXEC_DIRS: &[&str] = &["bin", "usr/bin", "sbin", "usr/sbin"];
/// Executables tried before any other (after `/bin/sh`): present in nearly every rootfs.
const PREFERRED: &[&str] = &["bin/sh", "bin/busybox", "usr/bin/env", "bin/ls", "bin/true"];

/// The architecture and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchGuess {
    /// LXD's canonical name.
    pub name: &'static str,
    /// The path asked for (`/bin/sh`).
    pub path: String,
    /// The file it resolves to inside the rootfs (`/usr/bin/dash`).
    pub file: String,
}

/// What one read of a rootfs told.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Probe {
    pub format: Option<Format>,
    pub size: u64,
    pub entries: u64,
    pub architecture: Option<ArchGuess>,
    pub os_release: Option<OsRelease>,
    /// Where os-release was read (`/etc/os-release`, or the file it links to).
    pub os_release_file: Option<String>,
    /// Why the content could not be read (not a tarball, decode or tar error, limits).
    pub error: Option<String>,
}

/// Removes leading `./` and `/` (`docker export` writes `bin/sh`, GNU tar `./bin/sh`).
pub fn normalize(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

#[derive(Default)]
struct Collect {
    links: BTreeMap<String, String>,
    hard: BTreeMap<String, String>,
    link_bytes: usize,
    heads: BTreeMap<String, Vec<u8>>,
    os: BTreeMap<String, Vec<u8>>,
    cur: Option<(bool, String)>,
    entries: u64,
    /// Sizes of the os-release members (their data is complete when kept whole).
    os_size: BTreeMap<String, u64>,
    /// A link, head or os-release was recorded since the last [`Collect::settled`] check.
    dirty: bool,
}

fn in_exec_dir(path: &str) -> bool {
    path.rsplit_once('/')
        .is_some_and(|(dir, _)| EXEC_DIRS.contains(&dir))
}

impl Visitor for Collect {
    fn entry(&mut self, h: &EntryHeader) -> bool {
        self.entries += 1;
        self.cur = None;
        let name = normalize(&h.name);
        // A later member replaces an earlier one of the same name, as tar unpacks them.
        self.links.remove(&name);
        self.hard.remove(&name);
        self.heads.remove(&name);
        self.os.remove(&name);
        match h.kind {
            b'2' | b'1' => {
                if self.links.len() + self.hard.len() >= LINKS_MAX
                    || self.link_bytes + name.len() + h.link.len() > LINK_BYTES_MAX
                {
                    return false;
                }
                self.link_bytes += name.len() + h.link.len();
                self.dirty = true;
                if h.kind == b'2' {
                    self.links
                        .insert(name, String::from_utf8_lossy(&h.link).into_owned());
                } else {
                    self.hard.insert(name, normalize(&h.link));
                }
                false
            }
            _ if !h.is_regular() => false,
            _ if name == "etc/os-release" || name == "usr/lib/os-release" => {
                self.os.insert(name.clone(), Vec::new());
                self.os_size.insert(name.clone(), h.size);
                self.cur = Some((false, name));
                true
            }
            _ if in_exec_dir(&name) && self.heads.len() < HEADS_MAX && h.size > 0 => {
                self.heads.insert(name.clone(), Vec::new());
                self.cur = Some((true, name));
                true
            }
            _ => false,
        }
    }

    fn data(&mut self, chunk: &[u8]) {
        let Some((head, name)) = &self.cur else {
            return;
        };
        let (map, cap) = if *head {
            (&mut self.heads, ELF_HEAD)
        } else {
            (&mut self.os, OS_RELEASE_KEEP)
        };
        if let Some(buf) = map.get_mut(name) {
            let room = cap.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
    }

    fn entry_end(&mut self) {
        self.dirty = true;
        if let Some((true, name)) = &self.cur {
            // Only ELF heads are worth keeping.
            if !self.heads.get(name).is_some_and(|h| is_elf(h)) {
                self.heads.remove(name);
            }
        }
        self.cur = None;
    }
}

impl Collect {
    /// Follows symlinks (in every component) and hard links to the member holding the data.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(String::from)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(c);
            let here = done.join("/");
            let target = self.links.get(&here).cloned().or_else(|| {
                // A hard link names its target from the archive root.
                self.hard.get(&here).map(|t| format!("/{t}"))
            });
            if let Some(target) = target {
                hops += 1;
                if hops > HOPS_MAX {
                    return None;
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                for t in target.split('/').filter(|c| !c.is_empty()).rev() {
                    todo.push(t.to_string());
                }
            }
        }
        Some(done.join("/"))
    }

    fn architecture(&self) -> Option<ArchGuess> {
        let guess = |path: &str| {
            let file = self.resolve(path)?;
            let name = elf_architecture(self.heads.get(&file)?)?;
            Some(ArchGuess {
                name,
                path: format!("/{path}"),
                file: format!("/{file}"),
            })
        };
        PREFERRED
            .iter()
            .find_map(|p| guess(p))
            .or_else(|| {
                EXEC_DIRS.iter().find_map(|dir| {
                    self.heads
                        .keys()
                        .filter(|k| k.rsplit_once('/').is_some_and(|(d, _)| d == *dir))
                        .find_map(|k| guess(k))
                })
            })
            .or_else(|| self.heads.keys().find_map(|k| guess(k)))
    }

    /// Whether what the proposal needs is known: `/bin/sh` resolves to an ELF executable of a
    /// known architecture, and `/etc/os-release` (or `/usr/lib/os-release`) to a member read
    /// whole. Reading can stop here (the inspection that follows reads every byte).
    fn settled(&mut self) -> bool {
        if !std::mem::take(&mut self.dirty) {
            return false;
        }
        let sh = self
            .resolve("bin/sh")
            .and_then(|f| self.heads.get(&f).and_then(|h| elf_architecture(h)));
        sh.is_some()
            && ["etc/os-release", "usr/lib/os-release"].iter().any(|p| {
                self.resolve(p).is_some_and(|f| {
                    let (Some(d), Some(n)) = (self.os.get(&f), self.os_size.get(&f)) else {
                        return false;
                    };
                    d.len() as u64 == *n || d.len() >= OS_RELEASE_KEEP
                })
            })
    }

    fn os_release(&self) -> Option<(String, OsRelease)> {
        ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| {
                let file = self.resolve(p)?;
                let text = self.os.get(&file)?;
                Some((format!("/{file}"), os_release(text)))
            })
    }
}

/// The push reader: bytes of the rootfs file in (any chunking), a [`Probe`] out.
pub struct RootfsProbe {
    stream: TarballStream,
    col: Collect,
    /// Stopped once [`RootfsProbe::settled`].
    settled: bool,
}

impl RootfsProbe {
    pub fn new(limits: ExpansionLimits) -> RootfsProbe {
        RootfsProbe {
            stream: TarballStream::new(limits),
            col: Collect::default(),
            settled: false,
        }
    }

    /// Whether the proposal is known and reading can stop (`/bin/sh`'s architecture and
    /// os-release found). Optional: pushing on and finishing gives the same proposal, unless a
    /// later member replaces one of those (the inspection of the made image reads every byte and
    /// would show a different os-release).
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// The next bytes of the rootfs file.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.settled {
            return;
        }
        self.stream.push(chunk, &mut self.col);
        if self.col.settled() {
            self.settled = true;
            self.stream.stop();
        }
    }

    /// Whether the format is known and is not a tarball (squashfs, qcow2): the content is not
    /// read here.
    pub fn not_a_tarball(&self) -> bool {
        self.stream.not_a_tarball()
    }

    /// The end of the file.
    pub fn finish(mut self) -> Probe {
        self.stream.finish(&mut self.col);
        let error = match self.stream.end() {
            TarballEnd::Unrecognised => {
                Some("not a tarball, squashfs or qcow2 LXD reads as a rootfs".to_string())
            }
            TarballEnd::NotATarball(f) => Some(format!(
                "a {} rootfs: its files are not read in one pass (give --arch, --os and --release)",
                f.name()
            )),
            TarballEnd::Bomb(b) => Some(b.describe("the rootfs")),
            TarballEnd::Decode(e) => Some(format!("the rootfs does not decode: {}", e.message)),
            TarballEnd::Tar(e) => Some(format!(
                "the rootfs tarball is broken: {} ({})",
                e.go_message, e.detail
            )),
            TarballEnd::Complete => None,
        };
        let os = self.col.os_release();
        Probe {
            format: self.stream.format(),
            size: self.stream.size(),
            entries: self.col.entries,
            architecture: self.col.architecture(),
            os_release_file: os.as_ref().map(|o| o.0.clone()),
            os_release: os.map(|o| o.1),
            error,
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if machine == 3 { 1 } else { 2 };
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h.extend_from_slice(&[0; 200]);
        h
    }

    /// A tarball built with the `tar` crate: (name, kind, link, data).
    fn tarball(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &(name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::new(kind));
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn probe(bytes: &[u8], chunk: usize) -> Probe {
        let mut p = RootfsProbe::new(ExpansionLimits {
            max_decoded: 1 << 30,
            max_ratio: 100,
        });
        for c in bytes.chunks(chunk) {
            p.push(c);
        }
        p.finish()
    }

    #[test]
    fn bin_sh_through_a_merged_usr_and_dash() {
        let arm = elf(183);
        let x86 = elf(62);
        let os = b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        // Merged /usr, sh -> dash, and a decoy x86_64 binary in /usr/bin sorted first.
        let t = tarball(&[
            ("./bin", b'2', "usr/bin", b""),
            ("./etc/os-release", b'2', "../usr/lib/os-release", b""),
            ("./usr/bin/aaa", b'0', "", &x86),
            ("./usr/bin/dash", b'0', "", &arm),
            ("./usr/bin/sh", b'2', "dash", b""),
            ("./usr/lib/os-release", b'0', "", os),
        ]);
        for chunk in [1, 7, 512, 1 << 20] {
            let p = probe(&t, chunk);
            assert_eq!(p.error, None);
            let a = p.architecture.unwrap();
            assert_eq!(
                (a.name, a.path.as_str(), a.file.as_str()),
                ("aarch64", "/bin/sh", "/usr/bin/dash")
            );
            let o = p.os_release.unwrap();
            assert_eq!(o.id.as_deref(), Some("debian"));
            assert_eq!(p.os_release_file.as_deref(), Some("/usr/lib/os-release"));
        }
    }

    #[test]
    fn reading_stops_once_the_proposal_is_known() {
        let big = vec![7u8; 1 << 20];
        let t = tarball(&[
            ("./bin/sh", b'2', "dash", b""),
            ("./bin/dash", b'0', "", &elf(62)),
            (
                "./etc/os-release",
                b'0',
                "",
                b"ID=debian\nVERSION_CODENAME=bookworm\n",
            ),
            ("./usr/share/big", b'0', "", &big),
        ]);
        let mut p = RootfsProbe::new(ExpansionLimits {
            max_decoded: 1 << 30,
            max_ratio: 100,
        });
        let mut pushed = 0;
        for c in t.chunks(4096) {
            if p.settled() {
                break;
            }
            p.push(c);
            pushed += c.len();
        }
        assert!(p.settled());
        assert!(pushed < 16 << 10, "{pushed}");
        let r = p.finish();
        assert_eq!(r.error, None);
        assert_eq!(r.architecture.unwrap().name, "x86_64");
        assert_eq!(
            r.os_release.unwrap().version_codename.as_deref(),
            Some("bookworm")
        );
        // os-release first, /bin/sh last: settled only at the end.
        let t = tarball(&[
            ("./etc/os-release", b'0', "", b"ID=debian\n"),
            ("./usr/share/big", b'0', "", &big),
            ("./bin/sh", b'0', "", &elf(62)),
        ]);
        let mut p = RootfsProbe::new(ExpansionLimits {
            max_decoded: 1 << 30,
            max_ratio: 100,
        });
        let mut pushed = 0;
        for c in t.chunks(4096) {
            if p.settled() {
                break;
            }
            p.push(c);
            pushed += c.len();
        }
        assert!(pushed > 1 << 20);
    }

    #[test]
    fn docker_export_layout_busybox_absolute_links_and_hard_links() {
        let x86 = elf(62);
        // No ./, an absolute symlink to busybox, a hard link; .dockerenv.
        let t = tarball(&[
            (".dockerenv", b'0', "", b""),
            ("bin/busybox", b'0', "", &x86),
            ("bin/sh", b'2', "/bin/busybox", b""),
            (
                "etc/os-release",
                b'0',
                "",
                b"ID=alpine\nVERSION_ID=3.20.0\n",
            ),
        ]);
        let a = probe(&t, 4096).architecture.unwrap();
        assert_eq!((a.name, a.file.as_str()), ("x86_64", "/bin/busybox"));
        let t = tarball(&[
            ("sbin/init", b'0', "", &elf(3)),
            ("bin/sh", b'1', "sbin/init", b""),
        ]);
        let a = probe(&t, 4096).architecture.unwrap();
        assert_eq!((a.name, a.file.as_str()), ("i686", "/sbin/init"));
    }

    #[test]
    fn fallbacks_loops_and_nothing_to_read() {
        // /bin/sh is a script: another executable in /usr/bin tells.
        let t = tarball(&[
            ("bin/sh", b'0', "", b"#!/bin/false\n"),
            ("usr/bin/foo", b'0', "", &elf(243)),
        ]);
        assert_eq!(probe(&t, 100).architecture.unwrap().name, "riscv64");
        // A symlink loop ends, with no architecture.
        let t = tarball(&[("bin/sh", b'2', "sh2", b""), ("bin/sh2", b'2', "sh", b"")]);
        let p = probe(&t, 100);
        assert_eq!(p.architecture, None);
        assert_eq!(p.error, None);
        // A later member replaces an earlier one.
        let t = tarball(&[
            ("bin/sh", b'0', "", &elf(62)),
            ("bin/sh", b'0', "", &elf(3)),
        ]);
        assert_eq!(probe(&t, 100).architecture.unwrap().name, "i686");
        // Not a tarball.
        assert!(probe(b"hello", 100).error.is_some());
        let mut sq = b"hsqs".to_vec();
        sq.resize(4096, 0);
        assert!(probe(&sq, 100).error.unwrap().contains("squashfs"));
        // Truncated.
        let t = tarball(&[("bin/sh", b'0', "", &elf(62))]);
        assert!(probe(&t[..700], 100).error.unwrap().contains("broken"));
    }
}

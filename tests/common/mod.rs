//! Test fixtures, generated at test time: realistic small images in every format LXD reads.
#![allow(dead_code)]

use lxdimg::{Inspector, Options, Report};
use std::io::Write;
use std::process::Command;

pub const NOW: i64 = 1_800_000_000;

pub const METADATA: &str = "architecture: amd64
creation_date: 1458040200
expiry_date: 1900000000
properties:
  description: Debian bookworm amd64 (20240101_05:24)
  os: Debian
  release: bookworm
  version: 12
  serial: 20240101
templates:
  /etc/hostname:
    when:
      - create
      - copy
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy, rename]
    create_only: yes
    template: hosts.tpl
    properties:
      default: localhost
";

/// One tar member.
pub enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

#[derive(Clone, Copy, PartialEq)]
pub enum TarFlavor {
    Gnu,
    Ustar,
    Pax,
    V7,
}

fn header(flavor: TarFlavor) -> tar::Header {
    let mut h = match flavor {
        TarFlavor::Gnu => tar::Header::new_gnu(),
        TarFlavor::Ustar | TarFlavor::Pax => tar::Header::new_ustar(),
        TarFlavor::V7 => tar::Header::new_old(),
    };
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Builds a tar archive of the given members (deterministic: fixed times and owners).
pub fn tar(members: &[Member], flavor: TarFlavor) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = header(flavor);
        let path = match m {
            Member::Dir(p)
            | Member::File(p, _)
            | Member::Symlink(p, _)
            | Member::Hardlink(p, _) => *p,
        };
        if flavor == TarFlavor::Pax && path.len() > 90 {
            b.append_pax_extensions([("path", path.as_bytes())])
                .unwrap();
        }
        match m {
            Member::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                // Like GNU tar, directory names end with a slash.
                let name = format!("{}/", p.trim_end_matches('/'));
                h.set_path(&name).unwrap();
                if !h.path_bytes().ends_with(b"/") {
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                }
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Member::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                if flavor == TarFlavor::Pax && p.len() > 90 {
                    h.set_path(&p[p.len() - 40..]).unwrap();
                    h.set_cksum();
                    b.append(&h, *data).unwrap();
                } else {
                    b.append_data(&mut h, p, *data).unwrap();
                }
            }
            Member::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            Member::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub const OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// A small but realistic container rootfs under `prefix` ("rootfs/" or "").
pub fn rootfs_members(prefix: &str) -> Vec<(String, Option<Vec<u8>>, Option<String>)> {
    let mut v: Vec<(String, Option<Vec<u8>>, Option<String>)> = Vec::new();
    for d in [
        "", "etc", "usr", "usr/lib", "usr/bin", "var", "var/log", "root",
    ] {
        v.push((
            format!("{prefix}{d}{}", if d.is_empty() { "" } else { "/" }),
            None,
            None,
        ));
    }
    v.push((
        format!("{prefix}usr/lib/os-release"),
        Some(OS_RELEASE.to_vec()),
        None,
    ));
    v.push((
        format!("{prefix}etc/os-release"),
        None,
        Some("../usr/lib/os-release".into()),
    ));
    v.push((
        format!("{prefix}etc/hostname"),
        Some(b"debian\n".to_vec()),
        None,
    ));
    // Some bulk so that compressed streams span several decoder calls and 64 KiB granules.
    let mut bulk = Vec::new();
    let mut x: u32 = 12345;
    for i in 0..150_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bulk.extend_from_slice(format!("line {i} {}\n", x % 1000).as_bytes());
    }
    v.push((format!("{prefix}usr/bin/busybox"), Some(bulk), None));
    v.push((
        format!(
            "{prefix}var/log/{}",
            "a-very-long-directory-name/".repeat(5) + "file.log"
        ),
        Some(b"log\n".to_vec()),
        None,
    ));
    v
}

pub fn members_of(list: &[(String, Option<Vec<u8>>, Option<String>)]) -> Vec<Member<'_>> {
    list.iter()
        .filter(|(p, _, _)| !p.is_empty())
        .map(|(p, data, link)| match (data, link) {
            (Some(d), _) => Member::File(p, d),
            (None, Some(l)) => Member::Symlink(p, l),
            (None, None) => Member::Dir(p.trim_end_matches('/')),
        })
        .collect()
}

/// The standard unified image: metadata.yaml, templates/, rootfs/.
pub fn unified_tar(flavor: TarFlavor, meta: &str, dot: bool) -> Vec<u8> {
    let p = if dot { "./" } else { "" };
    let root = rootfs_members(&format!("{p}rootfs/"));
    let mut m = vec![
        Member::File(
            if dot {
                "./metadata.yaml"
            } else {
                "metadata.yaml"
            },
            meta.as_bytes(),
        ),
        Member::Dir(if dot { "./templates" } else { "templates" }),
    ];
    let hostname = format!("{p}templates/hostname.tpl");
    let hosts = format!("{p}templates/hosts.tpl");
    m.push(Member::File(&hostname, b"{{ container.name }}\n"));
    m.push(Member::File(
        &hosts,
        b"127.0.0.1 {{ properties.default }}\n127.0.1.1 {{ container.name }}\n",
    ));
    m.extend(members_of(&root));
    tar(&m, flavor)
}

/// The metadata tarball of a split image.
pub fn metadata_tar(meta: &str) -> Vec<u8> {
    tar(
        &[
            Member::File("metadata.yaml", meta.as_bytes()),
            Member::Dir("templates"),
            Member::File("templates/hostname.tpl", b"{{ container.name }}\n"),
            Member::File("templates/hosts.tpl", b"127.0.0.1 localhost\n"),
        ],
        TarFlavor::Gnu,
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6)).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn lzma(data: &[u8]) -> Vec<u8> {
    let opts = lzma_rust2::LzmaOptions::with_preset(6);
    let mut w = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &opts, None).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn tool(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}); `make test` installs it",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A squashfs rootfs made by mksquashfs (squashfs-tools), with fixed times.
pub fn squashfs() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for (p, data, link) in rootfs_members("") {
        let path = root.join(&p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match (data, link) {
            (Some(d), _) => std::fs::write(&path, d).unwrap(),
            (None, Some(l)) => std::os::unix::fs::symlink(l, &path).unwrap(),
            (None, None) => std::fs::create_dir_all(&path).unwrap(),
        }
    }
    let out = dir.path().join("rootfs.squashfs");
    tool(Command::new("mksquashfs").arg(&root).arg(&out).args([
        "-noappend",
        "-all-root",
        "-mkfs-time",
        "0",
        "-all-time",
        "0",
        "-comp",
        "xz",
        "-no-progress",
        "-quiet",
    ]));
    std::fs::read(out).unwrap()
}

/// A small qcow2 disk made by qemu-img.
pub fn qcow2() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("disk.qcow2");
    tool(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&out)
            .arg("64M"),
    );
    std::fs::read(out).unwrap()
}

/// The options every test inspects with (default limits).
pub fn test_options(split: bool) -> Options {
    Options {
        now: Some(NOW),
        names: [Some("image".into()), split.then(|| "rootfs".into())],
        split_type: None,
        host_arch: Some("x86_64".into()),
        ..Options::default()
    }
}

/// Inspects `files` pushing each in pieces of the sizes `plan` yields.
pub fn inspect_with(files: &[&[u8]], plan: impl FnMut() -> usize) -> Report {
    inspect_opts(files, test_options(files.len() > 1), plan)
}

/// Inspects `files` with `opts`, pushing each in pieces of the sizes `plan` yields.
pub fn inspect_opts(files: &[&[u8]], opts: Options, mut plan: impl FnMut() -> usize) -> Report {
    let mut insp = Inspector::new(opts);
    for (i, f) in files.iter().enumerate() {
        if i == 1 {
            insp.start_rootfs().unwrap();
        }
        let mut rest = *f;
        while !rest.is_empty() {
            let n = plan().clamp(1, rest.len());
            insp.push(&rest[..n]);
            rest = &rest[n..];
        }
    }
    insp.finish()
}

pub fn inspect(files: &[&[u8]]) -> Report {
    inspect_with(files, || usize::MAX)
}

/// A deterministic pseudo-random chunk plan.
pub fn random_plan(seed: u64) -> impl FnMut() -> usize {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        match s % 4 {
            0 => (s >> 8) as usize % 16 + 1,
            1 => (s >> 8) as usize % 600 + 1,
            2 => (s >> 8) as usize % 70_000 + 1,
            _ => (s >> 8) as usize % 300_000 + 1,
        }
    }
}

//! The streaming rewrite of a unified image (src/rewrite/): every codec × chunk sizes, members
//! kept byte for byte, the result inspected by the core, and hostile inputs.

mod common;

use common::*;
use lxdimg::decode::{Decoder, ExpansionLimits};
use lxdimg::detect::sniff;
use lxdimg::rewrite::{
    Edits, NewEntry, RewriteError, RewriteOptions, RewriteSummary, Target, UnifiedRewrite,
};
use lxdimg::tar::{EntryHeader, TarWalker, Visitor};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

const BAD_ARCH: &str =
    "architecture: amd65\ncreation_date: 1458040200\nproperties:\n  os: Debian\n";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

type Codec = (&'static str, fn(&[u8]) -> Vec<u8>);

fn codecs() -> Vec<Codec> {
    vec![
        ("tar", |d| d.to_vec()),
        ("gz", gzip),
        ("xz", xz),
        ("bz2", bzip2),
        ("zst", zstd),
        ("lzma", lzma),
    ]
}

const CHUNKS: &[usize] = &[1 << 30, 1, 511, 4096, 65537, 1 << 20];

/// Runs a rewrite over `input` pushed in `chunk`-byte pieces (chunk 1 only over the first
/// 200 000 bytes, then 4099: one-byte pushes over a whole image take too long unoptimised).
fn rewrite_opts(
    input: &[u8],
    edits: &Edits,
    chunk: usize,
    opts: RewriteOptions,
) -> Result<(Vec<u8>, RewriteSummary), RewriteError> {
    let mut r = UnifiedRewrite::new(edits.clone(), opts);
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let step = if chunk == 1 && at >= 200_000 {
            4099
        } else {
            chunk
        };
        let end = (at + step).min(input.len());
        r.push(&input[at..end], &mut out)?;
        at = end;
    }
    let s = r.finish(&mut out)?;
    Ok((out, s))
}

fn rewrite(
    input: &[u8],
    edits: &Edits,
    chunk: usize,
) -> Result<(Vec<u8>, RewriteSummary), RewriteError> {
    rewrite_opts(input, edits, chunk, RewriteOptions::default())
}

fn decode(file: &[u8]) -> Vec<u8> {
    let format = sniff(file).expect("a known format");
    let mut d = Decoder::new(
        format,
        ExpansionLimits {
            max_decoded: u64::MAX,
            max_ratio: u64::MAX,
        },
    )
    .unwrap();
    let mut out = Vec::new();
    d.push(file, &mut |o| out.extend_from_slice(o)).unwrap();
    d.finish(&mut |o| out.extend_from_slice(o)).unwrap();
    assert!(d.trailing().is_none(), "no trailing bytes");
    out
}

/// One member as Go's reader sees it, with its raw header block and a hash of its data.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    name: String,
    kind: u8,
    size: u64,
    link: String,
    sparse: bool,
    sha: String,
    header: Vec<u8>,
}

struct Walk {
    recs: Vec<Rec>,
    sha: Sha256,
}

impl Visitor for Walk {
    fn entry(&mut self, h: &EntryHeader) -> bool {
        self.recs.push(Rec {
            name: h.name_lossy(),
            kind: h.kind,
            size: h.size,
            link: String::from_utf8_lossy(&h.link).into(),
            sparse: h.sparse.is_some(),
            sha: String::new(),
            header: vec![h.offset as u8], // replaced by the raw block below
        });
        self.sha = Sha256::new();
        true
    }
    fn data(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
    }
    fn entry_end(&mut self) {
        let sha = std::mem::take(&mut self.sha);
        self.recs.last_mut().unwrap().sha = hex(&sha.finalize());
    }
}

fn walk(tar: &[u8]) -> Vec<Rec> {
    let mut w = TarWalker::new();
    let mut v = Walk {
        recs: Vec::new(),
        sha: Sha256::new(),
    };
    let mut offsets = Vec::new();
    struct Off<'a>(&'a mut Walk, &'a mut Vec<u64>);
    impl Visitor for Off<'_> {
        fn entry(&mut self, h: &EntryHeader) -> bool {
            self.1.push(h.offset);
            self.0.entry(h)
        }
        fn data(&mut self, c: &[u8]) {
            self.0.data(c)
        }
        fn entry_end(&mut self) {
            self.0.entry_end()
        }
    }
    w.push(tar, &mut Off(&mut v, &mut offsets));
    w.finish();
    assert!(w.error().is_none(), "walk: {:?}", w.error());
    for (r, off) in v.recs.iter_mut().zip(offsets) {
        r.header = tar[off as usize..off as usize + 512].to_vec();
    }
    v.recs
}

/// The image used throughout: a broken metadata.yaml, templates, the rootfs, and a duplicate
/// metadata.yaml at the end.
fn broken_unified() -> Vec<u8> {
    let root = rootfs_members("rootfs/");
    let mut m = vec![
        Member::File("metadata.yaml", BAD_ARCH.as_bytes()),
        Member::Dir("templates"),
        Member::File("templates/hostname.tpl", b"{{ container.name }}\n"),
        Member::File(
            "templates/hosts.tpl",
            b"127.0.0.1 {{ properties.default }}\n127.0.1.1 {{ container.name }}\n",
        ),
    ];
    m.extend(members_of(&root));
    m.push(Member::Hardlink(
        "rootfs/usr/bin/busybox2",
        "rootfs/usr/bin/busybox",
    ));
    m.push(Member::File("metadata.yaml", b"architecture: [broken\n"));
    let mut t = tar(&m, TarFlavor::Gnu);
    // GNU tar pads archives to its 10 KiB record size: the padding is copied too.
    t.resize(t.len().div_ceil(10240) * 10240, 0);
    t
}

fn standard_edits() -> Edits {
    Edits {
        replace: vec![(
            Target::nth("metadata.yaml", 0),
            METADATA.as_bytes().to_vec(),
        )],
        drop: vec![Target::nth("metadata.yaml", 1)],
        add: vec![NewEntry::file(
            "templates/extra.tpl",
            b"extra {{ container.name }}\n".to_vec(),
            1_700_000_000,
        )],
    }
}

/// Checks the rewritten tar against the original: the edits applied, every other member the same
/// (raw header block, name, type, size, link, content hash), in the same order.
fn check_members(before: &[u8], after: &[u8], edits: &Edits) {
    let b = walk(before);
    let a = walk(after);
    let added: Vec<String> = edits
        .add
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into())
        .collect();
    assert_eq!(
        a.iter()
            .take(added.len())
            .map(|r| r.name.clone())
            .collect::<Vec<_>>(),
        added,
        "added members come first"
    );
    let a = &a[added.len()..];
    let mut seen: Vec<(String, u64)> = Vec::new();
    let mut ai = a.iter();
    for r in &b {
        let occ = match seen.iter_mut().find(|(n, _)| *n == r.name) {
            Some((_, c)) => {
                *c += 1;
                *c - 1
            }
            None => {
                seen.push((r.name.clone(), 1));
                0
            }
        };
        if edits
            .drop
            .iter()
            .any(|t| t.name == r.name.as_bytes() && t.occurrence.is_none_or(|n| n == occ))
        {
            continue;
        }
        let got = ai.next().unwrap_or_else(|| panic!("{} missing", r.name));
        if let Some((_, content)) = edits
            .replace
            .iter()
            .find(|(t, _)| t.name == r.name.as_bytes() && t.occurrence.is_none_or(|n| n == occ))
        {
            assert_eq!(got.name, r.name);
            assert_eq!(got.size, content.len() as u64);
            assert_eq!(got.sha, hex(&Sha256::digest(content)));
            // Everything but size (124..136) and checksum (148..156) kept.
            for (i, (x, y)) in got.header.iter().zip(&r.header).enumerate() {
                if !(124..136).contains(&i) && !(148..156).contains(&i) {
                    assert_eq!(x, y, "{}: header byte {i}", r.name);
                }
            }
            continue;
        }
        assert_eq!(got, r, "member kept as it was");
    }
    assert!(ai.next().is_none(), "no extra members");
}

#[test]
fn every_codec_every_chunking() {
    let tar = broken_unified();
    let edits = standard_edits();
    let reference = inspect(&[&gzip(&unified_tar(TarFlavor::Gnu, METADATA, false))]);
    for (name, enc) in codecs() {
        let input = enc(&tar);
        let before = inspect(&[&input]);
        assert!(
            before.verdicts["lxd-5.0"].error.is_some(),
            "{name}: the broken image is refused"
        );
        let mut first: Option<(Vec<u8>, RewriteSummary)> = None;
        for &chunk in CHUNKS {
            let (out, s) = rewrite(&input, &edits, chunk)
                .unwrap_or_else(|e| panic!("{name} chunk {chunk}: {e}"));
            assert_eq!(s.fingerprint, hex(&Sha256::digest(&out)), "{name}");
            assert_eq!(s.bytes_out, out.len() as u64);
            assert_eq!((s.replaced, s.dropped, s.added), (1, 1, 1));
            match &first {
                None => first = Some((out, s)),
                Some((o, f)) => {
                    assert_eq!(
                        (o.len(), &f.fingerprint),
                        (out.len(), &s.fingerprint),
                        "{name}: chunk {chunk} gives the same output"
                    );
                    assert!(*o == out);
                }
            }
        }
        let (out, s) = first.unwrap();
        assert_eq!(sniff(&out), sniff(&input), "{name}: same codec");
        assert_eq!(s.format.name(), sniff(&input).unwrap().name());
        let after = decode(&out);
        assert_eq!(after.len() as u64, s.tar_bytes_out);
        check_members(&tar, &after, &edits);
        let report = inspect(&[&out]);
        assert_eq!(report.fingerprint.as_deref(), Some(s.fingerprint.as_str()));
        assert!(
            report.verdicts["lxd-5.0"].error.is_none(),
            "{name}: {:?}",
            report.verdicts["lxd-5.0"]
        );
        assert_eq!(
            serde_json::to_value(&report.metadata).unwrap(),
            serde_json::to_value(&reference.metadata).unwrap(),
            "{name}"
        );
        assert_eq!(report.architecture, reference.architecture);
        assert!(
            report.templates.iter().all(|t| t.present),
            "{name}: templates present"
        );
        let dup: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.code.to_string().contains("duplicate"))
            .collect();
        assert!(dup.is_empty(), "{name}: {dup:?}");
    }
}

#[test]
fn untouched_image_is_the_same_tar() {
    // No edits: the decoded tar comes out byte for byte.
    let tar = broken_unified();
    for (name, enc) in codecs() {
        let (out, s) = rewrite(&enc(&tar), &Edits::default(), 65536).unwrap();
        assert!(decode(&out) == tar, "{name}");
        assert_eq!((s.replaced, s.dropped, s.added), (0, 0, 0));
        if name == "tar" {
            assert!(out == tar);
        }
    }
}

#[test]
fn flavours_and_long_names() {
    for flavor in [TarFlavor::Gnu, TarFlavor::Ustar, TarFlavor::Pax] {
        let tar = unified_tar(flavor, BAD_ARCH, true);
        // The name as the archive spells it (with or without "./").
        let meta = walk(&tar)
            .into_iter()
            .find(|r| r.name.ends_with("metadata.yaml"))
            .unwrap()
            .name;
        let edits = Edits {
            replace: vec![(Target::name(meta), METADATA.as_bytes().to_vec())],
            ..Default::default()
        };
        let (out, _) = rewrite(&gzip(&tar), &edits, 7777).unwrap();
        check_members(&tar, &decode(&out), &edits);
        let report = inspect(&[&out]);
        assert!(report.verdicts["lxd-5.0"].error.is_none());
    }
}

fn gnu_tar_tree(dir: &Path, format: &str, sparse: bool) -> Vec<u8> {
    let root = dir.join("img");
    std::fs::create_dir_all(root.join("rootfs/usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("templates")).unwrap();
    std::fs::write(root.join("metadata.yaml"), BAD_ARCH).unwrap();
    std::fs::write(
        root.join("templates/hostname.tpl"),
        "{{ container.name }}\n",
    )
    .unwrap();
    let long = root.join(format!("rootfs/{}", "long-directory-name-".repeat(8)));
    std::fs::create_dir_all(&long).unwrap();
    std::fs::write(long.join("file-with-a-long-name.txt"), "deep\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(root.join("rootfs/usr/bin/tool"), &big).unwrap();
    std::fs::hard_link(
        root.join("rootfs/usr/bin/tool"),
        root.join("rootfs/usr/bin/tool2"),
    )
    .unwrap();
    std::os::unix::fs::symlink("tool", root.join("rootfs/usr/bin/link")).unwrap();
    {
        // A sparse file: data, a 1 MiB hole, data.
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(root.join("rootfs/usr/bin/sparse")).unwrap();
        f.write_all(&[7u8; 5000]).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&[9u8; 3000]).unwrap();
    }
    let out = dir.join(format!("{format}.tar"));
    let mut cmd = Command::new("tar");
    cmd.arg(format!("--format={format}")).args([
        "--sort=name",
        "--owner=0",
        "--group=0",
        "--mtime=@1700000000",
    ]);
    if sparse {
        cmd.arg("-S");
    }
    let st = cmd
        .arg("-cf")
        .arg(&out)
        .arg("-C")
        .arg(&root)
        .args(["metadata.yaml", "templates", "rootfs"])
        .status()
        .expect("GNU tar (`make test` has it)");
    assert!(st.success());
    std::fs::read(out).unwrap()
}

#[test]
fn gnu_tar_members_sparse_hard_links_long_names() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["gnu", "posix", "oldgnu"] {
        let sub = dir.path().join(format);
        let tar = gnu_tar_tree(&sub, format, true);
        let w = walk(&tar);
        assert!(w.iter().any(|r| r.sparse), "{format}: a sparse member");
        assert!(w.iter().any(|r| r.kind == b'1'), "{format}: a hard link");
        assert!(
            w.iter().any(|r| r.name.len() > 100),
            "{format}: a long name"
        );
        let edits = Edits {
            replace: vec![(Target::name("metadata.yaml"), METADATA.as_bytes().to_vec())],
            add: vec![NewEntry::file(
                format!("templates/{}.tpl", "n".repeat(150)),
                b"long\n".to_vec(),
                1,
            )],
            ..Default::default()
        };
        for (name, enc) in [codecs()[1], codecs()[4]] {
            let (out, _) = rewrite(&enc(&tar), &edits, 10_000).unwrap();
            let after = decode(&out);
            check_members(&tar, &after, &edits);
            // GNU tar agrees: it lists the rewritten archive, sparse members and all.
            let p = sub.join(format!("out.{name}"));
            std::fs::write(&p, &after).unwrap();
            let o = Command::new("tar").arg("-tvf").arg(&p).output().unwrap();
            assert!(
                o.status.success(),
                "{format}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let listing = String::from_utf8_lossy(&o.stdout);
            assert!(listing.contains("rootfs/usr/bin/sparse"));
            assert!(listing.contains(&"n".repeat(150)));
            // And extracts the sparse file with its content.
            let x = sub.join(format!("x-{name}"));
            std::fs::create_dir_all(&x).unwrap();
            let st = Command::new("tar")
                .arg("-xf")
                .arg(&p)
                .arg("-C")
                .arg(&x)
                .status()
                .unwrap();
            assert!(st.success());
            let s = std::fs::read(x.join("rootfs/usr/bin/sparse")).unwrap();
            assert_eq!(s.len(), (1 << 20) + 3000);
            assert_eq!(
                std::fs::read_to_string(x.join("metadata.yaml")).unwrap(),
                METADATA
            );
        }
    }
}

#[test]
fn edits_that_do_not_apply_are_errors() {
    let tar = broken_unified();
    let input = gzip(&tar);
    let e = rewrite(
        &input,
        &Edits {
            drop: vec![Target::name("nothing-here")],
            ..Default::default()
        },
        4096,
    )
    .unwrap_err();
    assert!(
        e.message.contains("no member \"nothing-here\" to drop"),
        "{e}"
    );
    let e = rewrite(
        &input,
        &Edits {
            replace: vec![(Target::name("rootfs/etc/os-release"), b"x".to_vec())],
            ..Default::default()
        },
        4096,
    )
    .unwrap_err();
    assert!(e.message.contains("symbolic link"), "{e}");
    assert!(e.message.contains("rootfs/etc/os-release"), "{e}");
    // A directory metadata.yaml: dropped, and a regular one added.
    let t = tar_dir_metadata();
    let edits = Edits {
        drop: vec![Target::name("metadata.yaml/")],
        add: vec![NewEntry::file(
            "metadata.yaml",
            METADATA.as_bytes().to_vec(),
            1,
        )],
        ..Default::default()
    };
    let before = inspect(&[&t]);
    assert!(before.verdicts["lxd-5.0"].error.is_some());
    let (out, _) = rewrite(&t, &edits, 3000).unwrap();
    check_members(&t, &out, &edits);
    assert!(inspect(&[&out]).verdicts["lxd-5.0"].error.is_none());
}

fn tar_dir_metadata() -> Vec<u8> {
    let root = rootfs_members("rootfs/");
    let mut m = vec![Member::Dir("metadata.yaml")];
    m.extend(members_of(&root));
    tar(&m, TarFlavor::Ustar)
}

#[test]
fn truncated_inputs_are_clear_errors() {
    let tar = broken_unified();
    for (name, enc) in codecs() {
        let input = enc(&tar);
        for cut in [
            1,
            300,
            700,
            input.len() / 3,
            input.len() / 2,
            input.len() - 1,
        ] {
            if name == "tar" && (cut < 512 || cut > tar.len() - 10240) {
                continue; // not a tar at all, or cut in the zero padding after the end marker
            }
            let e = rewrite(&input[..cut], &standard_edits(), 4096)
                .err()
                .unwrap_or_else(|| panic!("{name} cut at {cut}: no error"));
            assert!(
                e.message.contains("ends too early")
                    || e.message.contains("cannot be decoded")
                    || e.message.contains("not a unified image"),
                "{name} cut at {cut}: {e}"
            );
        }
    }
    let e = rewrite(b"", &Edits::default(), 1).unwrap_err();
    assert!(e.message.contains("empty"));
    let e = rewrite(b"hello, not an image", &Edits::default(), 1).unwrap_err();
    assert!(e.message.contains("Unsupported compression"), "{e}");
    let e = rewrite(&squashfs(), &Edits::default(), 100).unwrap_err();
    assert!(e.message.contains("squashfs"), "{e}");
}

#[test]
fn bombs_stop_at_the_expansion_limit() {
    // 64 MiB of zeros in one member: 64 KiB of gzip. With 4 MiB / 100:1 limits it stops early,
    // having produced output proportional to what it read.
    let zeros = vec![0u8; 64 << 20];
    let t = tar(
        &[
            Member::File("metadata.yaml", METADATA.as_bytes()),
            Member::File("rootfs/zeros", &zeros),
        ],
        TarFlavor::Gnu,
    );
    for (name, enc) in [codecs()[1], codecs()[4]] {
        let input = enc(&t);
        let opts = RewriteOptions {
            max_decoded_bytes: 4 << 20,
            max_expansion_ratio: 100,
            ..Default::default()
        };
        let mut r = UnifiedRewrite::new(Edits::default(), opts);
        let mut out = Vec::new();
        let mut err = None;
        for c in input.chunks(4096) {
            if let Err(e) = r.push(c, &mut out) {
                err = Some(e);
                break;
            }
        }
        let e = err
            .or_else(|| r.finish(&mut out).err())
            .expect("a bomb error");
        assert!(e.message.contains("decompression bomb"), "{name}: {e}");
        assert!(e.offset.is_some());
        assert!(out.len() < 1 << 20, "{name}: {} bytes written", out.len());
    }
}

#[test]
fn other_codec_on_request() {
    let tar = broken_unified();
    for (target, want) in [
        (lxdimg::detect::Format::Gzip, "gzip"),
        (lxdimg::detect::Format::Xz, "xz"),
        (lxdimg::detect::Format::Tar, "tar"),
    ] {
        let opts = RewriteOptions {
            format: Some(target),
            ..Default::default()
        };
        let (out, s) = rewrite_opts(&bzip2(&tar), &standard_edits(), 50_000, opts).unwrap();
        assert_eq!(sniff(&out).unwrap().name(), want);
        assert_eq!(s.format.name(), want);
        check_members(&tar, &decode(&out), &standard_edits());
    }
}

//! The fuzz targets' inputs, replayed by `cargo test`.
//!
//! - `regressions_replay`: every file under `tests/regressions/<target>/` (a crash, timeout or
//!   out-of-memory input cargo-fuzz found, kept after the fix) runs through the same harness as
//!   the fuzz target `<target>` (`tests/harness/mod.rs`, which `fuzz/` includes by path).
//! - `fuzz_seeds`: the seed corpus, small images in every format built from the test fixtures'
//!   generators, each run through its target's harness. With `LXDIMG_FUZZ_SEEDS=DIR` the seeds
//!   are also written to `DIR/<target>/` (`make fuzz` does this before fuzzing).

mod common;
mod harness;

use common::*;
use std::path::{Path, PathBuf};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions")
}

/// Runs `f` on `data`; the panic message if it panicked.
fn run(f: fn(&[u8]), data: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| f(data)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

#[test]
fn regressions_replay() {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(regressions_dir())
        .expect("tests/regressions exists")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let f = harness::target(&name)
            .unwrap_or_else(|| panic!("tests/regressions/{name}: no fuzz target of that name"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let t = std::time::Instant::now();
            if let Err(msg) = run(f, &data) {
                failures.push(format!("{}: {msg}", file.display()));
            }
            println!(
                "{name}/{}: {} bytes, {:.3} s",
                file.file_name().unwrap().to_string_lossy(),
                data.len(),
                t.elapsed().as_secs_f64()
            );
            count += 1;
        }
    }
    println!("{count} regression inputs replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A small rootfs (so that the seeds stay small and fast to fuzz).
fn small_rootfs(prefix: &str) -> Vec<(String, Option<Vec<u8>>, Option<String>)> {
    let mut v: Vec<(String, Option<Vec<u8>>, Option<String>)> = Vec::new();
    for d in ["", "etc", "usr", "usr/lib", "usr/bin"] {
        let sep = if d.is_empty() { "" } else { "/" };
        v.push((format!("{prefix}{d}{sep}"), None, None));
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
    let bulk: Vec<u8> = (0..3000u32)
        .flat_map(|i| format!("{i:05} ").into_bytes())
        .collect();
    v.push((format!("{prefix}usr/bin/tool"), Some(bulk), None));
    v
}

fn small_unified(flavor: TarFlavor, meta: &str, dot: bool) -> Vec<u8> {
    let p = if dot { "./" } else { "" };
    let root = small_rootfs(&format!("{p}rootfs/"));
    let meta_name = format!("{p}metadata.yaml");
    let tpl = format!("{p}templates/hostname.tpl");
    let mut m = vec![
        Member::File(&meta_name, meta.as_bytes()),
        Member::Dir(if dot { "./templates" } else { "templates" }),
        Member::File(&tpl, b"{{ container.name }}\n"),
    ];
    m.extend(members_of(&root));
    tar(&m, flavor)
}

const YAMLS: &[&str] = &[
    METADATA,
    "architecture: x86_64\ncreation_date: 1458040200\n",
    "architecture: aarch64\ncreation_date: \"1458040200\"\nproperties: {os: ubuntu, release: noble}\n",
    "architecture: &a armv7l\ncreation_date: 1_700_000_000\nexpiry_date: 1.5e9\nproperties:\n  arch: *a\n  description: |\n    multi\n    line\n  <<: {merged: yes}\n",
    "%YAML 1.1\n---\narchitecture: i686\ncreation_date: 2016-03-15\ntemplates:\n  /etc/hosts: {when: [create, copy], template: hosts.tpl, create_only: true}\n  /etc/x: ~\n...\n---\nignored: 1\n",
    "architecture: [x86_64]\ncreation_date: {a: 1}\ntemplates: [1, 2]\nproperties: {a: [1], b: {c: d}, ? complex : key}\n",
    "- just\n- a list\n",
    "'quoted': \"double \\u00e9 \\x41\"\n!!str tagged: !!int 12\nnull: ~\ntrue: false\n",
    "architecture: s390x\ncreation_date: 0x10\nproperties:\n  a: &x [*x]\n",
    "\t bad indent:\n  - x\n y: z\n",
];

/// Every target's seeds, as `(target, name, bytes)` in the harness's input layout.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let gnu = small_unified(TarFlavor::Gnu, METADATA, false);
    let flavors = [
        ("gnu", gnu.clone()),
        ("ustar", small_unified(TarFlavor::Ustar, METADATA, false)),
        ("pax", small_unified(TarFlavor::Pax, METADATA, true)),
        ("v7", small_unified(TarFlavor::V7, YAMLS[1], false)),
    ];
    // A GNU long name and a PAX header with a long path, size and link.
    let long = "rootfs/".to_string() + &"d".repeat(150) + "/file";
    let long_tar = tar(
        &[
            Member::File("metadata.yaml", YAMLS[1].as_bytes()),
            Member::Dir("rootfs"),
            Member::File(&long, b"long\n"),
            Member::Hardlink("rootfs/link", "rootfs/etc/hostname"),
        ],
        TarFlavor::Gnu,
    );
    let pax_tar = tar(
        &[
            Member::File("metadata.yaml", YAMLS[2].as_bytes()),
            Member::Dir("rootfs"),
            Member::File(&long, b"pax long\n"),
        ],
        TarFlavor::Pax,
    );
    let codecs: [(&str, fn(&[u8]) -> Vec<u8>); 6] = [
        ("tar", |b| b.to_vec()),
        ("gz", gzip),
        ("bz2", bzip2),
        ("xz", xz),
        ("lzma", lzma),
        ("zst", zstd),
    ];
    let plans = [0x01u8, 0x26, 0x13, 0x20];

    // (a) unified images.
    let mut images: Vec<(String, Vec<u8>)> = Vec::new();
    for (cname, enc) in codecs {
        images.push((format!("gnu.{cname}"), enc(&gnu)));
    }
    for (fname, t) in &flavors[1..] {
        images.push((format!("{fname}.gz"), gzip(t)));
    }
    images.push(("long.tar".into(), long_tar.clone()));
    images.push(("pax.xz".into(), xz(&pax_tar)));
    for (i, y) in YAMLS.iter().enumerate().skip(1) {
        let t = tar(
            &[
                Member::File("metadata.yaml", y.as_bytes()),
                Member::Dir("rootfs"),
            ],
            TarFlavor::Gnu,
        );
        images.push((format!("yaml{i}.gz"), gzip(&t)));
    }
    let mut two = gzip(&gnu[..gnu.len() / 2]);
    two.extend(gzip(&gnu[gnu.len() / 2..]));
    images.push(("two-members.gz".into(), two));
    let mut junk = zstd(&gnu);
    junk.extend_from_slice(b"junk after the frame");
    images.push(("junk.zst".into(), junk));
    images.push(("vm.tar".into(), {
        let mut head = qcow2();
        head.truncate(4096);
        tar(
            &[
                Member::File("metadata.yaml", METADATA.as_bytes()),
                Member::File("rootfs.img", &head),
            ],
            TarFlavor::Gnu,
        )
    }));
    for (i, (name, img)) in images.iter().enumerate() {
        let mut s = vec![plans[i % plans.len()]];
        s.extend_from_slice(img);
        out.push(("unified", name.clone(), s));
    }

    // (b) split pairs: the metadata tarball, then a squashfs, a qcow2 head or a rootfs tarball.
    let meta = metadata_tar(METADATA);
    let rootfs_tar = tar(&members_of(&small_rootfs("")), TarFlavor::Gnu);
    let sq = small_squashfs("xz");
    let mut qc = qcow2();
    qc.truncate(2048);
    let pairs: [(&str, Vec<u8>, Vec<u8>); 5] = [
        ("squashfs", xz(&meta), sq.clone()),
        ("qcow2", gzip(&meta), qc.clone()),
        ("tarball", zstd(&meta), gzip(&rootfs_tar)),
        ("plain", meta.clone(), b"not a rootfs".to_vec()),
        ("swapped", sq.clone(), gzip(&meta)),
    ];
    for (i, (name, m, r)) in pairs.iter().enumerate() {
        let mut s = vec![plans[i % plans.len()] | if i == 1 { 0x80 } else { 0 }];
        s.extend_from_slice(&(m.len() as u16).to_le_bytes());
        s.extend_from_slice(m);
        s.extend_from_slice(r);
        out.push(("split", name.to_string(), s));
    }

    // (c) decoded tar streams.
    let mut tars: Vec<(String, Vec<u8>)> = flavors
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    tars.push(("long".into(), long_tar));
    tars.push(("pax".into(), pax_tar));
    tars.extend(gnu_tar_sparse());
    let mut truncated = gnu.clone();
    truncated.truncate(gnu.len() - 700);
    tars.push(("truncated".into(), truncated));
    for (i, (name, t)) in tars.iter().enumerate() {
        let mut s = vec![plans[i % plans.len()]];
        s.extend_from_slice(t);
        out.push(("tar_walk", name.clone(), s));
    }

    // (d) metadata.yaml documents, in UTF-8 and UTF-16 with a BOM.
    for (i, y) in YAMLS.iter().enumerate() {
        out.push(("yaml", format!("doc{i}"), y.as_bytes().to_vec()));
    }
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(YAMLS[1].encode_utf16().flat_map(|u| u.to_le_bytes()));
    out.push(("yaml", "utf16le".into(), utf16));

    // (e) squashfs images with every compressor this mksquashfs offers, and a qcow2 head.
    for comp in ["gzip", "xz", "lzo", "lz4", "zstd", "lzma"] {
        if let Some(img) = try_small_squashfs(comp) {
            out.push(("rootfs", format!("squashfs-{comp}"), img));
        }
    }
    out.push(("rootfs", "qcow2".into(), qc));

    // (f) compressed streams: one, two concatenated, with junk and with zeros after.
    let small = tar(
        &[
            Member::File("metadata.yaml", YAMLS[1].as_bytes()),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    for (target, enc) in [
        ("decode_gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("decode_bzip2", bzip2),
        ("decode_xz", xz),
        ("decode_lzma", lzma),
        ("decode_zstd", zstd),
    ] {
        let one = enc(&small);
        let mut two = one.clone();
        two.extend(enc(b"second stream"));
        let mut junk = one.clone();
        junk.extend_from_slice(b"JUNK");
        let mut zeros = one.clone();
        zeros.extend_from_slice(&[0; 8]);
        let bigger = enc(&gnu);
        for (i, (name, c)) in [
            ("one", one),
            ("two", two),
            ("junk", junk),
            ("zeros", zeros),
            ("bigger", bigger),
        ]
        .into_iter()
        .enumerate()
        {
            let mut s = vec![plans[i % plans.len()]];
            s.extend_from_slice(&c);
            out.push((target, name.to_string(), s));
        }
    }
    out
}

/// A squashfs of the small rootfs with compressor `comp`, if this mksquashfs has it.
fn try_small_squashfs(comp: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for (p, data, link) in small_rootfs("") {
        let path = root.join(&p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match (data, link) {
            (Some(d), _) => std::fs::write(&path, d).unwrap(),
            (None, Some(l)) => std::os::unix::fs::symlink(l, &path).unwrap(),
            (None, None) => std::fs::create_dir_all(&path).unwrap(),
        }
    }
    let out = dir.path().join("rootfs.squashfs");
    let status = std::process::Command::new("mksquashfs")
        .arg(&root)
        .arg(&out)
        .args([
            "-noappend",
            "-all-root",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ])
        .args(["-comp", comp, "-no-progress", "-quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("mksquashfs runs (`make test` installs squashfs-tools)");
    status.success().then(|| std::fs::read(out).unwrap())
}

fn small_squashfs(comp: &str) -> Vec<u8> {
    try_small_squashfs(comp).expect("mksquashfs -comp xz")
}

/// Sparse members as GNU tar writes them, in every format (old GNU, PAX 0.0, 0.1, 1.0).
fn gnu_tar_sparse() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sparse");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::File::create(&f).unwrap();
        for (at, data) in [
            (0u64, &b"head"[..]),
            (70_000, b"middle"),
            (200_000, b"tail"),
        ] {
            file.seek(SeekFrom::Start(at)).unwrap();
            file.write_all(data).unwrap();
        }
        file.set_len(210_000).unwrap();
    }
    let mut v = Vec::new();
    for (name, args) in [
        ("sparse-gnu", &["--format=gnu"][..]),
        (
            "sparse-pax00",
            &["--format=posix", "--sparse-version=0.0"][..],
        ),
        (
            "sparse-pax01",
            &["--format=posix", "--sparse-version=0.1"][..],
        ),
        (
            "sparse-pax10",
            &["--format=posix", "--sparse-version=1.0"][..],
        ),
    ] {
        let out = std::process::Command::new("tar")
            .args(["-S", "--owner=0", "--group=0", "--mtime=@0", "-cf", "-"])
            .args(args)
            .arg("-C")
            .arg(dir.path())
            .arg("sparse")
            .output()
            .expect("GNU tar runs");
        assert!(out.status.success(), "tar {args:?} failed");
        v.push((name.to_string(), out.stdout));
    }
    v
}

#[test]
fn fuzz_seeds() {
    let write_to = std::env::var_os("LXDIMG_FUZZ_SEEDS").map(PathBuf::from);
    let seeds = seeds();
    let mut failures = Vec::new();
    for (target, name, data) in &seeds {
        let f = harness::target(target).expect("a known target");
        if let Err(msg) = run(f, data) {
            failures.push(format!("{target}/{name}: {msg}"));
        }
        if let Some(dir) = &write_to {
            let d = dir.join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("seed-{name}")), data).unwrap();
        }
    }
    for (target, _) in harness::TARGETS {
        assert!(
            seeds.iter().any(|(t, _, _)| t == target),
            "no seed for the fuzz target {target}"
        );
    }
    println!(
        "{} seeds{}",
        seeds.len(),
        write_to.map_or(String::new(), |d| format!(" written to {}", d.display()))
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Every fixture, in every format, checked against its golden report and at every chunking.
//!
//! Golden reports live in `tests/golden/NAME.json`; `UPDATE_GOLDEN=1 cargo test --test fixtures`
//! rewrites them (review the diff).

mod common;
use common::*;
use sha2::{Digest, Sha256};

fn sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// (name, files)
fn fixtures() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let gnu = unified_tar(TarFlavor::Gnu, METADATA, false);
    let half = gnu.len() / 2;
    let mut multi = gzip(&gnu[..half]);
    multi.extend(gzip(&gnu[half..]));
    let mut trailing = gzip(&gnu);
    trailing.extend_from_slice(&[0x55; 4096]);
    let gz = gzip(&gnu);
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0xff;
    let meta = metadata_tar(METADATA);
    let no_rootfs = tar(
        &[Member::File("metadata.yaml", METADATA.as_bytes())],
        TarFlavor::Gnu,
    );
    let no_meta = tar(
        &[Member::Dir("rootfs"), Member::File("rootfs/hello", b"hi\n")],
        TarFlavor::Gnu,
    );
    let bad_yaml = tar(
        &[
            Member::File(
                "metadata.yaml",
                b"architecture: x86_64\ncreation_date: \"1458040200\"\n",
            ),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    let bad_arch = tar(
        &[
            Member::File("metadata.yaml", b"architecture: X86_64\ncreation_date: 1\n"),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    let no_date = tar(
        &[
            Member::File("metadata.yaml", b"architecture: arm64\nproperties: {}\n"),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    let symlink_meta = tar(
        &[
            Member::File("real.yaml", METADATA.as_bytes()),
            Member::Symlink("metadata.yaml", "real.yaml"),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    let bz_named = tar(
        &[
            Member::File("BZh9-notes.txt", b"x"),
            Member::File("metadata.yaml", METADATA.as_bytes()),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    let vm = tar(
        &[
            Member::File("metadata.yaml", METADATA.as_bytes()),
            Member::File("rootfs.img", &qcow2()),
        ],
        TarFlavor::Gnu,
    );
    let dates = "architecture: x86_64\ncreation_date: 1900000000\nexpiry_date: 1000\ntemplates:\n  etc/motd:\n    when: [boot]\n    template: motd.tpl\n";
    let odd = tar(
        &[
            Member::File("metadata.yaml", dates.as_bytes()),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    vec![
        ("unified-gzip", vec![gz.clone()]),
        ("unified-gzip-multimember", vec![multi]),
        ("unified-bzip2", vec![bzip2(&gnu)]),
        ("unified-xz", vec![xz(&gnu)]),
        ("unified-lzma", vec![lzma(&gnu)]),
        ("unified-zstd", vec![zstd(&gnu)]),
        ("unified-tar-gnu", vec![gnu.clone()]),
        (
            "unified-tar-ustar",
            vec![unified_tar(TarFlavor::Ustar, METADATA, false)],
        ),
        (
            "unified-tar-pax",
            vec![unified_tar(TarFlavor::Pax, METADATA, false)],
        ),
        (
            "unified-dot-prefix-xz",
            vec![xz(&unified_tar(TarFlavor::Gnu, METADATA, true))],
        ),
        (
            "unified-v7-gzip",
            vec![gzip(&unified_tar(TarFlavor::V7, METADATA, false))],
        ),
        (
            "unified-v7-plain",
            vec![unified_tar(TarFlavor::V7, METADATA, false)],
        ),
        ("unified-vm-qcow2", vec![gzip(&vm)]),
        ("split-squashfs", vec![xz(&meta), squashfs()]),
        ("split-qcow2", vec![xz(&meta), qcow2()]),
        (
            "split-tarball",
            vec![
                xz(&meta),
                xz(&tar(&members_of(&rootfs_members("")), TarFlavor::Gnu)),
            ],
        ),
        (
            "split-garbage-rootfs",
            vec![gzip(&meta), b"this is not a rootfs at all".to_vec()],
        ),
        ("split-empty-rootfs", vec![gzip(&meta), Vec::new()]),
        ("bad-empty", vec![Vec::new()]),
        ("bad-text", vec![b"hello, I am not an image\n".to_vec()]),
        ("bad-gzip-magic-only", vec![vec![0x1f, 0x8b]]),
        ("bad-truncated-gzip", vec![gz[..gz.len() / 2].to_vec()]),
        ("bad-trailing-junk", vec![trailing]),
        ("bad-gzip-crc", vec![bad_crc]),
        ("bad-no-rootfs", vec![gzip(&no_rootfs)]),
        ("bad-no-metadata", vec![gzip(&no_meta)]),
        ("bad-yaml-type", vec![gzip(&bad_yaml)]),
        ("bad-arch", vec![gzip(&bad_arch)]),
        ("bad-no-creation-date", vec![gzip(&no_date)]),
        ("bad-symlink-metadata", vec![gzip(&symlink_meta)]),
        ("bad-bz-named-first-member", vec![bz_named]),
        ("bad-dates-and-templates", vec![gzip(&odd)]),
        ("bad-truncated-tar", vec![gnu[..gnu.len() - 5000].to_vec()]),
    ]
}

fn json(r: &lxdimg::Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

#[test]
fn golden_reports_at_every_chunking() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut failures = Vec::new();
    for (name, files) in fixtures() {
        let refs: Vec<&[u8]> = files.iter().map(|f| f.as_slice()).collect();
        let whole = inspect(&refs);
        // The fingerprint is SHA-256 of the file(s) as given, whatever else the report says.
        assert_eq!(
            whole.fingerprint.as_deref(),
            Some(sha(&refs).as_str()),
            "{name}: fingerprint"
        );
        assert_eq!(whole.files.len(), refs.len());
        for (f, bytes) in whole.files.iter().zip(&refs) {
            assert_eq!(f.size, bytes.len() as u64, "{name}: size");
            assert_eq!(
                f.sha256.as_deref(),
                Some(sha(&[bytes]).as_str()),
                "{name}: per-file sha256"
            );
        }
        let want = json(&whole);
        let path = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&want).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
        } else {
            match std::fs::read_to_string(&path) {
                Ok(golden) if golden == text => {}
                Ok(_) => failures.push(format!("{name}: report differs from {} (UPDATE_GOLDEN=1 to rewrite, then review)\n{text}", path.display())),
                Err(e) => failures.push(format!("{name}: {}: {e}", path.display())),
            }
        }
        for size in [1usize, 7, 511, 512, 513, 65536] {
            let got = json(&inspect_with(&refs, || size));
            assert_eq!(
                got, want,
                "{name}: report differs when pushed in {size}-byte chunks"
            );
        }
        for seed in [1u64, 0xdead_beef] {
            let got = json(&inspect_with(&refs, random_plan(seed)));
            assert_eq!(
                got, want,
                "{name}: report differs with random chunk plan {seed}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verdicts_of_key_fixtures() {
    let f: std::collections::HashMap<_, _> = fixtures().into_iter().collect();
    let r = |name: &str| {
        let refs: Vec<&[u8]> = f[name].iter().map(|x| x.as_slice()).collect();
        inspect(&refs)
    };
    let err = |name: &str| r(name).verdicts["lxd-5.0"].error.clone();
    for ok in [
        "unified-gzip",
        "unified-bzip2",
        "unified-xz",
        "unified-lzma",
        "unified-zstd",
        "unified-tar-pax",
        "split-squashfs",
        "unified-v7-gzip",
    ] {
        let rep = r(ok);
        assert!(
            rep.verdicts["lxd-5.0"].is_accepted(),
            "{ok}: {:?}",
            rep.verdicts["lxd-5.0"]
        );
        assert_eq!(rep.architecture.as_deref(), Some("x86_64"), "{ok}");
        assert_eq!(rep.templates.len(), 2, "{ok}");
        assert!(rep.templates.iter().all(|t| t.present), "{ok}");
    }
    assert_eq!(
        r("split-qcow2").image_type,
        Some(lxdimg::ImageType::VirtualMachine)
    );
    assert_eq!(
        r("unified-vm-qcow2").image_type,
        Some(lxdimg::ImageType::VirtualMachine)
    );
    assert_eq!(err("bad-empty").as_deref(), Some("EOF"));
    assert_eq!(err("bad-text").as_deref(), Some("Unsupported compression"));
    assert_eq!(
        err("unified-v7-plain").as_deref(),
        Some("Unsupported compression")
    );
    assert_eq!(
        err("bad-gzip-magic-only").as_deref(),
        Some("Metadata tarball is missing metadata.yaml")
    );
    assert_eq!(
        err("bad-no-rootfs").as_deref(),
        Some("Invalid instance type")
    );
    assert_eq!(
        err("bad-no-metadata").as_deref(),
        Some("Metadata tarball is missing metadata.yaml")
    );
    assert_eq!(
        err("bad-arch").as_deref(),
        Some("Architecture isn't supported: X86_64")
    );
    assert_eq!(
        err("bad-no-creation-date").as_deref(),
        Some("Missing creation date")
    );
    assert_eq!(err("bad-symlink-metadata").as_deref(), Some("EOF"));
    assert_eq!(
        r("bad-symlink-metadata").verdicts["lxd-5.21"]
            .error
            .as_deref(),
        Some("Cannot read non-regular file \"metadata.yaml\"")
    );
    assert_eq!(
        err("bad-bz-named-first-member").as_deref(),
        Some("Metadata tarball is missing metadata.yaml")
    );
    assert_eq!(
        err("split-garbage-rootfs").as_deref(),
        Some("Unsupported compression")
    );
    assert_eq!(err("split-empty-rootfs").as_deref(), Some("EOF"));
    assert_eq!(
        err("bad-yaml-type").as_deref(),
        Some("yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `1458040200` into int64")
    );
    // LXD's import stops early: these are accepted, but lxdimg reports the damage.
    for (name, code) in [
        ("bad-truncated-gzip", "decode-error"),
        ("bad-trailing-junk", "trailing-data"),
        ("bad-gzip-crc", "decode-error"),
        ("bad-truncated-tar", "tar-error"),
    ] {
        let rep = r(name);
        assert!(rep.verdicts["lxd-5.0"].is_accepted(), "{name}");
        assert!(
            rep.findings.iter().any(|f| f.code == code),
            "{name}: expected finding {code}: {:?}",
            rep.findings
        );
    }
    let odd = r("bad-dates-and-templates");
    let codes: Vec<_> = odd.findings.iter().map(|f| f.code.as_str()).collect();
    for c in [
        "expiry-before-creation",
        "expired",
        "template-trigger-unknown",
        "template-path-not-absolute",
        "template-file-missing",
        "properties-missing",
    ] {
        assert!(codes.contains(&c), "missing finding {c} in {codes:?}");
    }
    // The verdict of a big image is known long before its end.
    let xzr = r("unified-xz");
    assert!(xzr.verdict_offset.unwrap() < xzr.files[0].size || xzr.files[0].size < 65536);
}

#[test]
fn creatable_verdicts() {
    let f: std::collections::HashMap<_, _> = fixtures().into_iter().collect();
    let c = |name: &str| {
        let refs: Vec<&[u8]> = f[name].iter().map(|x| x.as_slice()).collect();
        inspect(&refs).verdicts["lxd-5.0"].creatable.clone()
    };
    for ok in [
        "unified-gzip",
        "unified-xz",
        "unified-zstd",
        "unified-bzip2",
        "unified-lzma",
        "unified-tar-gnu",
        "split-squashfs",
        "split-tarball",
    ] {
        assert_eq!(c(ok).ok, Some(true), "{ok}: {:?}", c(ok));
    }
    assert_eq!(
        c("bad-truncated-gzip").code,
        Some(lxdimg::CreatableCode::DecodeError)
    );
    assert_eq!(
        c("bad-gzip-crc").code,
        Some(lxdimg::CreatableCode::DecodeError)
    );
    assert_eq!(
        c("bad-trailing-junk").code,
        Some(lxdimg::CreatableCode::TrailingData)
    );
    assert_eq!(
        c("bad-truncated-tar").code,
        Some(lxdimg::CreatableCode::TarError)
    );
    assert_eq!(
        c("bad-text").code,
        Some(lxdimg::CreatableCode::ImportRejected)
    );
    assert_eq!(c("split-qcow2").ok, None);
    assert_eq!(
        c("split-qcow2").code,
        Some(lxdimg::CreatableCode::VirtualMachine)
    );
    // An arm64 image on an x86_64 host imports, but cannot become an instance.
    let arm = tar(
        &[
            Member::File("metadata.yaml", b"architecture: arm64\ncreation_date: 1\n"),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    let r = inspect(&[&arm]);
    assert!(r.verdicts["lxd-5.0"].is_accepted());
    assert_eq!(
        r.verdicts["lxd-5.0"].creatable.code,
        Some(lxdimg::CreatableCode::Architecture)
    );
    let i686 = tar(
        &[
            Member::File("metadata.yaml", b"architecture: i386\ncreation_date: 1\n"),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    assert_eq!(
        inspect(&[&i686]).verdicts["lxd-5.0"].creatable.ok,
        Some(true)
    );
}

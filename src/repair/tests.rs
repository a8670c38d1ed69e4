//! The repair plan over every class, on synthetic images: each broken metadata tarball is
//! repaired, and the core accepts the result with no error finding.

use super::*;
use crate::make::{metadata_tarball, probe::normalize as _n};
use crate::{Inspector, Options, Severity};

const GOOD: &str = "architecture: x86_64\ncreation_date: 1704067200\nproperties:\n  description: d\n  os: debian\n  release: bookworm\ntemplates:\n  /etc/hostname:\n    when: [create, copy]\n    template: hostname.tpl\n";
const NOW: i64 = 1_800_000_000;

/// (name, kind, link, data)
fn tarball(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for &(name, kind, link, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn rootfs() -> Vec<u8> {
    tarball(&[(
        "./etc/os-release",
        b'0',
        "",
        b"ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )])
}

fn inspect(meta: &[u8], rootfs: &[u8]) -> Report {
    let mut i = Inspector::new(Options::default());
    i.push(meta);
    i.start_rootfs().unwrap();
    i.push(rootfs);
    i.finish()
}

fn clean(r: &Report) -> bool {
    r.verdicts.iter().all(|(_, v)| v.accepted == Some(true))
        && r.findings.iter().all(|f| f.severity != Severity::Error)
}

fn repair(meta: &[u8]) -> (Plan, Report) {
    let root = rootfs();
    let before = inspect(meta, &root);
    let mut reader = MetaReader::new(ExpansionLimits {
        max_decoded: 1 << 30,
        max_ratio: 100,
    });
    for c in meta.chunks(100) {
        reader.push(c);
    }
    let parts = reader.finish();
    let p = plan(&parts, &before, NOW, None).unwrap_or_else(|e| panic!("{e}"));
    let out = metadata_tarball(&p.new_yaml, &p.templates, NOW).unwrap();
    let after = inspect(&out, &root);
    (p, after)
}

fn codes(p: &Plan) -> Vec<&str> {
    p.fixes.iter().map(|f| f.code.as_str()).collect()
}

fn with_yaml(yaml: &str) -> Vec<u8> {
    tarball(&[
        ("metadata.yaml", b'0', "", yaml.as_bytes()),
        (
            "templates/hostname.tpl",
            b'0',
            "",
            b"{{ container.name }}\n",
        ),
    ])
}

#[test]
fn every_class_is_repaired_and_accepted() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no date",
            with_yaml(&GOOD.replace("creation_date: 1704067200\n", "")),
            "refused",
        ),
        (
            "quoted date",
            with_yaml(&GOOD.replace("1704067200", "\"1704067200\"")),
            "refused",
        ),
        (
            "date after 9999",
            with_yaml(&GOOD.replace("1704067200", "253402300800")),
            "date-out-of-range",
        ),
        (
            "expiry after 9999",
            with_yaml(&format!("{GOOD}expiry_date: 999999999999\n")),
            "date-out-of-range",
        ),
        (
            "arch alias",
            with_yaml(&GOOD.replace("x86_64", "amd64v3")),
            "refused",
        ),
        (
            "arch capitals",
            with_yaml(&GOOD.replace("x86_64", "ARM64")),
            "refused",
        ),
        (
            "arch padded",
            with_yaml(&GOOD.replace("x86_64", "\" x86_64 \"")),
            "refused",
        ),
        (
            "no properties",
            with_yaml(&GOOD.replace(
                "properties:\n  description: d\n  os: debian\n  release: bookworm\n",
                "",
            )),
            "properties-missing",
        ),
        (
            "no os",
            with_yaml(&GOOD.replace("  os: debian\n", "")),
            "property-missing",
        ),
        (
            "missing file",
            with_yaml(&GOOD.replace("hostname.tpl", "nope.tpl")),
            "template-file-missing",
        ),
        (
            "case of file",
            with_yaml(&GOOD.replace("hostname.tpl", "Hostname.TPL")),
            "template-file-missing",
        ),
        (
            "path name",
            with_yaml(&GOOD.replace("template: hostname.tpl", "template: templates/hostname.tpl")),
            "template-name-invalid",
        ),
        (
            "no name",
            with_yaml(&GOOD.replace("    template: hostname.tpl\n", "")),
            "template-name-missing",
        ),
        (
            "relative path",
            with_yaml(&GOOD.replace("  /etc/hostname:", "  etc/hostname:")),
            "template-path-not-absolute",
        ),
        (
            "unknown trigger",
            with_yaml(&GOOD.replace("[create, copy]", "[Create, boot]")),
            "template-trigger-unknown",
        ),
        (
            "null rule",
            with_yaml(&format!("{GOOD}  /etc/x: null\n")),
            "template-empty",
        ),
        (
            "symlink",
            tarball(&[
                ("real.yaml", b'0', "", GOOD.as_bytes()),
                ("metadata.yaml", b'2', "real.yaml", b""),
                ("templates/hostname.tpl", b'0', "", b"x"),
            ]),
            "metadata-not-regular",
        ),
        (
            "hard link",
            tarball(&[
                ("real.yaml", b'0', "", GOOD.as_bytes()),
                ("./metadata.yaml", b'1', "real.yaml", b""),
                ("templates/hostname.tpl", b'0', "", b"x"),
            ]),
            "metadata-not-regular",
        ),
        (
            "not at root",
            tarball(&[
                ("img/metadata.yaml", b'0', "", GOOD.as_bytes()),
                ("templates/hostname.tpl", b'0', "", b"x"),
            ]),
            "refused",
        ),
        (
            "utf-16",
            {
                let mut u = vec![0xff, 0xfe];
                for c in GOOD.encode_utf16() {
                    u.extend_from_slice(&c.to_le_bytes());
                }
                tarball(&[
                    ("metadata.yaml", b'0', "", &u),
                    ("templates/hostname.tpl", b'0', "", b"x"),
                ])
            },
            "refused",
        ),
        (
            "duplicates",
            tarball(&[
                ("metadata.yaml", b'0', "", GOOD.as_bytes()),
                ("templates/hostname.tpl", b'0', "", b"x"),
                ("./metadata.yaml", b'0', "", b"architecture: AMD64\n"),
            ]),
            "metadata-duplicate",
        ),
        (
            "template symlink",
            tarball(&[
                ("metadata.yaml", b'0', "", GOOD.as_bytes()),
                ("templates/real.tpl", b'0', "", b"x"),
                ("templates/hostname.tpl", b'2', "real.tpl", b""),
            ]),
            "template-file-not-regular",
        ),
        (
            "misdetected plain tar",
            tarball(&[
                ("BZh91AY&SY", b'0', "", b"x"),
                ("metadata.yaml", b'0', "", GOOD.as_bytes()),
                ("templates/hostname.tpl", b'0', "", b"x"),
            ]),
            "lxd-misdetects-format",
        ),
    ];
    for (name, meta, code) in cases {
        let (p, after) = repair(&meta);
        assert!(codes(&p).contains(&code), "{name}: {:?}", p.fixes);
        assert!(p.unfixable.is_empty(), "{name}: {:?}", p.unfixable);
        assert!(
            clean(&after),
            "{name}: {:?} {:?}\n{}",
            after.verdicts,
            after.findings,
            p.new_yaml
        );
        assert!(!p.diff().is_empty(), "{name}");
        // Every fix says what it did.
        assert!(p.fixes.iter().all(|f| !f.what.is_empty()));
    }
}

#[test]
fn what_has_no_mechanical_fix_is_said() {
    let root = rootfs();
    let go = |meta: &[u8]| {
        let mut r = MetaReader::new(ExpansionLimits {
            max_decoded: 1 << 30,
            max_ratio: 100,
        });
        r.push(meta);
        plan(&r.finish(), &inspect(meta, &root), NOW, None)
    };
    // Broken YAML syntax.
    let e = go(&with_yaml("architecture: x86_64\n\tcreation_date: 1\n")).unwrap_err();
    assert!(e.contains("not YAML"), "{e}");
    // No metadata.yaml at all.
    assert!(go(&tarball(&[("x", b'0', "", b"y")]))
        .unwrap_err()
        .contains("no metadata.yaml"));
    // Not a tarball.
    assert!(go(b"hello").is_err());
    // An architecture no version knows, and no rootfs to read it from.
    let p = go(&with_yaml(&GOOD.replace("x86_64", "sparc"))).unwrap();
    assert!(
        p.unfixable.iter().any(|u| u.contains("sparc")),
        "{:?}",
        p.unfixable
    );
    // ...but read from the rootfs's ELF header when given.
    let meta = with_yaml(&GOOD.replace("x86_64", "sparc"));
    let mut r = MetaReader::new(ExpansionLimits {
        max_decoded: 1 << 30,
        max_ratio: 100,
    });
    r.push(&meta);
    let p = plan(&r.finish(), &inspect(&meta, &root), NOW, Some("aarch64")).unwrap();
    assert_eq!(p.metadata.architecture, "aarch64");
    // A link to nothing.
    assert!(go(&tarball(&[("metadata.yaml", b'2', "gone.yaml", b"")])).is_err());
    let _ = _n(b"./x");
}

#[test]
fn a_sound_image_needs_no_fix() {
    let (p, after) = repair(&with_yaml(GOOD));
    assert!(p.fixes.is_empty(), "{:?}", p.fixes);
    assert!(clean(&after));
}

#[test]
fn unified_edits_replace_every_old_member() {
    let meta = tarball(&[
        (
            "./metadata.yaml",
            b'0',
            "",
            b"architecture: AMD64\ncreation_date: 1\n",
        ),
        ("./templates/hostname.tpl", b'0', "", b"x"),
        ("./rootfs/etc/os-release", b'0', "", b"ID=debian\n"),
        ("./metadata.yaml", b'0', "", b"creation_date: 2\n"),
    ]);
    let mut r = MetaReader::new(ExpansionLimits {
        max_decoded: 1 << 30,
        max_ratio: 100,
    });
    r.push(&meta);
    let parts = r.finish();
    assert_eq!(parts.rootfs_members, 1);
    let mut i = Inspector::new(Options::default());
    i.push(&meta);
    let p = plan(&parts, &i.finish(), NOW, None).unwrap();
    assert!(p.unified);
    let e = p.edits(5);
    let dropped: Vec<(String, Option<u64>)> = e
        .drop
        .iter()
        .map(|t| (String::from_utf8_lossy(&t.name).into_owned(), t.occurrence))
        .collect();
    assert!(dropped.contains(&("metadata.yaml".into(), Some(0))));
    assert!(dropped.contains(&("metadata.yaml".into(), Some(1))));
    assert!(dropped.contains(&("templates/hostname.tpl".into(), Some(0))));
    assert_eq!(e.add[0].name, b"metadata.yaml");
    assert_eq!(p.metadata.architecture, "x86_64");
}

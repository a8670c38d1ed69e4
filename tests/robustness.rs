//! Malformed input never panics, hangs or allocates without bound; each problem is reported with
//! what and where.

mod common;
use common::*;

fn codes(r: &lxdimg::Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn mutated_images_never_panic() {
    let base = unified_tar(TarFlavor::Gnu, METADATA, false);
    let variants = [
        gzip(&base),
        xz(&base),
        zstd(&base),
        bzip2(&base),
        lzma(&base),
        base.clone(),
    ];
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for v in &variants {
        for _ in 0..60 {
            let mut m = v.clone();
            match rnd() % 4 {
                0 => m.truncate((rnd() as usize) % m.len()),
                1 => {
                    for _ in 0..1 + rnd() % 8 {
                        let i = (rnd() as usize) % m.len();
                        m[i] ^= 1 << (rnd() % 8);
                    }
                }
                2 => {
                    let i = (rnd() as usize) % m.len();
                    let junk: Vec<u8> = (0..rnd() % 600).map(|_| rnd() as u8).collect();
                    m.splice(i..i, junk);
                }
                _ => {
                    let i = (rnd() as usize) % m.len();
                    let n = ((rnd() as usize) % 2000).min(m.len() - i);
                    m.drain(i..i + n);
                }
            }
            let r = inspect_with(&[&m], random_plan(rnd()));
            let again = inspect(&[&m]);
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::to_value(&again).unwrap()
            );
        }
    }
}

#[test]
fn absurd_tar_fields_are_reported() {
    // A header claiming an 8 GiB entry in a 1 KiB file: truncation, at a decoded offset.
    let t = tar(
        &[Member::File("metadata.yaml", METADATA.as_bytes())],
        TarFlavor::Gnu,
    );
    let mut h = tar::Header::new_gnu();
    h.set_path("rootfs/huge").unwrap();
    h.set_size(8 << 30);
    h.set_cksum();
    let mut img = t[..512 + METADATA.len().div_ceil(512) * 512].to_vec();
    img.extend_from_slice(h.as_bytes());
    img.extend_from_slice(&[7u8; 1000]);
    let r = inspect(&[&gzip(&img)]);
    assert!(
        r.verdicts["lxd-5.0"].is_accepted(),
        "LXD stops before reading the data: {:?}",
        r.verdicts["lxd-5.0"]
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "tar-error")
        .expect("tar-error finding");
    assert!(
        f.message.contains("rootfs/huge") && f.message.contains("decoded offset"),
        "{}",
        f.message
    );

    // A corrupted checksum before the metadata: LXD's own error.
    let mut bad = unified_tar(TarFlavor::Gnu, METADATA, false);
    bad[148] = b'9';
    let r = inspect(&[&bad]);
    assert_eq!(
        r.verdicts["lxd-5.0"].error.as_deref(),
        Some("archive/tar: invalid tar header")
    );
}

#[test]
fn endless_zero_blocks_and_non_utf8_names() {
    let mut t = tar(
        &[
            Member::File("metadata.yaml", METADATA.as_bytes()),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    );
    t.extend(std::iter::repeat_n(0u8, 64 << 20));
    let r = inspect(&[&zstd(&t)]);
    assert!(r.verdicts["lxd-5.0"].is_accepted());
    assert_eq!(r.tar.as_ref().unwrap().end, lxdimg::report::TarEnd::Marker);

    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"ro\xffts\xfe");
    h.set_size(0);
    h.set_cksum();
    let mut img = tar(
        &[Member::File("metadata.yaml", METADATA.as_bytes())],
        TarFlavor::Gnu,
    );
    img.truncate(img.len() - 1024);
    img.extend_from_slice(h.as_bytes());
    img.extend_from_slice(&[0u8; 1024]);
    let r = inspect(&[&gzip(&img)]);
    assert_eq!(
        r.verdicts["lxd-5.0"].error.as_deref(),
        Some("Invalid instance type")
    );
}

#[test]
fn hostile_yaml_is_bounded() {
    for yaml in [
        "a: ".to_string() + &"[".repeat(200_000),
        "a: ".to_string() + &"{x: ".repeat(100_000),
        // Billion laughs through merge keys.
        {
            let mut y = String::from("l0: &l0 {a: b}\n");
            for i in 1..40 {
                y += &format!(
                    "l{i}: &l{i} {{<<: [*l{p}, *l{p}, *l{p}, *l{p}]}}\n",
                    p = i - 1
                );
            }
            y + "properties:\n  <<: *l39\n"
        },
    ] {
        let t = tar(
            &[
                Member::File("metadata.yaml", yaml.as_bytes()),
                Member::Dir("rootfs"),
            ],
            TarFlavor::Gnu,
        );
        let r = inspect(&[&t]);
        assert!(!r.verdicts["lxd-5.0"].is_accepted());
    }
}

#[test]
fn split_rootfs_problems() {
    let meta = xz(&metadata_tar(METADATA));
    let mut sq = squashfs();
    sq.truncate(sq.len() / 2);
    let r = inspect(&[&meta, &sq]);
    assert!(r.verdicts["lxd-5.0"].is_accepted());
    assert!(codes(&r).contains(&"squashfs-invalid"), "{:?}", r.findings);
    let r = inspect(&[&meta, b"\x00\x00garbage"]);
    assert!(codes(&r).contains(&"rootfs-unsupported"));
}

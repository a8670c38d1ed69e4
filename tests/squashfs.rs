//! squashfs rootfs checks against unsquashfs itself: every compressor this mksquashfs offers, at
//! several block sizes and option variants, each image valid (unsquashfs extracts it, lxdimg
//! finds nothing) and then corrupted inside its metadata tables (lxdimg reports
//! `squashfs-invalid` exactly when `unsquashfs -d DIR -f IMG` fails, case by case).
//! Generated at test time; skipped with a note when squashfs-tools is not installed.

mod common;

use common::*;
use lxdimg::{FindingCode, Report};
use std::path::Path;
use std::process::{Command, Stdio};

/// The compressors `mksquashfs -help` lists.
fn compressors() -> Vec<String> {
    let out = Command::new("mksquashfs").arg("-help").output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut v = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim() == "Compressors available:" {
            inside = true;
            continue;
        }
        if inside {
            let t = line.trim().trim_end_matches(" (default)");
            if !line.starts_with("\t\t\t\t") || t.is_empty() {
                break;
            }
            v.push(t.to_string());
        }
    }
    v
}

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// Files, symlinks, a hard link, an empty file, a 100 KB file, a directory with many entries
/// (its listing spans several 8 KiB metadata blocks), some xattrs when the filesystem takes them.
fn build_tree(root: &Path) {
    write(&root.join("usr/lib/os-release"), OS_RELEASE);
    std::os::unix::fs::symlink(
        "../usr/lib/os-release",
        root.join("etc/os-release").as_path(),
    )
    .or_else(|_| {
        std::fs::create_dir_all(root.join("etc"))?;
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release"))
    })
    .unwrap();
    write(&root.join("etc/hostname"), b"debian\n");
    write(&root.join("etc/empty"), b"");
    let mut x: u32 = 7;
    let big: Vec<u8> = (0..100_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 3 == 0 {
                (x % 26) as u8 + b'a'
            } else {
                b"the quick brown fox "[i % 20]
            }
        })
        .collect();
    write(&root.join("usr/bin/big"), &big);
    std::fs::hard_link(root.join("usr/bin/big"), root.join("usr/bin/big-link")).unwrap();
    for i in 0..700 {
        let name = format!("usr/share/many/entry-with-a-longish-name-{i:05}.conf");
        write(&root.join(&name), format!("value {i}\n").as_bytes());
    }
    for i in 0..40 {
        std::os::unix::fs::symlink(
            format!("../many/entry-with-a-longish-name-{i:05}.conf"),
            root.join(format!("usr/share/links-{i:02}")),
        )
        .unwrap_or(());
    }
    std::fs::create_dir_all(root.join("var/empty-dir")).unwrap();
    // xattrs, when this filesystem stores user ones (not fatal otherwise).
    let _ = Command::new("setfattr")
        .args(["-n", "user.lxdimg", "-v", "test"])
        .arg(root.join("etc/hostname"))
        .stderr(Stdio::null())
        .status();
}

fn unsquashfs_ok(img: &Path, dir: &Path) -> bool {
    let _ = std::fs::remove_dir_all(dir);
    Command::new("timeout")
        .arg("60")
        .arg("unsquashfs")
        .args(["-n", "-d"])
        .arg(dir)
        .arg("-f")
        .arg(img)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn invalid(r: &Report) -> Option<String> {
    r.findings
        .iter()
        .find(|f| f.code == FindingCode::SquashfsInvalid)
        .map(|f| f.message.clone())
}

#[test]
fn squashfs_against_unsquashfs() {
    if Command::new("mksquashfs").arg("-version").output().is_err() {
        eprintln!("squashfs-tools not installed: skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    build_tree(&root);
    let meta = xz(&metadata_tar(METADATA));
    let comps = compressors();
    assert!(comps.len() >= 2, "mksquashfs -help lists {comps:?}");

    let mut variants: Vec<(String, Vec<String>)> = Vec::new();
    for c in &comps {
        for b in ["4K", "64K", "128K", "1M"] {
            variants.push((c.clone(), vec!["-b".into(), b.into()]));
        }
        for opts in [
            &["-noI"][..],
            &["-noI", "-noD", "-noF", "-noX"],
            &["-no-fragments", "-b", "4K"],
            &["-no-xattrs", "-all-root", "-no-exports"],
            &["-always-use-fragments", "-b", "64K"],
        ] {
            variants.push((c.clone(), opts.iter().map(|s| s.to_string()).collect()));
        }
        let specific: &[&[&str]] = match c.as_str() {
            "gzip" => &[
                &["-Xcompression-level", "1"],
                &["-Xwindow-size", "8", "-b", "4K"],
            ],
            "xz" => &[
                &["-Xbcj", "x86"],
                &["-Xbcj", "x86,arm,powerpc", "-Xdict-size", "50%"],
            ],
            "lz4" => &[&["-Xhc"], &["-Xhc", "-b", "4K"]],
            "lzo" => &[
                &["-Xalgorithm", "lzo1x_1"],
                &["-Xalgorithm", "lzo1x_999", "-Xcompression-level", "9"],
            ],
            "zstd" => &[
                &["-Xcompression-level", "1"],
                &["-Xcompression-level", "22", "-b", "1M"],
            ],
            _ => &[],
        };
        for opts in specific {
            variants.push((c.clone(), opts.iter().map(|s| s.to_string()).collect()));
        }
    }

    let (mut images, mut cases, mut agree) = (0, 0, 0);
    let mut false_alarms = Vec::new();
    let mut missed = Vec::new();
    let out_dir = tmp.path().join("out");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (comp, opts) in &variants {
        let img = tmp.path().join("img.sqfs");
        let _ = std::fs::remove_file(&img);
        let st = Command::new("mksquashfs")
            .arg(&root)
            .arg(&img)
            .args([
                "-comp",
                comp,
                "-noappend",
                "-quiet",
                "-no-progress",
                "-mkfs-time",
                "1700000000",
                "-all-time",
                "1700000000",
            ])
            .args(opts)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "mksquashfs -comp {comp} {opts:?}");
        let data = std::fs::read(&img).unwrap();
        let label = format!("-comp {comp} {}", opts.join(" "));
        images += 1;
        // (a) valid: unsquashfs extracts it, lxdimg finds nothing wrong.
        assert!(unsquashfs_ok(&img, &out_dir), "unsquashfs fails on {label}");
        let r = inspect(&[&meta, &data]);
        assert_eq!(invalid(&r), None, "{label}: false alarm on a valid image");
        assert_eq!(
            r.verdicts.get("lxd-5.0").unwrap().creatable.ok,
            Some(true),
            "{label}: {:?}",
            r.verdicts.get("lxd-5.0").unwrap().creatable
        );
        // Many more mutations, without unsquashfs: lxdimg must not panic or loop.
        let (start, end) = lxdimg::rootfs::squashfs_tables_range(&data).unwrap();
        for _ in 0..40 {
            let mut bad = data.clone();
            for _ in 0..1 + rnd() % 4 {
                let p = if rnd() % 8 == 0 {
                    rnd() % 96
                } else {
                    start + rnd() % (end - start)
                };
                bad[p as usize] ^= (1 + rnd() % 255) as u8;
            }
            inspect(&[&meta, &bad]);
        }
        // (b) corrupted metadata: agree with unsquashfs, case by case.
        let dir_start = u64::from_le_bytes(data[72..80].try_into().unwrap());
        for k in 0..8 {
            let mut bad = data.clone();
            // Inode table, directory table (and what follows it), anywhere in the tables.
            let (lo, hi) = match k {
                0..=2 => (start, dir_start),
                3..=5 => (dir_start, end),
                _ => (start, end),
            };
            let at = lo + rnd() % (hi - lo).max(1);
            let flips = 1 + (rnd() % 3) as usize;
            for f in 0..flips {
                let p = (at as usize + f * 7).min(bad.len() - 1);
                bad[p] ^= (1 + rnd() % 255) as u8;
            }
            let bad_path = tmp.path().join("bad.sqfs");
            std::fs::write(&bad_path, &bad).unwrap();
            let tool_ok = unsquashfs_ok(&bad_path, &out_dir);
            let r = inspect(&[&meta, &bad]);
            let ours = invalid(&r);
            cases += 1;
            if tool_ok == ours.is_none() {
                agree += 1;
            } else if tool_ok {
                false_alarms.push(format!("{label} byte {at}: {}", ours.unwrap()));
                if let Some(d) = std::env::var_os("LXDIMG_KEEP") {
                    std::fs::copy(
                        &bad_path,
                        Path::new(&d).join(format!("fa-{}.sqfs", false_alarms.len())),
                    )
                    .ok();
                }
            } else {
                missed.push(format!("{label} byte {at}"));
                if let Some(d) = std::env::var_os("LXDIMG_KEEP") {
                    std::fs::copy(
                        &bad_path,
                        Path::new(&d).join(format!("miss-{}.sqfs", missed.len())),
                    )
                    .ok();
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    println!(
        "squashfs: {images} images ({} compressors: {}) valid and clean; {cases} corruption cases, {agree} agreements with unsquashfs, {} false alarms, {} missed",
        comps.len(),
        comps.join(" "),
        false_alarms.len(),
        missed.len()
    );
    for m in &false_alarms {
        println!("  false alarm: {m}");
    }
    for m in &missed {
        println!("  missed: {m}");
    }
    assert!(
        false_alarms.is_empty(),
        "lxdimg reports squashfs-invalid where unsquashfs succeeds"
    );
    assert!(
        agree * 100 >= cases * 95,
        "only {agree} of {cases} corruption cases agree with unsquashfs"
    );
}

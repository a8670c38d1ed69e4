//! `lxdimg stream` tree operations through the CLI (issue 11): add/remove/prune idempotence,
//! deterministic JSON, refusals, verify finding what a client would trip on, and `serve`.
//! The real LXD and Incus clients read these trees in tests/stream/real.sh.

mod common;

use common::{gzip, metadata_tar, qcow2, squashfs, unified_tar, xz, TarFlavor};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lxdimg");

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(BIN)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run lxdimg")
}

fn ok(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn meta(arch: &str, created: i64, variant: &str) -> String {
    format!(
        "architecture: {arch}\ncreation_date: {created}\nproperties:\n  architecture: {arch}\n  description: test {variant}\n  os: Testos\n  release: one\n  variant: {variant}\n  requirements.secureboot: \"false\"\ntemplates:\n  /etc/hostname:\n    when: [create]\n    template: hostname.tpl\n"
    )
}

struct Images {
    dir: tempfile::TempDir,
}

impl Images {
    fn new() -> Self {
        Images {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn unified(&self, name: &str, arch: &str, created: i64) -> PathBuf {
        self.write(
            name,
            &xz(&unified_tar(
                TarFlavor::Gnu,
                &meta(arch, created, "default"),
                false,
            )),
        )
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn products(tree: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(&tree.join("streams/v1/images.json"))).unwrap()
}

fn files_in(tree: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(tree.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn add_is_idempotent_deterministic_and_complete() {
    let im = Images::new();
    let u = im.unified("u.tar.xz", "amd64", 1_704_067_200);
    let m = im.write(
        "m.tar.gz",
        &gzip(&metadata_tar(&meta("amd64", 1_704_067_200, "sq"))),
    );
    let r = im.write("r.squashfs", &squashfs());
    let vm = im.write(
        "vm.tar.gz",
        &gzip(&metadata_tar(
            &(meta("amd64", 1_704_067_200, "sq") + "# vm\n"),
        )),
    );
    let disk = im.write("disk.qcow2", &qcow2());

    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    for t in [t1.path(), t2.path()] {
        ok(&[&"stream", &"init", &t]);
        assert!(ok(&[&"stream", &"init", &t]).contains("already a tree"));
    }
    // Same images, different order: byte-identical JSON.
    ok(&[&"stream", &"add", &t1.path(), &u, &"--alias", &"u1"]);
    ok(&[&"stream", &"add", &t1.path(), &m, &r]);
    ok(&[&"stream", &"add", &t1.path(), &vm, &disk]);
    ok(&[&"stream", &"add", &t2.path(), &vm, &disk]);
    ok(&[&"stream", &"add", &t2.path(), &m, &r]);
    ok(&[&"stream", &"add", &t2.path(), &u, &"--alias", &"u1"]);
    for f in [
        "streams/v1/images.json",
        "streams/v1/index.json",
        "index.html",
    ] {
        assert_eq!(
            read(&t1.path().join(f)),
            read(&t2.path().join(f)),
            "{f} differs with the order of adds"
        );
    }
    // A second add changes nothing, not even the file's inode.
    let before = read(&t1.path().join("streams/v1/images.json"));
    let ino = std::os::unix::fs::MetadataExt::ino(
        &std::fs::metadata(t1.path().join("streams/v1/images.json")).unwrap(),
    );
    let out = ok(&[&"stream", &"add", &t1.path(), &u, &"--alias", &"u1"]);
    assert!(out.contains("already in the tree"), "{out}");
    assert_eq!(read(&t1.path().join("streams/v1/images.json")), before);
    assert_eq!(
        ino,
        std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(t1.path().join("streams/v1/images.json")).unwrap()
        )
    );

    let p = products(t1.path());
    let prods = p["products"].as_object().unwrap();
    assert_eq!(
        prods.keys().collect::<Vec<_>>(),
        ["Testos:one:default:amd64", "Testos:one:sq:amd64"]
    );
    let unified = &prods["Testos:one:default:amd64"];
    assert_eq!(unified["aliases"], "testos/one,testos/one/default,u1");
    assert_eq!(unified["requirements"]["secureboot"], "false");
    assert_eq!(unified["lxd_requirements"]["secureboot"], "false");
    let items = unified["versions"]["20240101_0000"]["items"]
        .as_object()
        .unwrap();
    assert_eq!(
        items.keys().collect::<Vec<_>>(),
        ["incus_combined.tar.gz", "lxd_combined.tar.gz"]
    );
    assert_eq!(items["incus_combined.tar.gz"]["combined_type"], "container");
    let split = prods["Testos:one:sq:amd64"]["versions"]["20240101_0000"]["items"]
        .as_object()
        .unwrap();
    // The container and the VM share the version; their metadata items get distinct keys.
    let ftypes: Vec<&str> = split
        .values()
        .map(|i| i["ftype"].as_str().unwrap())
        .collect();
    for f in ["lxd.tar.xz", "incus.tar.xz", "squashfs", "disk-kvm.img"] {
        assert!(ftypes.contains(&f), "{ftypes:?}");
    }
    let fp_split = ok(&[&"fingerprint", &m, &r]).trim().to_string();
    let fp_vm = ok(&[&"fingerprint", &vm, &disk]).trim().to_string();
    let combined: Vec<&str> = split
        .values()
        .filter_map(|i| i.get("combined_squashfs_sha256").and_then(|v| v.as_str()))
        .collect();
    assert_eq!(combined, [fp_split.as_str(), fp_split.as_str()]);
    assert!(split
        .values()
        .any(|i| i["combined_disk-kvm-img_sha256"] == fp_vm.as_str()));
    for i in split.values().chain(items.values()) {
        let path = t1.path().join(i["path"].as_str().unwrap());
        let bytes = read(&path);
        assert_eq!(bytes.len() as u64, i["size"].as_u64().unwrap());
        assert_eq!(
            ok(&[&"fingerprint", &path]).trim(),
            i["sha256"].as_str().unwrap()
        );
    }
    let v = ok(&[&"stream", &"verify", &t1.path()]);
    assert!(
        v.ends_with("3 images, 5 files checked (LXD sees 3, Incus sees 3); 0 problems\n"),
        "{v}"
    );
    let list = ok(&[&"stream", &"list", &t1.path(), &"--format", &"json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let csv = ok(&[&"stream", &"list", &t1.path(), &"--format", &"csv"]);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // No temporary files, no lock outside the tree's root.
    assert!(
        files_in(t1.path()).iter().all(|f| !f.starts_with('.')),
        "{:?}",
        files_in(t1.path())
    );
}

#[test]
fn refusals_leave_the_tree_untouched() {
    let im = Images::new();
    let t = tempfile::tempdir().unwrap();
    ok(&[&"stream", &"init", &t.path()]);
    let before = read(&t.path().join("streams/v1/images.json"));
    // Refused by LXD (missing creation date), a launch that fails (truncated), a version clash.
    let nodate = im.write(
        "nodate.tar.xz",
        &xz(&unified_tar(
            TarFlavor::Gnu,
            "architecture: amd64\nproperties:\n  os: t\n",
            false,
        )),
    );
    let o = run(&[&"stream", &"add", &t.path(), &nodate]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Missing creation date"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let whole = gzip(&unified_tar(
        TarFlavor::Gnu,
        &meta("amd64", 1_704_067_200, "default"),
        false,
    ));
    let cut = im.write("cut.tar.gz", &whole[..whole.len() - 40]);
    let o = run(&[&"stream", &"add", &t.path(), &cut]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--allow-unlaunchable"));
    assert_eq!(read(&t.path().join("streams/v1/images.json")), before);
    assert!(files_in(t.path()).is_empty(), "{:?}", files_in(t.path()));
    // With the override it goes in, and verify says why it is a problem.
    ok(&[&"stream", &"add", &t.path(), &cut, &"--allow-unlaunchable"]);
    let o = run(&[&"stream", &"verify", &t.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Unpack failed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Another image for the same product, version and type.
    let other = im.write(
        "other.tar.xz",
        &xz(&unified_tar(
            TarFlavor::Ustar,
            &meta("amd64", 1_704_067_200, "default"),
            false,
        )),
    );
    let o = run(&[&"stream", &"add", &t.path(), &other]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds the container image"));
    // Aliases clients would split.
    let o = run(&[
        &"stream",
        &"add",
        &t.path(),
        &other,
        &"--product",
        &"p2",
        &"--alias",
        &"a, b",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("without trimming"));
    // An explicit alias already on another product of that architecture and type.
    ok(&[
        &"stream",
        &"add",
        &t.path(),
        &other,
        &"--product",
        &"p2",
        &"--alias",
        &"mine",
    ]);
    let third = im.write(
        "third.tar.xz",
        &xz(&unified_tar(
            TarFlavor::Pax,
            &meta("amd64", 1_704_067_200, "default"),
            false,
        )),
    );
    let o = run(&[
        &"stream",
        &"add",
        &t.path(),
        &third,
        &"--product",
        &"p3",
        &"--alias",
        &"mine",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already on product p2"));
}

#[test]
fn remove_and_prune() {
    let im = Images::new();
    let t = tempfile::tempdir().unwrap();
    ok(&[&"stream", &"init", &t.path()]);
    let day = 86_400;
    let mut fps = Vec::new();
    for i in 0..5 {
        let f = im.unified(&format!("u{i}.tar.xz"), "amd64", 1_704_067_200 + i * day);
        ok(&[&"stream", &"add", &t.path(), &f, &"--alias", &"rolling"]);
        fps.push(ok(&[&"fingerprint", &f]).trim().to_string());
    }
    let arm = im.unified("arm.tar.xz", "arm64", 1_704_067_200);
    ok(&[&"stream", &"add", &t.path(), &arm, &"--alias", &"rolling"]);
    assert_eq!(files_in(t.path()).len(), 6);
    // Dry run: nothing changes.
    let before = read(&t.path().join("streams/v1/images.json"));
    let out = ok(&[
        &"stream",
        &"prune",
        &t.path(),
        &"--retention",
        &"2",
        &"--dry-run",
    ]);
    assert_eq!(out.matches("would remove version").count(), 3, "{out}");
    assert_eq!(read(&t.path().join("streams/v1/images.json")), before);
    // A stray file and a leftover temporary file are unreferenced.
    std::fs::write(t.path().join("images/stray.bin"), b"x").unwrap();
    let out = ok(&[&"stream", &"prune", &t.path(), &"--retention", &"2"]);
    assert!(
        out.contains("removed unreferenced file images/stray.bin"),
        "{out}"
    );
    let p = products(t.path());
    let versions: Vec<&String> = p["products"]["Testos:one:default:amd64"]["versions"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(versions, ["20240104_0000", "20240105_0000"]);
    assert_eq!(files_in(t.path()).len(), 3);
    // Pruning again changes nothing.
    let before = read(&t.path().join("streams/v1/images.json"));
    assert_eq!(
        ok(&[&"stream", &"prune", &t.path(), &"--retention", &"2"]),
        ""
    );
    assert_eq!(read(&t.path().join("streams/v1/images.json")), before);
    // An alias removes the newest image of each product carrying it (both architectures).
    let out = ok(&[&"stream", &"remove", &t.path(), &"rolling"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(&fps[4]));
    // A fingerprint prefix removes one image and its file.
    let out = ok(&[&"stream", &"remove", &t.path(), &&fps[3][..8]]);
    assert!(out.contains(&fps[3]));
    assert!(files_in(t.path()).is_empty(), "{:?}", files_in(t.path()));
    assert!(products(t.path())["products"]
        .as_object()
        .unwrap()
        .is_empty());
    let o = run(&[&"stream", &"remove", &t.path(), &"rolling"]);
    assert_eq!(o.status.code(), Some(2));
    ok(&[&"stream", &"verify", &t.path()]);
}

#[test]
fn verify_reports_what_clients_trip_on() {
    let im = Images::new();
    let t = tempfile::tempdir().unwrap();
    ok(&[&"stream", &"init", &t.path()]);
    let m = im.write(
        "m.tar.gz",
        &gzip(&metadata_tar(&meta("amd64", 1_704_067_200, "sq"))),
    );
    let r = im.write("r.squashfs", &squashfs());
    ok(&[
        &"stream",
        &"add",
        &t.path(),
        &m,
        &r,
        &"--no-default-alias",
        &"--alias",
        &"x",
    ]);
    let path = t.path().join("streams/v1/images.json");
    let good: serde_json::Value = serde_json::from_slice(&read(&path)).unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut serde_json::Value)>)> = vec![
        (
            "different SHA256 hash",
            Box::new(|p| {
                let items = p["products"]["Testos:one:sq:amd64"]["versions"]["20240101_0000"]
                    ["items"]
                    .as_object_mut()
                    .unwrap();
                items.get_mut("squashfs").unwrap()["sha256"] = "0".repeat(64).into();
            }),
        ),
        (
            "combined SHA-256 is",
            Box::new(|p| {
                let items = p["products"]["Testos:one:sq:amd64"]["versions"]["20240101_0000"]
                    ["items"]
                    .as_object_mut()
                    .unwrap();
                items.get_mut("lxd.tar.xz").unwrap()["combined_squashfs_sha256"] =
                    "ab".repeat(32).into();
            }),
        ),
        (
            "Incus clients do not see",
            Box::new(|p| {
                let items = p["products"]["Testos:one:sq:amd64"]["versions"]["20240101_0000"]
                    ["items"]
                    .as_object_mut()
                    .unwrap();
                items.remove("incus.tar.xz");
            }),
        ),
        (
            "does not start with a YYYYMMDD",
            Box::new(|p| {
                let vs = p["products"]["Testos:one:sq:amd64"]["versions"]
                    .as_object_mut()
                    .unwrap();
                let v = vs.remove("20240101_0000").unwrap();
                vs.insert("2024-01-01".into(), v);
            }),
        ),
        (
            "do not know the architecture",
            Box::new(|p| {
                p["products"]["Testos:one:sq:amd64"]["arch"] = "amd64v3".into();
            }),
        ),
        (
            "without trimming",
            Box::new(|p| {
                p["products"]["Testos:one:sq:amd64"]["aliases"] = "x, y".into();
            }),
        ),
        (
            "different size",
            Box::new(|p| {
                let items = p["products"]["Testos:one:sq:amd64"]["versions"]["20240101_0000"]
                    ["items"]
                    .as_object_mut()
                    .unwrap();
                let n = items["squashfs"]["size"].as_u64().unwrap();
                items.get_mut("squashfs").unwrap()["size"] = (n + 1).into();
            }),
        ),
        (
            "starts with '/'",
            Box::new(|p| {
                let items = p["products"]["Testos:one:sq:amd64"]["versions"]["20240101_0000"]
                    ["items"]
                    .as_object_mut()
                    .unwrap();
                let old = items["squashfs"]["path"].as_str().unwrap().to_string();
                items.get_mut("squashfs").unwrap()["path"] = format!("/{old}").into();
            }),
        ),
        (
            "not 64 lowercase hex",
            Box::new(|p| {
                let items = p["products"]["Testos:one:sq:amd64"]["versions"]["20240101_0000"]
                    ["items"]
                    .as_object_mut()
                    .unwrap();
                let up = items["squashfs"]["sha256"].as_str().unwrap().to_uppercase();
                items.get_mut("squashfs").unwrap()["sha256"] = up.into();
            }),
        ),
    ];
    for (want, edit) in cases {
        let mut p = good.clone();
        edit(&mut p);
        std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
        let o = run(&[&"stream", &"verify", &t.path()]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{want}: {out}");
        assert!(out.contains(want), "{want}: {out}");
        assert!(
            out.contains("product Testos:one:sq:amd64"),
            "names the product: {out}"
        );
    }
    // A file that vanished.
    std::fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
    let sq = files_in(t.path())
        .into_iter()
        .find(|f| f.ends_with(".squashfs"))
        .unwrap();
    std::fs::remove_file(t.path().join("images").join(&sq)).unwrap();
    let o = run(&[&"stream", &"verify", &t.path()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Missing image file"));
    // Broken JSON is reported as the clients report it.
    std::fs::write(&path, b"{").unwrap();
    let o = run(&[&"stream", &"verify", &t.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Failed decoding products JSON"));
}

#[test]
fn serve_answers_get_and_head_inside_the_tree_only() {
    use std::io::{Read, Write};
    let t = tempfile::tempdir().unwrap();
    ok(&[
        &"stream",
        &"init",
        &t.path(),
        &"--url",
        &"https://images.example.org/lxd",
    ]);
    let html = String::from_utf8(read(&t.path().join("index.html"))).unwrap();
    assert!(html.contains(
        "lxc remote add images https://images.example.org/lxd --protocol simplestreams --public"
    ));
    assert!(html.contains(
        "incus remote add images https://images.example.org/lxd --protocol simplestreams --public"
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(
        Command::new(BIN)
            .args(["stream", "serve"])
            .arg(t.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let get = |req: &str| -> String {
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                s.write_all(req.as_bytes()).unwrap();
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("serve did not start");
    };
    let r = get("GET /streams/v1/index.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK")
            && r.contains("application/json")
            && r.contains("\"index:1.0\""),
        "{r}"
    );
    let r = get("HEAD /streams/v1/images.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    assert!(get("GET /../../etc/passwd HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get("GET /.lxdimg-stream.lock HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get("POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(40_000));
    assert!(get(&huge).starts_with("HTTP/1.1 431"));
    assert!(get("GET / HTTP/1.1\r\n\r\n").contains("LXD and Incus images"));
}

/// A tree laid out and written as canonical's `simplestream-maintainer build` writes it
/// (lxd-imagebuilder `simplestream-maintainer/stream/stream.go`: products
/// `<distro>:<release>:<arch>:<variant>` with a `distro` field and an always-present
/// `requirements` map, items keyed by file name under
/// `images/<distro>/<release>/<arch>/<variant>/<version>/`, one `lxd.tar.xz` carrying the combined
/// hash of each root, LXD items only). The tool itself is not packaged where this machine can
/// install from, so the tree is written here from that source.
#[test]
fn verify_reads_a_simplestream_maintainer_tree() {
    use sha2::Digest;
    let t = tempfile::tempdir().unwrap();
    let vdir = "images/testos/one/amd64/default/20240101_0000";
    std::fs::create_dir_all(t.path().join(vdir)).unwrap();
    let files: [(&str, Vec<u8>); 3] = [
        ("lxd.tar.xz", xz(&metadata_tar(&meta("amd64", 1_704_067_200, "default")))),
        ("rootfs.squashfs", squashfs()),
        ("disk.qcow2", qcow2()),
    ];
    let hex = |b: &[u8]| sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>();
    let combined = |root: &[u8]| {
        let mut h = sha2::Sha256::new();
        h.update(&files[0].1);
        h.update(root);
        h.finalize().iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let mut items = serde_json::Map::new();
    for (name, bytes) in &files {
        std::fs::write(t.path().join(vdir).join(name), bytes).unwrap();
        let ftype = match *name {
            "lxd.tar.xz" => "lxd.tar.xz",
            "rootfs.squashfs" => "squashfs",
            _ => "disk-kvm.img",
        };
        let mut item = serde_json::json!({"ftype": ftype, "path": format!("{vdir}/{name}"), "size": bytes.len(), "sha256": hex(bytes)});
        if *name == "lxd.tar.xz" {
            item["combined_squashfs_sha256"] = combined(&files[1].1).into();
            item["combined_disk-kvm-img_sha256"] = combined(&files[2].1).into();
        }
        items.insert(name.to_string(), item);
    }
    let product = serde_json::json!({
        "aliases": "testos/one/default,testos/one", "arch": "amd64", "distro": "testos", "os": "Testos",
        "release": "one", "release_title": "one", "variant": "default",
        "versions": {"20240101_0000": {"items": items}}, "requirements": {}
    });
    let products = serde_json::json!({"content_id": "images", "format": "products:1.0", "datatype": "image-downloads", "products": {"testos:one:amd64:default": product}});
    let index = serde_json::json!({"format": "index:1.0", "index": {"images": {"datatype": "image-downloads", "path": "streams/v1/images.json", "format": "products:1.0", "products": ["testos:one:amd64:default"]}}});
    std::fs::create_dir_all(t.path().join("streams/v1")).unwrap();
    std::fs::write(t.path().join("streams/v1/images.json"), serde_json::to_vec(&products).unwrap()).unwrap();
    std::fs::write(t.path().join("streams/v1/index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    // For LXD clients the tree is sound: both images, the core's fingerprints, no problem.
    let out = ok(&[&"stream", &"verify", &t.path(), &"--client", &"lxd"]);
    assert!(out.ends_with("2 images, 3 files checked (LXD sees 2, Incus sees 0); 0 problems\n"), "{out}");
    // Incus clients see nothing, and verify says so for each image.
    let o = run(&[&"stream", &"verify", &t.path()]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("Incus clients do not see image").count(), 2, "{out}");
    let list: serde_json::Value = serde_json::from_str(&ok(&[&"stream", &"list", &t.path(), &"--format", &"json"])).unwrap();
    let fps: Vec<&str> = list.as_array().unwrap().iter().map(|i| i["fingerprint"].as_str().unwrap()).collect();
    assert!(fps.contains(&combined(&files[1].1).as_str()) && fps.contains(&combined(&files[2].1).as_str()), "{fps:?}");
}

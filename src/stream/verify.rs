//! `lxdimg stream verify`: every file re-hashed, every combined fingerprint recomputed and every
//! image re-inspected by the core, beside the JSON checks of [`lxdimg::simplestreams::check`].

use super::{refusal, with_path, Tree};
use lxdimg::report::{ImageFormat, Report};
use lxdimg::simplestreams::{self as ss, Client, Problem};
use lxdimg::verdict::{self, Target};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The target whose verdict a client's images are checked against.
pub fn client_target(c: Client) -> &'static Target {
    match c {
        Client::Lxd => &verdict::LXD_5_0,
        Client::Incus => &verdict::INCUS_6_0,
    }
}

/// What `verify` found.
pub struct Verified {
    pub images: usize,
    pub files: usize,
    pub problems: Vec<Problem>,
    /// Per client: how many images it sees.
    pub seen: Vec<(Client, usize)>,
}

/// Re-hashes every file, recomputes every combined fingerprint, re-runs the core on every image
/// and checks the JSON against what the clients need.
pub fn verify(
    tree: &Tree,
    clients: &[Client],
    inspect: &mut dyn FnMut(&Path, Option<&Path>) -> io::Result<Report>,
) -> io::Result<Verified> {
    let l = tree.load()?;
    let mut problems = l.problems.clone();
    let mut images = 0;
    let mut files_checked = BTreeSet::new();
    let mut seen_counts = Vec::new();
    let listed: Vec<String> = l
        .index
        .index
        .values()
        .filter(|e| e.datatype == "image-downloads")
        .flat_map(|e| e.products.clone())
        .collect();
    for (ppath, products) in &l.products {
        problems.extend(ss::check(&listed, products, clients));
        for c in Client::ALL {
            seen_counts.push((c, ss::client_view(products, c).len()));
        }
        // One inspection per distinct pair of files, whichever clients see it.
        let mut reports: BTreeMap<(String, Option<String>), Option<Report>> = BTreeMap::new();
        let mut fingerprints = BTreeSet::new();
        for c in Client::ALL {
            for s in ss::client_view(products, c) {
                let v = &products.products[&s.product].versions[&s.version];
                let m = &v.items[&s.metadata_item];
                let r = s.root_item.as_ref().map(|k| &v.items[k]);
                let prob = |msg: String| Problem {
                    product: Some(s.product.clone()),
                    version: Some(s.version.clone()),
                    item: Some(s.metadata_item.clone()),
                    message: msg,
                };
                if fingerprints.insert(s.fingerprint.clone()) {
                    images += 1;
                }
                let paths: Vec<PathBuf> = std::iter::once(m)
                    .chain(r)
                    .map(|i| tree.root.join(i.path.trim_start_matches('/')))
                    .collect();
                if std::iter::once(m)
                    .chain(r)
                    .any(|i| ss::path_problem(&i.path).is_some())
                {
                    continue; // reported by check()
                }
                let missing: Vec<&PathBuf> = paths.iter().filter(|p| !p.is_file()).collect();
                if !missing.is_empty() {
                    for p in missing {
                        problems.push(prob(format!(
                            "Missing image file {:?}",
                            p.strip_prefix(&tree.root).unwrap_or(p).display()
                        )));
                    }
                    continue;
                }
                let key = (m.path.clone(), r.map(|r| r.path.clone()));
                if !reports.contains_key(&key) {
                    let got = match inspect(&paths[0], paths.get(1).map(PathBuf::as_path)) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            problems.push(prob(format!("cannot read the image: {e}")));
                            None
                        }
                    };
                    reports.insert(key.clone(), got);
                }
                let Some(report) = reports[&key].as_ref() else {
                    continue;
                };
                for (i, item) in std::iter::once(m).chain(r).enumerate() {
                    files_checked.insert(item.path.clone());
                    let f = &report.files[i.min(report.files.len() - 1)];
                    let key = if i == 0 {
                        s.metadata_item.clone()
                    } else {
                        s.root_item.clone().unwrap_or_default()
                    };
                    let ip = |msg: String| Problem {
                        product: Some(s.product.clone()),
                        version: Some(s.version.clone()),
                        item: Some(key.clone()),
                        message: msg,
                    };
                    if f.size != item.size {
                        problems.push(ip(format!("File {:?} has a different size than listed in the index ({} bytes, listed {})", item.path, f.size, item.size)));
                    }
                    if f.sha256.as_deref() != Some(item.sha256.as_str()) {
                        problems.push(ip(format!("File {:?} has a different SHA256 hash than listed in the index ({}, listed {}): every client's download fails (Hash mismatch)", item.path, f.sha256.as_deref().unwrap_or("?"), item.sha256)));
                    }
                }
                let fp = report.fingerprint.clone().unwrap_or_default();
                if fp != s.fingerprint {
                    problems.push(prob(format!(
                        "the fingerprint clients record is {} but the files' combined SHA-256 is {fp} (LXD ≥ 5.0.9 and Incus refuse it: Image fingerprint mismatch)",
                        s.fingerprint
                    )));
                }
                if report.image_type.is_some_and(|t| t != s.image_type) {
                    problems.push(prob(format!(
                        "{} clients take this image as a {} but it is a {}",
                        c.name(),
                        s.image_type.as_str(),
                        report.image_type.map(|t| t.as_str()).unwrap_or("?")
                    )));
                }
                if report.format == ImageFormat::Split && s.root_item.is_none()
                    || report.format == ImageFormat::Unified && s.root_item.is_some()
                {
                    problems.push(prob(
                        "the item's ftype does not match the file (unified vs split)".into(),
                    ));
                }
                if let (Some(a), true) = (&report.architecture, report.metadata.is_some()) {
                    if *a != s.architecture {
                        problems.push(prob(format!(
                            "the product's architecture is {} but metadata.yaml says {a}",
                            s.architecture
                        )));
                    }
                }
                let t = client_target(c);
                if let Some(why) = refusal(report, &[t], false) {
                    problems.push(prob(format!("{} clients: {why}", c.name())));
                }
            }
        }
        // Files no image uses (orphan roots, deltas): still hashed.
        for (pname, p) in &products.products {
            for (vname, v) in &p.versions {
                for (k, item) in &v.items {
                    if files_checked.contains(&item.path) || ss::path_problem(&item.path).is_some()
                    {
                        continue;
                    }
                    files_checked.insert(item.path.clone());
                    let path = tree.root.join(item.path.trim_start_matches('/'));
                    let ip = |msg: String| Problem {
                        product: Some(pname.clone()),
                        version: Some(vname.clone()),
                        item: Some(k.clone()),
                        message: msg,
                    };
                    match hash_file(&path, None) {
                        Ok((sha, size)) => {
                            if size != item.size {
                                problems.push(ip(format!("File {:?} has a different size than listed in the index ({size} bytes, listed {})", item.path, item.size)));
                            }
                            if sha != item.sha256 {
                                problems.push(ip(format!("File {:?} has a different SHA256 hash than listed in the index ({sha}, listed {})", item.path, item.sha256)));
                            }
                        }
                        Err(_) => problems.push(ip(format!("Missing image file {:?}", item.path))),
                    }
                }
            }
        }
        let _ = ppath;
    }
    problems.sort_by(|a, b| {
        (&a.product, &a.version, &a.item, &a.message)
            .cmp(&(&b.product, &b.version, &b.item, &b.message))
    });
    problems.dedup();
    Ok(Verified {
        images,
        files: files_checked.len(),
        problems,
        seen: seen_counts,
    })
}

/// SHA-256 and size of a file, copying it to `copy` on the way if given.
pub(super) fn hash_file(p: &Path, mut copy: Option<&mut File>) -> io::Result<(String, u64)> {
    let mut f = File::open(p).map_err(with_path(p))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 128 << 10];
    let mut n_total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(with_path(p)(e)),
        };
        h.update(&buf[..n]);
        if let Some(w) = copy.as_mut() {
            w.write_all(&buf[..n])?;
        }
        n_total += n as u64;
    }
    Ok((
        h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        n_total,
    ))
}

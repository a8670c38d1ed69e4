//! `lxdimg stream`: a simplestreams tree in a directory, for any static web server.
//!
//! The tree is `streams/v1/index.json`, `streams/v1/images.json`, `images/` (content-addressed
//! files, named by their own SHA-256) and `index.html`. The item families and the client view are
//! the core's ([`lxdimg::simplestreams`]); this file does the I/O: copying files in, atomic JSON
//! writes (temporary file, fsync, rename), one writer at a time (an exclusive lock on
//! `.lxdimg-stream.lock`).

pub mod cli;
mod html;
pub mod serve;
mod verify;

use html::{index_html, version_to_rfc2822};
use verify::hash_file;
pub use verify::verify;

use lxdimg::report::{FileRole, ImageFormat, Report};
use lxdimg::simplestreams::{
    self as ss, Client, Index, Item, Problem, ProductFields, Products, PublishedFile,
    PublishedFiles, RootFtype, SeenImage,
};
use lxdimg::verdict::Target;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A tree on disk.
pub struct Tree {
    root: PathBuf,
}

const LOCK: &str = ".lxdimg-stream.lock";
const IMAGES: &str = "images";

fn err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

fn with_path(p: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(with_path(path))
}

fn json_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(v).expect("JSON of plain data");
    s.push(b'\n');
    s
}

/// The products file of a tree and where it came from.
pub struct Loaded {
    pub index: Index,
    /// `(path in the index, products)`, one per index entry clients use.
    pub products: Vec<(String, Products)>,
    pub problems: Vec<Problem>,
}

impl Tree {
    pub fn new(root: &Path) -> Tree {
        Tree {
            root: root.to_path_buf(),
        }
    }

    pub fn init(&self, url: Option<&str>) -> io::Result<bool> {
        fs::create_dir_all(self.root.join("streams/v1")).map_err(with_path(&self.root))?;
        fs::create_dir_all(self.root.join(IMAGES)).map_err(with_path(&self.root))?;
        let _lock = self.lock()?;
        let idx = self.root.join(ss::INDEX_PATH);
        if idx.exists() {
            return Ok(false);
        }
        let products = Products::default();
        if let Some(u) = url {
            write_atomic(
                &self.root.join(".lxdimg-stream-url"),
                format!("{u}\n").as_bytes(),
            )?;
        }
        self.save(&products)?;
        Ok(true)
    }

    fn lock(&self) -> io::Result<File> {
        let p = self.root.join(LOCK);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(with_path(&p))?;
        f.lock().map_err(with_path(&p))?;
        Ok(f)
    }

    fn require(&self) -> io::Result<()> {
        if self.root.join(ss::INDEX_PATH).is_file() {
            Ok(())
        } else {
            Err(err(
                io::ErrorKind::NotFound,
                format!(
                    "{}: no {} (not a simplestreams tree; `lxdimg stream init {}` makes one)",
                    self.root.display(),
                    ss::INDEX_PATH,
                    self.root.display()
                ),
            ))
        }
    }

    /// Reads the index and every products file clients would use. JSON errors are problems (as
    /// clients report them), not I/O errors.
    pub fn load(&self) -> io::Result<Loaded> {
        self.require()?;
        let mut problems = Vec::new();
        let mut prob = |m: String| {
            problems.push(Problem {
                product: None,
                version: None,
                item: None,
                message: m,
            })
        };
        let ip = self.root.join(ss::INDEX_PATH);
        let text = fs::read(&ip).map_err(with_path(&ip))?;
        let index: Index = match serde_json::from_slice(&text) {
            Ok(i) => i,
            Err(e) => {
                prob(format!(
                    "Failed decoding stream JSON from \"{}\": {e}",
                    ss::INDEX_PATH
                ));
                return Ok(Loaded {
                    index: Index::default(),
                    products: vec![],
                    problems,
                });
            }
        };
        let mut products = Vec::new();
        for e in index.index.values() {
            if e.datatype != "image-downloads" || e.products.is_empty() {
                continue;
            }
            if let Some(m) = ss::path_problem(&e.path) {
                prob(format!("{}: products {m}", ss::INDEX_PATH));
                continue;
            }
            let pp = self.root.join(&e.path);
            match fs::read(&pp) {
                Ok(t) => match serde_json::from_slice::<Products>(&t) {
                    Ok(p) => products.push((e.path.clone(), p)),
                    Err(err) => prob(format!(
                        "Failed decoding products JSON from \"{}\": {err}",
                        e.path
                    )),
                },
                Err(err) => prob(format!("Unable to fetch {}: {err}", e.path)),
            }
        }
        if products.is_empty() && index.index.values().all(|e| e.products.is_empty()) {
            // An empty tree (after `init`): the products file is still ours to extend.
            let pp = self.root.join(ss::PRODUCTS_PATH);
            if let Ok(t) = fs::read(&pp) {
                match serde_json::from_slice::<Products>(&t) {
                    Ok(p) => products.push((ss::PRODUCTS_PATH.to_string(), p)),
                    Err(e) => prob(format!(
                        "Failed decoding products JSON from \"{}\": {e}",
                        ss::PRODUCTS_PATH
                    )),
                }
            }
        }
        Ok(Loaded {
            index,
            products,
            problems,
        })
    }

    /// The products file this tool maintains.
    fn products_for_write(&self) -> io::Result<Products> {
        let l = self.load()?;
        if let Some(p) = l.problems.first() {
            return Err(err(io::ErrorKind::InvalidData, p.to_string()));
        }
        match l.products.into_iter().find(|(p, _)| p == ss::PRODUCTS_PATH) {
            Some((_, p)) => Ok(p),
            None => Ok(Products::default()),
        }
    }

    /// Writes the products file, then the index (so the index never names a missing product),
    /// then `index.html`. Deterministic: `updated` is the newest version's date.
    fn save(&self, products: &Products) -> io::Result<()> {
        write_atomic(&self.root.join(ss::PRODUCTS_PATH), &json_bytes(products))?;
        let newest = products
            .products
            .values()
            .flat_map(|p| p.versions.keys())
            .max()
            .map(|v| version_to_rfc2822(v));
        let index = ss::index_for(products, newest.flatten());
        write_atomic(&self.root.join(ss::INDEX_PATH), &json_bytes(&index))?;
        let url = fs::read_to_string(self.root.join(".lxdimg-stream-url")).ok();
        write_atomic(
            &self.root.join("index.html"),
            index_html(products, url.as_deref().map(str::trim)).as_bytes(),
        )
    }
}

/// Every image some client sees, once (LXD's view first, then what only Incus sees).
pub fn union_view(products: &Products) -> Vec<SeenImage> {
    let mut out: Vec<SeenImage> = Vec::new();
    let mut seen = BTreeSet::new();
    for c in Client::ALL {
        for s in ss::client_view(products, c) {
            if seen.insert((s.product.clone(), s.version.clone(), s.fingerprint.clone())) {
                out.push(s);
            }
        }
    }
    out
}

/// What `add` was asked to do.
pub struct AddOptions {
    pub aliases: Vec<String>,
    pub product: Option<String>,
    pub no_default_alias: bool,
    pub targets: Vec<&'static Target>,
    pub allow_unlaunchable: bool,
    pub os: Option<String>,
    pub release: Option<String>,
    pub variant: Option<String>,
    pub release_title: Option<String>,
    pub support_eol: Option<String>,
    pub now: i64,
}

/// The outcome of `add`.
pub struct Added {
    pub fingerprint: String,
    pub product: String,
    pub version: String,
    pub changed: bool,
    pub aliases: Vec<String>,
    pub unseen: Vec<Client>,
    /// Default aliases left out: `(alias, the product that has it)`.
    pub skipped: Vec<(String, String)>,
}

/// Why the core's report keeps an image out of the tree, or `None`.
pub fn refusal(
    report: &Report,
    targets: &[&'static Target],
    allow_unlaunchable: bool,
) -> Option<String> {
    for t in targets {
        let v = &report.verdicts[t.key];
        match v.accepted {
            Some(true) => {}
            Some(false) => {
                return Some(format!(
                    "{} refuses this image: {}",
                    t.label,
                    v.error.as_deref().unwrap_or("?")
                ))
            }
            None => {
                return Some(format!(
                    "{}: lxdimg cannot judge this image: {}",
                    t.label,
                    v.reason.as_deref().unwrap_or("?")
                ))
            }
        }
        if allow_unlaunchable {
            continue;
        }
        if v.creatable.ok == Some(false) {
            return Some(format!(
                "{} imports this image but `init`/`launch` fails: {} (--allow-unlaunchable publishes it anyway)",
                t.label,
                v.creatable.error.as_deref().unwrap_or("?")
            ));
        }
        if let Some(f) = report.findings.iter().find(|f| f.code.breaks_first_start()) {
            return Some(format!(
                "instances of this image fail at first start: {} (--allow-unlaunchable publishes it anyway)",
                f.message
            ));
        }
    }
    None
}

fn ext_of(report: &Report, role: FileRole) -> &'static str {
    let f = report.files.iter().find(|f| f.role == role);
    let c = f.map(|f| f.compression.as_str()).unwrap_or("unknown");
    let tar = match c {
        "gzip" => ".tar.gz",
        "bzip2" => ".tar.bz2",
        "xz" => ".tar.xz",
        "lzma" => ".tar.lzma",
        "zstd" => ".tar.zst",
        "lz4" => ".tar.lz4",
        "tar" => ".tar",
        "squashfs" => ".squashfs",
        "qcow2" => ".qcow2",
        _ => ".bin",
    };
    match (role, tar) {
        (FileRole::Metadata, t) => match t {
            ".tar.gz" => ".meta.tar.gz",
            ".tar.bz2" => ".meta.tar.bz2",
            ".tar.xz" => ".meta.tar.xz",
            ".tar.lzma" => ".meta.tar.lzma",
            ".tar.zst" => ".meta.tar.zst",
            ".tar" => ".meta.tar",
            ".squashfs" => ".meta.squashfs",
            _ => ".meta.bin",
        },
        (FileRole::Rootfs, t) if t.starts_with(".tar") => match t {
            ".tar.gz" => ".rootfs.tar.gz",
            ".tar.bz2" => ".rootfs.tar.bz2",
            ".tar.xz" => ".rootfs.tar.xz",
            ".tar.lzma" => ".rootfs.tar.lzma",
            ".tar.zst" => ".rootfs.tar.zst",
            ".tar.lz4" => ".rootfs.tar.lz4",
            _ => ".rootfs.tar",
        },
        (_, t) => t,
    }
}

/// Copies `src` into the tree as `images/<sha256><ext>`, checking that its bytes are still the
/// ones the core inspected. A file already there (same name, same size) is kept.
fn planned(sha256: &str, size: u64, ext: &str) -> PublishedFile {
    PublishedFile {
        path: format!("{IMAGES}/{sha256}{ext}"),
        sha256: sha256.into(),
        size,
    }
}

fn copy_in(tree: &Path, src: &Path, f: &PublishedFile) -> io::Result<()> {
    let (sha256, size) = (f.sha256.as_str(), f.size);
    let dest = tree.join(&f.path);
    if fs::metadata(&dest)
        .map(|m| m.len() == size)
        .unwrap_or(false)
    {
        return Ok(());
    }
    let tmp = tree
        .join(IMAGES)
        .join(format!(".{sha256}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut w = File::create(&tmp).map_err(with_path(&tmp))?;
        let (got, n_total) = hash_file(src, Some(&mut w))?;
        if got != sha256 || n_total != size {
            return Err(err(
                io::ErrorKind::InvalidData,
                format!("{} changed while it was being added (SHA-256 {got}, {n_total} bytes; inspected {sha256}, {size} bytes)", src.display()),
            ));
        }
        w.sync_all().map_err(with_path(&tmp))?;
        fs::rename(&tmp, &dest).map_err(with_path(&dest))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Adds an inspected image to the tree.
pub fn add(
    tree: &Tree,
    file: &Path,
    rootfs: Option<&Path>,
    report: &Report,
    o: &AddOptions,
) -> io::Result<Added> {
    tree.require()?;
    if let Some(why) = refusal(report, &o.targets, o.allow_unlaunchable) {
        return Err(err(io::ErrorKind::InvalidData, why));
    }
    let fingerprint = report
        .fingerprint
        .clone()
        .ok_or_else(|| err(io::ErrorKind::InvalidData, "no fingerprint"))?;
    let meta = report
        .metadata
        .as_ref()
        .ok_or_else(|| err(io::ErrorKind::InvalidData, "the image has no metadata"))?;
    let image_type = report
        .image_type
        .ok_or_else(|| err(io::ErrorKind::InvalidData, "the image type is not known"))?;
    let canonical = report
        .architecture
        .clone()
        .ok_or_else(|| err(io::ErrorKind::InvalidData, "the architecture is not known"))?;
    for a in &o.aliases {
        if let Some(m) = ss::alias_problem(a) {
            return Err(err(io::ErrorKind::InvalidInput, m));
        }
    }
    let mut fields = ProductFields::from_metadata(
        &canonical,
        &meta.architecture,
        &meta.properties,
        meta.expiry_date,
    );
    if let Some(v) = &o.os {
        fields.os = v.clone();
    }
    if let Some(v) = &o.release {
        fields.release = v.clone();
    }
    if let Some(v) = &o.variant {
        fields.variant = v.clone();
    }
    if let Some(v) = &o.release_title {
        fields.release_title = Some(v.clone());
    }
    if let Some(v) = &o.support_eol {
        let ok = v.len() == 10 && ss::version_listed(&v.replace('-', ""));
        if !ok {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("--support-eol {v:?} is not YYYY-MM-DD"),
            ));
        }
        fields.support_eol = Some(v.clone());
    }
    let product = o.product.clone().unwrap_or_else(|| fields.product_name());
    if product.is_empty() || product.chars().any(|c| c.is_control()) {
        return Err(err(
            io::ErrorKind::InvalidInput,
            format!("product name {product:?} is not usable"),
        ));
    }
    let created = if meta.creation_date > 0 {
        meta.creation_date
    } else {
        o.now
    };
    let version = ss::version_name(created)
        .or_else(|| ss::version_name(o.now))
        .expect("the clock is in range");
    let mut aliases = Vec::new();
    if !o.no_default_alias {
        aliases.extend(fields.default_aliases());
    }
    aliases.extend(o.aliases.iter().cloned());

    let _lock = tree.lock()?;
    let mut products = tree.products_for_write()?;
    // Already here (any product, any version)? Then only new aliases change the tree.
    let sha = |role: FileRole| {
        report
            .files
            .iter()
            .find(|f| f.role == role)
            .and_then(|f| Some((f.sha256.clone()?, f.size)))
    };
    let files = match report.format {
        ImageFormat::Unified => {
            let (s, n) = sha(FileRole::Unified).expect("a unified report has its file");
            PublishedFiles::Unified(planned(&s, n, ext_of(report, FileRole::Unified)))
        }
        ImageFormat::Split => {
            let (ms, mn) = sha(FileRole::Metadata).expect("metadata file");
            let (rs, rn) = sha(FileRole::Rootfs).expect("rootfs file");
            let squashfs = report
                .files
                .iter()
                .any(|f| f.role == FileRole::Rootfs && f.compression.as_str() == "squashfs");
            PublishedFiles::Split {
                metadata: planned(&ms, mn, ext_of(report, FileRole::Metadata)),
                rootfs: planned(&rs, rn, ext_of(report, FileRole::Rootfs)),
                root: RootFtype::for_rootfs(image_type, squashfs),
            }
        }
    };
    let (items, unseen) = ss::items_for(&fingerprint, image_type, &files);
    // A version name already holding this image elsewhere keeps its place (idempotent add).
    let existing = union_view(&products)
        .into_iter()
        .find(|s| s.fingerprint == fingerprint);
    let (product, version) = match existing {
        Some(s) => (s.product, s.version),
        None => (product, version),
    };
    // A version holds one image per type (as on the public servers: a container and a VM); two
    // would leave clients to pick one of them by item order.
    if let Some(other) = union_view(&products).into_iter().find(|s| {
        s.product == product
            && s.version == version
            && s.image_type == image_type
            && s.fingerprint != fingerprint
    }) {
        return Err(err(
            io::ErrorKind::InvalidInput,
            format!(
                "version {version} of product {product} already holds the {} image {}; a new build needs a newer creation_date (the version name comes from it), or --product to publish it as another product",
                image_type.as_str(),
                other.fingerprint
            ),
        ));
    }
    // An alias already on another product of the same architecture and type would be resolved to
    // only one of them: an explicit one is refused, a default one is left out.
    let taken: Vec<(String, String)> = union_view(&products)
        .into_iter()
        .filter(|s| {
            s.product != product && s.architecture == canonical && s.image_type == image_type
        })
        .flat_map(|s| s.aliases.into_iter().map(move |a| (a, s.product.clone())))
        .collect();
    let mut skipped = Vec::new();
    let mut kept = Vec::new();
    for a in aliases {
        match taken.iter().find(|(t, _)| *t == a) {
            Some((_, other)) if o.aliases.contains(&a) => {
                return Err(err(
                    io::ErrorKind::InvalidInput,
                    format!("alias {a:?} is already on product {other} ({canonical}, {}); `lxdimg stream remove` that image first, or choose another alias", image_type.as_str()),
                ))
            }
            Some((_, other)) => skipped.push((a, other.clone())),
            None => kept.push(a),
        }
    }
    let aliases = kept;
    // Files first, then the JSON that names them.
    match (&files, rootfs) {
        (PublishedFiles::Unified(u), _) => copy_in(&tree.root, file, u)?,
        (
            PublishedFiles::Split {
                metadata,
                rootfs: r,
                ..
            },
            Some(rootfs),
        ) => {
            copy_in(&tree.root, file, metadata)?;
            copy_in(&tree.root, rootfs, r)?;
        }
        (PublishedFiles::Split { .. }, None) => unreachable!("a split report has a rootfs"),
    }
    let changed = ss::add_items(
        &mut products,
        &product,
        &fields,
        &aliases,
        &version,
        "lxdimg",
        items,
    );
    if changed {
        tree.save(&products)?;
    }
    Ok(Added {
        fingerprint,
        product,
        version,
        changed,
        aliases,
        unseen,
        skipped,
    })
}

/// Removes the images a fingerprint (prefix) or alias names; returns their fingerprints.
pub fn remove(tree: &Tree, what: &str) -> io::Result<Vec<String>> {
    let _lock = tree.lock()?;
    let mut products = tree.products_for_write()?;
    let view = union_view(&products);
    let by_fp: Vec<&SeenImage> = view
        .iter()
        .filter(|s| what.len() >= 4 && s.fingerprint.starts_with(what))
        .collect();
    let fps: BTreeSet<String> = if !by_fp.is_empty() {
        let set: BTreeSet<String> = by_fp.iter().map(|s| s.fingerprint.clone()).collect();
        if set.len() > 1 {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("more than one image matches the partial fingerprint {what:?}"),
            ));
        }
        set
    } else {
        // An alias names the newest version of each product that carries it (as clients resolve it).
        let mut newest: BTreeMap<&str, &SeenImage> = BTreeMap::new();
        for s in view.iter().filter(|s| s.aliases.iter().any(|a| a == what)) {
            let e = newest.entry(&s.product).or_insert(s);
            if s.version > e.version {
                *e = s;
            }
        }
        let newest_versions: BTreeSet<(&str, &str)> = newest
            .values()
            .map(|s| (s.product.as_str(), s.version.as_str()))
            .collect();
        view.iter()
            .filter(|s| {
                newest_versions.contains(&(s.product.as_str(), s.version.as_str()))
                    && s.aliases.iter().any(|a| a == what)
            })
            .map(|s| s.fingerprint.clone())
            .collect()
    };
    if fps.is_empty() {
        return Err(err(
            io::ErrorKind::NotFound,
            format!("no image with the fingerprint or alias {what:?}"),
        ));
    }
    let before = referenced(&products);
    for p in products.products.values_mut() {
        for v in p.versions.values_mut() {
            drop_image_items(&mut v.items, &fps);
        }
        p.versions.retain(|_, v| !v.items.is_empty());
    }
    products.products.retain(|_, p| !p.versions.is_empty());
    tree.save(&products)?;
    let after = referenced(&products);
    for f in before.difference(&after) {
        let _ = fs::remove_file(tree.root.join(f));
    }
    Ok(fps.into_iter().collect())
}

/// Drops the metadata items of the given images and the root items no remaining metadata item
/// pairs with.
fn drop_image_items(items: &mut BTreeMap<String, Item>, fps: &BTreeSet<String>) {
    let is_meta = |i: &Item| {
        matches!(
            i.ftype.as_str(),
            "lxd.tar.xz" | "incus.tar.xz" | "lxd_combined.tar.gz" | "incus_combined.tar.gz"
        )
    };
    items.retain(|_, i| {
        if i.ftype.ends_with("_combined.tar.gz") {
            !fps.contains(&i.sha256)
        } else if is_meta(i) {
            // A metadata file shared by a container and a VM keeps the other's field.
            ss::combined_fields(i).is_empty() || ss::clear_combined(i, fps)
        } else {
            true
        }
    });
    let metas: Vec<Item> = items.values().filter(|i| is_meta(i)).cloned().collect();
    items.retain(|_, i| match RootFtype::from_ftype(&i.ftype) {
        Some(root) => metas.iter().any(|m| root.combined(m).is_some()),
        None => true,
    });
}

/// Every file path the products file references.
fn referenced(products: &Products) -> BTreeSet<String> {
    products
        .products
        .values()
        .flat_map(|p| p.versions.values())
        .flat_map(|v| v.items.values())
        .map(|i| i.path.trim_start_matches('/').to_string())
        .collect()
}

/// What `prune` did (or would do).
pub struct Pruned {
    pub versions: Vec<(String, String)>,
    pub missing_items: Vec<(String, String, String)>,
    pub files: Vec<String>,
}

/// Keeps the newest `retention` versions of each product, drops items whose file is missing, and
/// deletes every file under `images/` nothing references.
pub fn prune(tree: &Tree, retention: usize, dry_run: bool) -> io::Result<Pruned> {
    let _lock = tree.lock()?;
    let mut products = tree.products_for_write()?;
    let mut out = Pruned {
        versions: vec![],
        missing_items: vec![],
        files: vec![],
    };
    for (pname, p) in products.products.iter_mut() {
        for (vname, v) in p.versions.iter_mut() {
            v.items.retain(|k, i| {
                let ok = ss::path_problem(&i.path).is_some()
                    || tree.root.join(i.path.trim_start_matches('/')).is_file();
                if !ok {
                    out.missing_items
                        .push((pname.clone(), vname.clone(), k.clone()));
                }
                ok
            });
        }
        let mut names: Vec<String> = p.versions.keys().cloned().collect();
        names.sort_by(|a, b| b.cmp(a));
        for old in names.iter().skip(retention) {
            p.versions.remove(old);
            out.versions.push((pname.clone(), old.clone()));
        }
        p.versions.retain(|_, v| !v.items.is_empty());
    }
    products.products.retain(|_, p| !p.versions.is_empty());
    let keep = referenced(&products);
    let dir = tree.root.join(IMAGES);
    for e in fs::read_dir(&dir).map_err(with_path(&dir))? {
        let e = e?;
        let rel = format!("{IMAGES}/{}", e.file_name().to_string_lossy());
        if e.file_type()?.is_file() && !keep.contains(&rel) {
            out.files.push(rel);
        }
    }
    out.files.sort();
    if !dry_run {
        tree.save(&products)?;
        for f in &out.files {
            fs::remove_file(tree.root.join(f)).map_err(with_path(&tree.root.join(f)))?;
        }
    }
    Ok(out)
}

/// One line of `list`.
#[derive(serde::Serialize)]
pub struct Listed {
    pub fingerprint: String,
    pub aliases: Vec<String>,
    pub product: String,
    pub version: String,
    pub os: String,
    pub release: String,
    pub variant: String,
    pub architecture: String,
    #[serde(rename = "type")]
    pub image_type: &'static str,
    pub size: u64,
    pub clients: Vec<Client>,
}

pub fn list(tree: &Tree) -> io::Result<Vec<Listed>> {
    let l = tree.load()?;
    if let Some(p) = l.problems.first() {
        return Err(err(io::ErrorKind::InvalidData, p.to_string()));
    }
    let mut out = Vec::new();
    for (_, products) in &l.products {
        let views: Vec<(Client, Vec<SeenImage>)> = Client::ALL
            .iter()
            .map(|c| (*c, ss::client_view(products, *c)))
            .collect();
        for s in union_view(products) {
            let p = &products.products[&s.product];
            let clients = views
                .iter()
                .filter(|(_, v)| {
                    v.iter().any(|x| {
                        x.fingerprint == s.fingerprint
                            && x.version == s.version
                            && x.product == s.product
                    })
                })
                .map(|(c, _)| *c)
                .collect();
            out.push(Listed {
                fingerprint: s.fingerprint.clone(),
                aliases: s.aliases.clone(),
                product: s.product.clone(),
                version: s.version.clone(),
                os: p.os.clone(),
                release: p.release.clone(),
                variant: p.variant.clone().unwrap_or_default(),
                architecture: s.architecture.clone(),
                image_type: s.image_type.as_str(),
                size: s.size,
                clients,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! Simplestreams as LXD and Incus clients read it (facts §6): the item families an image is
//! published as, and what each client makes of a products file.
//!
//! One definition serves every shell: the CLI's `lxdimg stream` tree and the edge worker's
//! `/streams/v1/*.json` both build their items with [`items_for`] and read trees back with
//! [`client_view`] and [`check`]. No I/O here: the shells pass hashes, sizes and paths in.
//!
//! * LXD reads only `lxd.tar.xz` / `lxd_combined.tar.gz` metadata items, Incus only
//!   `incus.tar.xz` / `incus_combined.tar.gz`; both read the root ftypes `squashfs`,
//!   `root.tar.xz`, `disk-kvm.img`, `disk1.img`, `uefi1.img` (facts §6.2, §8.2).
//! * A split image's fingerprint is a field of its metadata item chosen by the root's ftype
//!   (`combined_squashfs_sha256`, `combined_rootxz_sha256` then `combined_sha256`, …); a unified
//!   image's fingerprint is its item's `sha256` (§6.3). LXD takes every `lxd_combined.tar.gz` as a
//!   container; Incus reads `combined_type` (§8.2), so a unified VM is an Incus-only item.
//! * A product whose `arch` the client does not know, or a version whose name does not start with
//!   `YYYYMMDD`, is skipped silently by the client (§6.1).

use crate::arch::{self, ArchRules};
use crate::report::ImageType;
use crate::verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where every client looks first.
pub const INDEX_PATH: &str = "streams/v1/index.json";
/// The products file the index points to.
pub const PRODUCTS_PATH: &str = "streams/v1/images.json";

/// `streams/v1/index.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Index {
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub index: BTreeMap<String, IndexEntry>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One entry of the index; clients use those with `datatype: image-downloads` and a non-empty
/// `products` list.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct IndexEntry {
    #[serde(default)]
    pub datatype: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The products file (`streams/v1/images.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Products {
    #[serde(default)]
    pub content_id: String,
    #[serde(default)]
    pub datatype: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub products: BTreeMap<String, Product>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for Products {
    fn default() -> Self {
        Products {
            content_id: "images".into(),
            datatype: "image-downloads".into(),
            format: "products:1.0".into(),
            products: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// One product: an OS release, variant and architecture, with its versions.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Product {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<String>,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub release: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_eol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// LXD's image requirements (`secureboot`, `cgroup`, `nesting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxd_requirements: Option<BTreeMap<String, String>>,
    /// Incus's (and newer LXD's) image requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub versions: BTreeMap<String, Version>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One version of a product, named `YYYYMMDD_hhmm`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Version {
    #[serde(default)]
    pub items: BTreeMap<String, Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubname: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One file of a version.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Item {
    #[serde(default)]
    pub ftype: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_rootxz_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_squashfs_sha256: Option<String>,
    #[serde(
        rename = "combined_disk-kvm-img_sha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub combined_disk_kvm_img_sha256: Option<String>,
    #[serde(
        rename = "combined_disk1-img_sha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub combined_disk1_img_sha256: Option<String>,
    #[serde(
        rename = "combined_uefi1-img_sha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub combined_uefi1_img_sha256: Option<String>,
    /// Incus: the type of a unified (`incus_combined.tar.gz`) image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_type: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The clients of a simplestreams tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Client {
    /// LXD (5.0.2 Debian build and newer): `lxd.*` metadata items.
    Lxd,
    /// Incus: `incus.*` metadata items.
    Incus,
}

impl Client {
    pub const ALL: [Client; 2] = [Client::Lxd, Client::Incus];

    pub fn name(self) -> &'static str {
        match self {
            Client::Lxd => "LXD",
            Client::Incus => "Incus",
        }
    }
    /// The unified and split metadata ftypes this client reads.
    pub fn metadata_ftypes(self) -> (&'static str, &'static str) {
        match self {
            Client::Lxd => ("lxd_combined.tar.gz", "lxd.tar.xz"),
            Client::Incus => ("incus_combined.tar.gz", "incus.tar.xz"),
        }
    }
    /// The architecture names this client's oldest supported build knows.
    pub fn arch_rules(self) -> ArchRules {
        match self {
            Client::Lxd => verdict::LXD_5_0.arch,
            Client::Incus => verdict::INCUS_6_0.arch,
        }
    }
}

/// What a split image's rootfs is published as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFtype {
    Squashfs,
    RootTarXz,
    DiskKvmImg,
    Disk1Img,
    Uefi1Img,
}

impl RootFtype {
    pub const ALL: [RootFtype; 5] = [
        RootFtype::Squashfs,
        RootFtype::RootTarXz,
        RootFtype::DiskKvmImg,
        RootFtype::Disk1Img,
        RootFtype::Uefi1Img,
    ];
    pub fn ftype(self) -> &'static str {
        match self {
            RootFtype::Squashfs => "squashfs",
            RootFtype::RootTarXz => "root.tar.xz",
            RootFtype::DiskKvmImg => "disk-kvm.img",
            RootFtype::Disk1Img => "disk1.img",
            RootFtype::Uefi1Img => "uefi1.img",
        }
    }
    pub fn from_ftype(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.ftype() == s)
    }
    pub fn image_type(self) -> ImageType {
        match self {
            RootFtype::Squashfs | RootFtype::RootTarXz => ImageType::Container,
            _ => ImageType::VirtualMachine,
        }
    }
    /// The root ftype for a split rootfs: a VM disk, a squashfs, or any tarball (LXD detects
    /// the real compression after download; the ftype is a label).
    pub fn for_rootfs(image_type: ImageType, squashfs: bool) -> Self {
        match (image_type, squashfs) {
            (ImageType::VirtualMachine, _) => RootFtype::DiskKvmImg,
            (_, true) => RootFtype::Squashfs,
            _ => RootFtype::RootTarXz,
        }
    }
    /// The metadata item's combined field a client reads for this root (in order of preference).
    pub fn combined(self, item: &Item) -> Option<&str> {
        match self {
            RootFtype::Squashfs => item.combined_squashfs_sha256.as_deref(),
            RootFtype::RootTarXz => item
                .combined_rootxz_sha256
                .as_deref()
                .or(item.combined_sha256.as_deref()),
            RootFtype::DiskKvmImg => item.combined_disk_kvm_img_sha256.as_deref(),
            RootFtype::Disk1Img => item.combined_disk1_img_sha256.as_deref(),
            RootFtype::Uefi1Img => item.combined_uefi1_img_sha256.as_deref(),
        }
    }
    fn set_combined(self, item: &mut Item, fp: &str) {
        let v = Some(fp.to_string());
        match self {
            RootFtype::Squashfs => item.combined_squashfs_sha256 = v,
            RootFtype::RootTarXz => {
                item.combined_rootxz_sha256 = v.clone();
                item.combined_sha256 = v;
            }
            RootFtype::DiskKvmImg => item.combined_disk_kvm_img_sha256 = v,
            RootFtype::Disk1Img => item.combined_disk1_img_sha256 = v,
            RootFtype::Uefi1Img => item.combined_uefi1_img_sha256 = v,
        }
    }
}

/// One file of an image to publish, as the shell stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// Path relative to the tree's root (the base URL), e.g. `images/<sha256>.squashfs`.
    pub path: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub size: u64,
}

/// The files of an image to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedFiles {
    Unified(PublishedFile),
    Split {
        metadata: PublishedFile,
        rootfs: PublishedFile,
        root: RootFtype,
    },
}

/// The items of one image, both families. Returns the items keyed by ftype, and the clients that
/// cannot see the image this way (a unified VM: LXD takes every `lxd_combined.tar.gz` as a
/// container, so no LXD item is written for it).
pub fn items_for(
    fingerprint: &str,
    image_type: ImageType,
    files: &PublishedFiles,
) -> (BTreeMap<String, Item>, Vec<Client>) {
    let mut items = BTreeMap::new();
    let mut unseen = Vec::new();
    let file_item = |ftype: &str, f: &PublishedFile| Item {
        ftype: ftype.into(),
        path: f.path.clone(),
        sha256: f.sha256.clone(),
        size: f.size,
        ..Item::default()
    };
    match files {
        PublishedFiles::Unified(f) => {
            for client in Client::ALL {
                let (ftype, _) = client.metadata_ftypes();
                let mut item = file_item(ftype, f);
                match client {
                    Client::Lxd if image_type == ImageType::VirtualMachine => {
                        unseen.push(client);
                        continue;
                    }
                    Client::Lxd => {}
                    Client::Incus => item.combined_type = Some(image_type.as_str().into()),
                }
                items.insert(ftype.to_string(), item);
            }
        }
        PublishedFiles::Split {
            metadata,
            rootfs,
            root,
        } => {
            for client in Client::ALL {
                let (_, ftype) = client.metadata_ftypes();
                let mut item = file_item(ftype, metadata);
                root.set_combined(&mut item, fingerprint);
                items.insert(ftype.to_string(), item);
            }
            items.insert(root.ftype().into(), file_item(root.ftype(), rootfs));
        }
    }
    (items, unseen)
}

/// `YYYYMMDD_hhmm` (UTC) of a Unix time, or `None` outside the years 1000..9999 (a version name
/// must start with eight digits).
pub fn version_name(unix: i64) -> Option<String> {
    if !(-30_610_224_000..=253_402_300_799).contains(&unix) {
        return None;
    }
    let (y, mo, d, secs) = crate::report::civil(unix);
    Some(format!(
        "{y:04}{mo:02}{d:02}_{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60
    ))
}

/// `YYYY-MM-DD` (UTC), as `support_eol` is written.
pub fn date_name(unix: i64) -> Option<String> {
    version_name(unix).map(|v| format!("{}-{}-{}", &v[0..4], &v[4..6], &v[6..8]))
}

/// Whether a version name is one the client lists (the first 8 characters a `YYYYMMDD` date).
pub fn version_listed(name: &str) -> bool {
    let Some(date) = name.get(..8) else {
        return false;
    };
    if !date.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (m, d): (u32, u32) = (
        date[4..6].parse().unwrap_or(0),
        date[6..8].parse().unwrap_or(0),
    );
    let y: i64 = date[..4].parse().unwrap_or(0);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// The product fields an image's metadata proposes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductFields {
    pub arch: String,
    pub os: String,
    pub release: String,
    pub variant: String,
    pub release_title: Option<String>,
    pub release_codename: Option<String>,
    pub version: Option<String>,
    pub support_eol: Option<String>,
    pub requirements: BTreeMap<String, String>,
}

impl ProductFields {
    /// From an image's metadata: `os`, `release`, `variant` (default `default`), `release_title`,
    /// `release_codename`, `version` properties, `support_eol` from the expiry date, and
    /// `requirements` from `requirements.*` properties. `arch` is the name the product is
    /// published under: the `architecture` property (as the public images and
    /// `incus-simplestreams` do) when every client knows it as the same architecture, so
    /// `ubuntu/24.04/amd64` stays `amd64`; else the canonical name.
    pub fn from_metadata(
        canonical_arch: &str,
        written_arch: &str,
        properties: &BTreeMap<String, String>,
        expiry_date: i64,
    ) -> Self {
        let prop = |k: &str| properties.get(k).filter(|v| !v.trim().is_empty()).cloned();
        let _ = written_arch;
        let arch = properties
            .get("architecture")
            .map(String::as_str)
            .filter(|a| arch_known_as(a, canonical_arch))
            .unwrap_or(canonical_arch)
            .to_string();
        let requirements = properties
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("requirements.")?.to_string(), v.clone())))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        ProductFields {
            arch,
            os: prop("os").unwrap_or_else(|| "unknown".into()),
            release: prop("release").unwrap_or_else(|| "unknown".into()),
            variant: prop("variant").unwrap_or_else(|| "default".into()),
            release_title: prop("release_title"),
            release_codename: prop("release_codename"),
            version: prop("version"),
            support_eol: (expiry_date > 0).then(|| date_name(expiry_date)).flatten(),
            requirements,
        }
    }

    /// The conventional product name `<os>:<release>:<variant>:<arch>` (no `:`, `,` or blanks
    /// inside a part).
    pub fn product_name(&self) -> String {
        [&self.os, &self.release, &self.variant, &self.arch]
            .map(|s| clean_part(s))
            .join(":")
    }

    /// The default aliases: `<os>/<release>/<variant>`, and `<os>/<release>` for the `default`
    /// variant (the public image servers' convention), the OS lowercased.
    pub fn default_aliases(&self) -> Vec<String> {
        let os = clean_part(&self.os.to_lowercase());
        let release = clean_part(&self.release);
        let mut v = Vec::new();
        if self.variant == "default" {
            v.push(format!("{os}/{release}"));
        }
        v.push(format!("{os}/{release}/{}", clean_part(&self.variant)));
        v
    }
}

fn clean_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ':' || c == ',' || c == '/' || c.is_whitespace() || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect()
}

/// Whether every client knows `name` as the architecture `canonical`.
fn arch_known_as(name: &str, canonical: &str) -> bool {
    Client::ALL
        .iter()
        .all(|c| arch::lookup(c.arch_rules(), name).map(|(_, n)| n) == Some(canonical))
}

/// Why an alias cannot be published: clients split `aliases` on `,` without trimming, and an
/// alias with blanks or a `/`-less … is still fine; only `,`, blanks and control characters break.
pub fn alias_problem(alias: &str) -> Option<String> {
    if alias.is_empty() {
        return Some("an alias cannot be empty".into());
    }
    if alias.len() > 255 {
        return Some(format!("alias of {} bytes (255 at most)", alias.len()));
    }
    if let Some(c) = alias
        .chars()
        .find(|c| *c == ',' || c.is_whitespace() || c.is_control())
    {
        return Some(format!(
            "alias {:?} contains {:?}: clients split aliases on ',' without trimming",
            alias, c
        ));
    }
    None
}

/// Merges aliases into a product's comma-separated list, keeping the order and dropping
/// duplicates.
pub fn merge_aliases(existing: Option<&str>, add: &[String]) -> Option<String> {
    let mut all: Vec<String> = existing
        .unwrap_or("")
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    for a in add {
        if !all.contains(a) {
            all.push(a.clone());
        }
    }
    (!all.is_empty()).then(|| all.join(","))
}

/// Adds an image's items to `products` under `product`/`version`, filling the product's fields on
/// first use. Items whose key is taken by another image's file in the same version get a key
/// suffixed with the short fingerprint (clients only iterate the values). Returns whether
/// anything changed (false: the image is already there).
pub fn add_items(
    products: &mut Products,
    product: &str,
    fields: &ProductFields,
    aliases: &[String],
    version: &str,
    label: &str,
    items: BTreeMap<String, Item>,
) -> bool {
    let p = products
        .products
        .entry(product.to_string())
        .or_insert_with(|| Product {
            arch: fields.arch.clone(),
            os: fields.os.clone(),
            release: fields.release.clone(),
            release_title: Some(
                fields
                    .release_title
                    .clone()
                    .unwrap_or(fields.release.clone()),
            ),
            release_codename: fields.release_codename.clone(),
            variant: Some(fields.variant.clone()),
            version: fields.version.clone(),
            support_eol: fields.support_eol.clone(),
            ..Product::default()
        });
    let mut changed = false;
    let merged = merge_aliases(p.aliases.as_deref(), aliases);
    if merged != p.aliases {
        p.aliases = merged;
        changed = true;
    }
    if !fields.requirements.is_empty() {
        // LXD 5.0 reads `lxd_requirements`, Incus and newer LXD `requirements`.
        let r = Some(fields.requirements.clone());
        if p.requirements != r || p.lxd_requirements != r {
            p.requirements = r.clone();
            p.lxd_requirements = r;
            changed = true;
        }
    }
    if fields.support_eol.is_some() && p.support_eol != fields.support_eol {
        p.support_eol = fields.support_eol.clone();
        changed = true;
    }
    let v = p.versions.entry(version.to_string()).or_insert_with(|| {
        changed = true;
        Version {
            label: Some(label.to_string()),
            ..Version::default()
        }
    });
    for (key, item) in items {
        if v.items.values().any(|i| *i == item) {
            continue;
        }
        changed = true;
        // The same metadata file for another root (a container and a VM built together): one
        // item with both combined fields, as the public image servers publish it.
        if let Some(same) = v
            .items
            .values_mut()
            .find(|i| i.ftype == item.ftype && i.path == item.path && i.sha256 == item.sha256)
        {
            for (field, value) in combined_fields(&item) {
                set_combined_field(same, field, value);
            }
            continue;
        }
        // Keys are free-form (clients iterate the values): when two images' items would share
        // one, both are named after their image, so the result does not depend on the order of adds.
        if let Some(existing) = v.items.remove(&key) {
            v.items
                .insert(format!("{key}-{}", short_owner(&existing)), existing);
        }
        let taken = v.items.keys().any(|k| k.starts_with(&format!("{key}-")));
        let key = if taken {
            format!("{key}-{}", short_owner(&item))
        } else {
            key
        };
        v.items.insert(key, item);
    }
    changed
}

/// The image an item belongs to, shortened: its combined fingerprint, else its own hash.
fn short_owner(item: &Item) -> String {
    let fields = combined_fields(item);
    let owner = fields.first().map_or(item.sha256.as_str(), |f| f.1);
    owner.chars().take(12).collect()
}

fn set_combined_field(item: &mut Item, field: &str, value: &str) {
    let v = Some(value.to_string());
    match field {
        "combined_sha256" => item.combined_sha256 = v,
        "combined_rootxz_sha256" => item.combined_rootxz_sha256 = v,
        "combined_squashfs_sha256" => item.combined_squashfs_sha256 = v,
        "combined_disk-kvm-img_sha256" => item.combined_disk_kvm_img_sha256 = v,
        "combined_disk1-img_sha256" => item.combined_disk1_img_sha256 = v,
        "combined_uefi1-img_sha256" => item.combined_uefi1_img_sha256 = v,
        _ => {}
    }
}

/// Clears the combined fields that name one of `fps`; returns whether any is left.
pub fn clear_combined(item: &mut Item, fps: &std::collections::BTreeSet<String>) -> bool {
    for f in [
        &mut item.combined_sha256,
        &mut item.combined_rootxz_sha256,
        &mut item.combined_squashfs_sha256,
        &mut item.combined_disk_kvm_img_sha256,
        &mut item.combined_disk1_img_sha256,
        &mut item.combined_uefi1_img_sha256,
    ] {
        if f.as_ref().is_some_and(|v| fps.contains(v)) {
            *f = None;
        }
    }
    !combined_fields(item).is_empty()
}

/// The index for a products file: one `images` entry listing every product.
pub fn index_for(products: &Products, updated: Option<String>) -> Index {
    let mut index = BTreeMap::new();
    index.insert(
        "images".to_string(),
        IndexEntry {
            datatype: "image-downloads".into(),
            path: PRODUCTS_PATH.into(),
            format: "products:1.0".into(),
            updated,
            products: products.products.keys().cloned().collect(),
            extra: BTreeMap::new(),
        },
    );
    Index {
        format: "index:1.0".into(),
        index,
        extra: BTreeMap::new(),
    }
}

/// An image a server (the edge worker) publishes, as its index stores it.
#[derive(Deserialize, Debug, Clone)]
pub struct ServedImage {
    pub fingerprint: String,
    /// `container` or `virtual-machine`.
    #[serde(rename = "type")]
    pub image_type: String,
    /// Canonical architecture.
    pub architecture: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub creation_date: i64,
    #[serde(default)]
    pub expiry_date: i64,
    /// The version date when the creation date cannot name one (upload time).
    #[serde(default)]
    pub fallback_date: i64,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub files: Vec<ServedFile>,
}

/// One file of a [`ServedImage`].
#[derive(Deserialize, Debug, Clone)]
pub struct ServedFile {
    /// `unified`, `metadata` or `rootfs`.
    pub role: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// The core's compression name (`squashfs`, `qcow2`, `xz`, …).
    #[serde(default)]
    pub compression: String,
}

/// The products file of a server that publishes each image as its own product
/// (`<os>:<release>:<variant>:<arch>:<short fingerprint>`, one version, the image's own aliases).
/// Images whose files are incomplete are left out.
pub fn products_for_server(images: &[ServedImage]) -> Products {
    let mut products = Products::default();
    for img in images {
        let t = if img.image_type == "virtual-machine" {
            ImageType::VirtualMachine
        } else {
            ImageType::Container
        };
        let file = |role: &str| {
            img.files
                .iter()
                .find(|f| f.role == role)
                .map(|f| PublishedFile {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size,
                })
        };
        let files = match (file("unified"), file("metadata"), file("rootfs")) {
            (Some(u), _, _) => PublishedFiles::Unified(u),
            (None, Some(metadata), Some(rootfs)) => {
                let squashfs = img
                    .files
                    .iter()
                    .any(|f| f.role == "rootfs" && f.compression == "squashfs");
                PublishedFiles::Split {
                    metadata,
                    rootfs,
                    root: RootFtype::for_rootfs(t, squashfs),
                }
            }
            _ => continue,
        };
        let fields = ProductFields::from_metadata(
            &img.architecture,
            &img.architecture,
            &img.properties,
            img.expiry_date,
        );
        let created = if img.creation_date > 0 {
            img.creation_date
        } else {
            img.fallback_date
        };
        let Some(version) = version_name(created).or_else(|| version_name(img.fallback_date))
        else {
            continue;
        };
        let short = &img.fingerprint[..img.fingerprint.len().min(12)];
        let name = format!("{}:{short}", fields.product_name());
        let label = img
            .properties
            .get("label")
            .filter(|l| !l.is_empty())
            .map_or("lxdimg", String::as_str);
        let aliases: Vec<String> = img
            .aliases
            .iter()
            .filter(|a| alias_problem(a).is_none())
            .cloned()
            .collect();
        let (items, _) = items_for(&img.fingerprint, t, &files);
        add_items(
            &mut products,
            &name,
            &fields,
            &aliases,
            &version,
            label,
            items,
        );
    }
    products
}

mod check;
pub use check::*;

#[cfg(test)]
mod tests;

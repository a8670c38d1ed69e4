//! What LXD and Incus clients make of a products file ([`client_view`]), and what in it they
//! trip on ([`check`]).

use super::{alias_problem, version_listed, Client, Item, Products, RootFtype, INDEX_PATH};
use crate::arch;
use crate::report::ImageType;
use serde::Serialize;
use std::collections::BTreeMap;

/// An image as a client lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenImage {
    pub client: Client,
    pub product: String,
    pub version: String,
    /// The fingerprint the client records (a combined field, or the unified item's sha256).
    pub fingerprint: String,
    #[serde(rename = "type")]
    pub image_type: ImageType,
    /// Canonical architecture.
    pub architecture: String,
    pub aliases: Vec<String>,
    /// Item keys: the metadata (or unified) item, then the root item of a split image.
    pub metadata_item: String,
    pub root_item: Option<String>,
    /// Size shown: metadata + root.
    pub size: u64,
}

/// The images a client makes of a products file, in the order of the products and versions
/// (LXD 5.0.2 `products.go` `ToLXD`, Incus alike for its own ftypes).
pub fn client_view(products: &Products, client: Client) -> Vec<SeenImage> {
    let (unified_ftype, split_ftype) = client.metadata_ftypes();
    let mut out = Vec::new();
    for (pname, p) in &products.products {
        let Some((_, architecture)) = arch::lookup(client.arch_rules(), &p.arch) else {
            continue;
        };
        let aliases: Vec<String> = p
            .aliases
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        for (vname, v) in &p.versions {
            if !version_listed(vname) {
                continue;
            }
            for (mkey, m) in &v.items {
                if m.path.is_empty() {
                    continue;
                }
                let seen =
                    |fingerprint: &str, t: ImageType, root: Option<(&String, &Item)>| SeenImage {
                        client,
                        product: pname.clone(),
                        version: vname.clone(),
                        fingerprint: fingerprint.to_string(),
                        image_type: t,
                        architecture: architecture.to_string(),
                        aliases: aliases.clone(),
                        metadata_item: mkey.clone(),
                        root_item: root.map(|r| r.0.clone()),
                        size: m.size + root.map_or(0, |r| r.1.size),
                    };
                if m.ftype == unified_ftype {
                    let t = match (client, m.combined_type.as_deref()) {
                        (Client::Incus, Some("virtual-machine")) => ImageType::VirtualMachine,
                        _ => ImageType::Container,
                    };
                    out.push(seen(&m.sha256, t, None));
                } else if m.ftype == split_ftype {
                    for (rkey, r) in &v.items {
                        let Some(root) = RootFtype::from_ftype(&r.ftype) else {
                            continue;
                        };
                        if let Some(fp) = root.combined(m) {
                            out.push(seen(fp, root.image_type(), Some((rkey, r))));
                        }
                    }
                }
            }
        }
    }
    out
}

/// A problem with a tree, and the product/version/item it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub product: Option<String>,
    pub version: Option<String>,
    pub item: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut place = Vec::new();
        if let Some(p) = &self.product {
            place.push(format!("product {p}"));
        }
        if let Some(v) = &self.version {
            place.push(format!("version {v}"));
        }
        if let Some(i) = &self.item {
            place.push(format!("item {i}"));
        }
        if place.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", place.join(", "), self.message)
        }
    }
}

/// Whether `s` is 64 lowercase hex digits (what clients require of hashes and fingerprints).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a path cannot be fetched by a client: paths are joined onto the base URL's path.
pub fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("no path".into());
    }
    if path.contains("://") {
        return Some(format!("path {path:?} is a URL: clients join paths onto the remote's URL, so it is never fetched"));
    }
    if path.starts_with('/') {
        return Some(format!("path {path:?} starts with '/': clients join it onto the remote's URL path anyway (not absolute)"));
    }
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Some(format!("path {path:?} has '.' or '..' components"));
    }
    None
}

/// Checks a tree's JSON against what LXD's and Incus's clients need (facts §6), without reading
/// any image file. `clients` are the clients the tree must serve: an image one of them does not
/// see is a problem.
pub fn check(listed: &[String], products: &Products, clients: &[Client]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut problem =
        |product: Option<&str>, version: Option<&str>, item: Option<&str>, message: String| {
            out.push(Problem {
                product: product.map(str::to_string),
                version: version.map(str::to_string),
                item: item.map(str::to_string),
                message,
            })
        };
    // The index: clients read only the products it lists.
    let listed: std::collections::BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    if listed.is_empty() && !products.products.is_empty() {
        problem(None, None, None, format!("{INDEX_PATH} has no entry with datatype \"image-downloads\" and a non-empty products list: clients see no images"));
    }
    for name in products.products.keys() {
        if !listed.is_empty() && !listed.contains(name.as_str()) {
            problem(
                Some(name),
                None,
                None,
                format!("not listed in {INDEX_PATH}"),
            );
        }
    }
    for name in &listed {
        if !products.products.contains_key(*name) {
            problem(
                Some(name),
                None,
                None,
                format!("listed in {INDEX_PATH} but absent from its products file"),
            );
        }
    }
    // Products, versions, items.
    for (pname, p) in &products.products {
        let pn = Some(pname.as_str());
        for client in clients {
            if arch::lookup(client.arch_rules(), &p.arch).is_none() {
                problem(
                    pn,
                    None,
                    None,
                    format!(
                        "{} clients do not know the architecture {:?} and skip the product",
                        client.name(),
                        p.arch
                    ),
                );
            }
        }
        for alias in p.aliases.as_deref().unwrap_or("").split(',') {
            if alias.is_empty() {
                continue;
            }
            if let Some(m) = alias_problem(alias) {
                problem(pn, None, None, m);
            }
        }
        if let Some(eol) = &p.support_eol {
            let ok = eol.len() == 10
                && version_listed(&eol.replace('-', ""))
                && eol.as_bytes()[4] == b'-'
                && eol.as_bytes()[7] == b'-';
            if !ok {
                problem(
                    pn,
                    None,
                    None,
                    format!("support_eol {eol:?} is not YYYY-MM-DD"),
                );
            }
        }
        if p.versions.is_empty() {
            problem(pn, None, None, "no versions".into());
        }
        for (vname, v) in &p.versions {
            let vn = Some(vname.as_str());
            if !version_listed(vname) {
                problem(pn, vn, None, "the version name does not start with a YYYYMMDD date: clients skip the version".into());
            }
            for (key, item) in &v.items {
                let k = Some(key.as_str());
                if let Some(m) = path_problem(&item.path) {
                    problem(pn, vn, k, m);
                }
                if !is_sha256_hex(&item.sha256) {
                    problem(pn, vn, k, format!("sha256 {:?} is not 64 lowercase hex digits: every download would fail its hash check", item.sha256));
                }
                if item.size == 0 {
                    problem(
                        pn,
                        vn,
                        k,
                        "size is 0 or missing (newer LXD caps each download at the item's size)"
                            .into(),
                    );
                }
                for (field, value) in combined_fields(item) {
                    if !is_sha256_hex(value) {
                        problem(pn, vn, k, format!("{field} {value:?} is not 64 lowercase hex digits (clients refuse such fingerprints)"));
                    }
                }
                if item.ftype == "incus_combined.tar.gz" {
                    if let Some(t) = &item.combined_type {
                        if t != "container" && t != "virtual-machine" {
                            problem(
                                pn,
                                vn,
                                k,
                                format!(
                                    "combined_type {t:?} is neither container nor virtual-machine"
                                ),
                            );
                        }
                    }
                }
                let split_meta = item.ftype == "lxd.tar.xz" || item.ftype == "incus.tar.xz";
                if split_meta {
                    let roots: Vec<RootFtype> = v
                        .items
                        .values()
                        .filter_map(|r| RootFtype::from_ftype(&r.ftype))
                        .collect();
                    if roots.is_empty() {
                        problem(pn, vn, k, "a metadata item with no root item (squashfs, root.tar.xz, disk-kvm.img…) in its version: no image".into());
                    } else if roots.iter().all(|r| r.combined(item).is_none()) {
                        problem(pn, vn, k, "no combined_* field for any root item of its version: clients make no image of it".into());
                    }
                }
            }
        }
    }
    // Visibility per client: every image some client sees must be seen by every client served.
    let views: Vec<(Client, Vec<SeenImage>)> = Client::ALL
        .iter()
        .map(|c| (*c, client_view(products, *c)))
        .collect();
    let mut all: BTreeMap<(String, String, String), Vec<Client>> = BTreeMap::new();
    for (c, seen) in &views {
        for s in seen {
            all.entry((s.product.clone(), s.version.clone(), s.fingerprint.clone()))
                .or_default()
                .push(*c);
        }
    }
    for ((pname, vname, fp), seen_by) in &all {
        for c in clients {
            if !seen_by.contains(c) {
                problem(
                    Some(pname),
                    Some(vname),
                    None,
                    format!(
                        "{} clients do not see image {fp} (no {} item for it)",
                        c.name(),
                        match c {
                            Client::Lxd => "lxd.tar.xz/lxd_combined.tar.gz",
                            Client::Incus => "incus.tar.xz/incus_combined.tar.gz",
                        }
                    ),
                );
            }
        }
    }
    // The same alias on two products of one architecture: the first in sort order wins.
    for c in clients {
        let mut owner: BTreeMap<(String, String, String), String> = BTreeMap::new();
        for (_, seen) in views.iter().filter(|(vc, _)| vc == c) {
            for s in seen {
                for a in &s.aliases {
                    let key = (
                        a.clone(),
                        s.architecture.clone(),
                        s.image_type.as_str().to_string(),
                    );
                    match owner.get(&key) {
                        Some(other) if *other != s.product => problem(Some(&s.product), None, None, format!("alias {a:?} ({}, {}) is also on product {other}: {} clients resolve it to only one of them", s.architecture, s.image_type.as_str(), c.name())),
                        Some(_) => {}
                        None => {
                            owner.insert(key, s.product.clone());
                        }
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.product, &a.version, &a.item).cmp(&(&b.product, &b.version, &b.item)));
    out.dedup();
    out
}

/// `YYYYMMDD_hhmm` exactly, with a valid date and time.
pub fn is_full_version_name(v: &str) -> bool {
    let b = v.as_bytes();
    v.len() == 13
        && version_listed(v)
        && b[8] == b'_'
        && b[9..].iter().all(u8::is_ascii_digit)
        && v[9..11].parse::<u32>().is_ok_and(|h| h < 24)
        && v[11..13].parse::<u32>().is_ok_and(|m| m < 60)
}

/// The combined fields an item carries, with their JSON names.
pub fn combined_fields(item: &Item) -> Vec<(&'static str, &str)> {
    [
        ("combined_sha256", &item.combined_sha256),
        ("combined_rootxz_sha256", &item.combined_rootxz_sha256),
        ("combined_squashfs_sha256", &item.combined_squashfs_sha256),
        (
            "combined_disk-kvm-img_sha256",
            &item.combined_disk_kvm_img_sha256,
        ),
        ("combined_disk1-img_sha256", &item.combined_disk1_img_sha256),
        ("combined_uefi1-img_sha256", &item.combined_uefi1_img_sha256),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    .collect()
}

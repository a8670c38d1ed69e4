//! Unit tests of the item families, the client view and the checks.

use super::*;

fn f(path: &str, c: char, size: u64) -> PublishedFile {
    PublishedFile {
        path: path.into(),
        sha256: c.to_string().repeat(64),
        size,
    }
}

#[test]
fn version_names() {
    assert_eq!(
        version_name(1_704_067_200).as_deref(),
        Some("20240101_0000")
    );
    assert_eq!(
        version_name(1_704_067_200 + 3600 * 13 + 60 * 7).as_deref(),
        Some("20240101_1307")
    );
    assert_eq!(
        version_name(253_402_300_799).as_deref(),
        Some("99991231_2359")
    );
    assert_eq!(version_name(253_402_300_800), None);
    assert_eq!(version_name(951_782_400).as_deref(), Some("20000229_0000"));
    assert_eq!(date_name(0).as_deref(), Some("1970-01-01"));
    assert!(version_listed("20240101_0000"));
    assert!(version_listed("20240229"));
    assert!(!version_listed("20230229"));
    assert!(!version_listed("2024-01-01"));
    assert!(!version_listed("2024010"));
    assert!(is_full_version_name("20240101_2359"));
    assert!(!is_full_version_name("20240101_2400"));
    assert!(!is_full_version_name("202401011200"));
}

#[test]
fn split_items_both_families() {
    let files = PublishedFiles::Split {
        metadata: f("images/m.tar.xz", 'a', 10),
        rootfs: f("images/r.squashfs", 'b', 20),
        root: RootFtype::Squashfs,
    };
    let fp = "c".repeat(64);
    let (items, unseen) = items_for(&fp, ImageType::Container, &files);
    assert!(unseen.is_empty());
    assert_eq!(
        items.keys().collect::<Vec<_>>(),
        ["incus.tar.xz", "lxd.tar.xz", "squashfs"]
    );
    assert_eq!(
        items["lxd.tar.xz"].combined_squashfs_sha256.as_deref(),
        Some(fp.as_str())
    );
    let mut p = Products::default();
    let fields = ProductFields {
        arch: "amd64".into(),
        os: "Debian".into(),
        release: "12".into(),
        variant: "default".into(),
        ..ProductFields::default()
    };
    assert!(add_items(
        &mut p,
        "debian:12:default:amd64",
        &fields,
        &fields.default_aliases(),
        "20240101_0000",
        "lxdimg",
        items.clone()
    ));
    assert!(!add_items(
        &mut p,
        "debian:12:default:amd64",
        &fields,
        &fields.default_aliases(),
        "20240101_0000",
        "lxdimg",
        items
    ));
    for c in Client::ALL {
        let seen = client_view(&p, c);
        assert_eq!(seen.len(), 1, "{c:?}");
        assert_eq!(seen[0].fingerprint, fp);
        assert_eq!(seen[0].architecture, "x86_64");
        assert_eq!(seen[0].aliases, ["debian/12", "debian/12/default"]);
        assert_eq!(seen[0].size, 30);
    }
    let idx = index_for(&p, None);
    assert_eq!(
        check(&idx.index["images"].products, &p, &Client::ALL),
        vec![]
    );
}

#[test]
fn unified_vm_is_incus_only() {
    let fp = "d".repeat(64);
    let files = PublishedFiles::Unified(PublishedFile {
        path: "images/u.tar.gz".into(),
        sha256: fp.clone(),
        size: 5,
    });
    let (items, unseen) = items_for(&fp, ImageType::VirtualMachine, &files);
    assert_eq!(unseen, [Client::Lxd]);
    assert_eq!(
        items["incus_combined.tar.gz"].combined_type.as_deref(),
        Some("virtual-machine")
    );
    let mut p = Products::default();
    let fields = ProductFields {
        arch: "x86_64".into(),
        os: "t".into(),
        release: "1".into(),
        variant: "default".into(),
        ..Default::default()
    };
    add_items(
        &mut p,
        "t:1:default:x86_64",
        &fields,
        &[],
        "20240101_0000",
        "l",
        items,
    );
    assert!(client_view(&p, Client::Lxd).is_empty());
    assert_eq!(
        client_view(&p, Client::Incus)[0].image_type,
        ImageType::VirtualMachine
    );
    let problems = check(
        &index_for(&p, None).index["images"].products,
        &p,
        &Client::ALL,
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("LXD clients do not see"),
        "{}",
        problems[0]
    );
    assert!(check(
        &index_for(&p, None).index["images"].products,
        &p,
        &[Client::Incus]
    )
    .is_empty());
}

#[test]
fn check_finds_what_clients_trip_on() {
    let mut p = Products::default();
    let mut v = Version::default();
    v.items.insert(
        "lxd.tar.xz".into(),
        Item {
            ftype: "lxd.tar.xz".into(),
            path: "/abs/m".into(),
            sha256: "A".repeat(64),
            size: 1,
            combined_squashfs_sha256: Some("x".into()),
            ..Default::default()
        },
    );
    v.items.insert(
        "squashfs".into(),
        Item {
            ftype: "squashfs".into(),
            path: "r".into(),
            sha256: "b".repeat(64),
            size: 0,
            ..Default::default()
        },
    );
    p.products.insert(
        "p".into(),
        Product {
            arch: "amd64v3".into(),
            aliases: Some("a, b".into()),
            versions: [("2024-01-01".to_string(), v)].into(),
            ..Default::default()
        },
    );
    let msgs: Vec<String> = check(
        &index_for(&p, None).index["images"].products,
        &p,
        &[Client::Lxd],
    )
    .iter()
    .map(|x| x.to_string())
    .collect();
    let has = |s: &str| msgs.iter().any(|m| m.contains(s));
    assert!(has("do not know the architecture \"amd64v3\""), "{msgs:#?}");
    assert!(has("contains ' '"), "{msgs:#?}");
    assert!(has("does not start with a YYYYMMDD"), "{msgs:#?}");
    assert!(has("starts with '/'"), "{msgs:#?}");
    assert!(has("is not 64 lowercase hex"), "{msgs:#?}");
    assert!(has("size is 0"), "{msgs:#?}");
}

#[test]
fn product_fields_from_metadata() {
    let props: BTreeMap<String, String> = [
        ("os", "Debian"),
        ("release", "bookworm"),
        ("architecture", "amd64"),
        ("requirements.secureboot", "false"),
        ("variant", "cloud"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let f = ProductFields::from_metadata("x86_64", "x86_64", &props, 1_893_456_000);
    assert_eq!(f.arch, "amd64");
    assert_eq!(f.product_name(), "Debian:bookworm:cloud:amd64");
    assert_eq!(f.default_aliases(), ["debian/bookworm/cloud"]);
    assert_eq!(f.support_eol.as_deref(), Some("2030-01-01"));
    assert_eq!(f.requirements["secureboot"], "false");
    // Without the property, the canonical name.
    let g = ProductFields::from_metadata("x86_64", "amd64", &BTreeMap::new(), 0);
    assert_eq!(g.arch, "x86_64");
}

#[test]
fn json_roundtrip_keeps_unknown_fields() {
    let text = r#"{"content_id":"images","datatype":"image-downloads","format":"products:1.0","products":{"p":{"arch":"amd64","os":"o","release":"r","x-custom":1,"versions":{"20240101_0000":{"items":{"k":{"ftype":"squashfs","path":"a","sha256":"b","size":1,"md5":"m"}}}}}}}"#;
    let p: Products = serde_json::from_str(text).unwrap();
    let back = serde_json::to_value(&p).unwrap();
    assert_eq!(back["products"]["p"]["x-custom"], 1);
    assert_eq!(
        back["products"]["p"]["versions"]["20240101_0000"]["items"]["k"]["md5"],
        "m"
    );
}

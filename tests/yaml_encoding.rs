//! Issue 8, class 3: metadata.yaml in UTF-8 (with or without a BOM) and UTF-16LE/BE with a BOM,
//! read as yaml.v2 reads it (libyaml's encoding detection), with or without a document marker,
//! with CRLF lines and characters outside the BMP; invalid sequences refused with yaml.v2's words.

mod common;
use common::*;

fn encode(text: &str, enc: &str) -> Vec<u8> {
    match enc {
        "utf-8" => text.as_bytes().to_vec(),
        "utf-8-bom" => [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
        "utf-16le" => [0xff, 0xfe]
            .into_iter()
            .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect(),
        "utf-16be" => [0xfe, 0xff]
            .into_iter()
            .chain(text.encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect(),
        _ => unreachable!(),
    }
}

fn image(meta: &[u8]) -> Vec<u8> {
    gzip(&tar(
        &[Member::File("metadata.yaml", meta), Member::Dir("rootfs")],
        TarFlavor::Gnu,
    ))
}

#[test]
fn every_encoding_decodes_the_same_metadata() {
    let docs = [
        "architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: debian\n  description: café 中文 😀\n",
        "---\narchitecture: amd64\ncreation_date: 1700000000\nproperties:\n  os: \"x\"\n",
        "architecture: x86_64\r\ncreation_date: 1700000000\r\nproperties:\r\n  release: \"𝔘\"\r\n",
    ];
    let mut cases = 0;
    for doc in docs {
        let reference = inspect(&[&image(doc.as_bytes())]);
        assert!(
            reference.verdicts["lxd-5.0"].is_accepted(),
            "{doc:?}: {:?}",
            reference.verdicts["lxd-5.0"]
        );
        for enc in ["utf-8-bom", "utf-16le", "utf-16be"] {
            let r = inspect(&[&image(&encode(doc, enc))]);
            for (key, v) in r.verdicts.iter() {
                assert!(v.is_accepted(), "{enc} {key} {doc:?}: {v:?}");
            }
            assert_eq!(r.metadata, reference.metadata, "{enc}: {doc:?}");
            cases += 1;
        }
    }
    println!("encodings: {cases} cases");
}

#[test]
fn invalid_sequences_are_refused_as_yaml_v2_refuses_them() {
    let head = encode("architecture: x86_64\nproperties:\n  os: ", "utf-16le");
    // A high surrogate followed by a non-surrogate: what LXD 5.0.2 says (measured).
    let lone_high = [head.clone(), vec![0x00, 0xd8, b'a', 0x00, b'\n', 0x00]].concat();
    let r = inspect(&[&image(&lone_high)]);
    assert_eq!(
        r.verdicts["lxd-5.0"].error.as_deref(),
        Some("yaml: expected low surrogate area")
    );
    // UTF-16 without a BOM is read as UTF-8, and fails as such.
    let no_bom: Vec<u8> = "architecture: x86_64\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let r = inspect(&[&image(&no_bom)]);
    assert_eq!(r.verdicts["lxd-5.0"].accepted, Some(false));
    assert!(r.verdicts["lxd-5.0"]
        .error
        .as_deref()
        .unwrap()
        .starts_with("yaml: "));
}

//! `metadata.yaml` decoding that mirrors Go's `gopkg.in/yaml.v2` (LXD, Incus ≤ 6) and, where they
//! differ, `go.yaml.in/yaml/v4` (Incus ≥ 7).
//!
//! A plain serde derive disagrees with yaml.v2 in ways that change LXD's verdict (duplicate keys
//! win last, floats and `1_700_000_000` are integers, unquoted numbers and dates are kept as their
//! source text in string fields, type errors are collected rather than fatal). So the YAML is read
//! as events (yaml-rust2), built into a node tree, and decoded by hand into the Go schema
//! (`api.ImageMetadata`), producing yaml.v2's messages.

mod decoder;
mod node;
mod scalar;

use decoder::{Decoder, Fatal};
use node::parse_first_document;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// Which Go YAML library is imitated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `gopkg.in/yaml.v2` (LXD all versions, Incus ≤ 6).
    V2,
    /// `go.yaml.in/yaml/v4` rc.6 (Incus ≥ 7).
    V4,
}

/// `api.ImageMetadata`, with Go's nil maps kept apart from empty ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageMetadata {
    pub architecture: String,
    pub creation_date: i64,
    pub expiry_date: i64,
    pub properties: Option<BTreeMap<String, String>>,
    pub templates: Option<BTreeMap<String, Option<Template>>>,
}

/// `api.ImageMetadataTemplate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Template {
    pub when: Option<Vec<String>>,
    pub create_only: bool,
    pub template: String,
    pub properties: Option<BTreeMap<String, String>>,
}

/// Decodes one `metadata.yaml` document on top of `out`, as `yaml.NewDecoder(r).Decode(&out)`
/// does. Returns the error text LXD shows (`EOF`, `yaml: line N: …`, `yaml: unmarshal errors:…`).
pub fn decode_into(bytes: &[u8], out: &mut ImageMetadata, dialect: Dialect) -> Result<(), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Err(format!(
                "yaml: invalid leading UTF-8 octet (line {line}, byte {})",
                e.valid_up_to()
            ));
        }
    };
    // libyaml accepts only printable characters (plus tab, CR, LF, NEL).
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{85}' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && c != '\u{feff}'
    };
    if text.chars().any(|c| !printable(c)) {
        return Err("yaml: control characters are not allowed".into());
    }
    let Some((nodes, root)) = parse_first_document(text)? else {
        return Err("EOF".into());
    };
    let mut d = Decoder {
        nodes: &nodes,
        dialect,
        errors: Vec::new(),
        expanding: HashSet::new(),
        decoded: 0,
        aliased: 0,
    };
    match d.metadata(root, out) {
        Err(Fatal(msg)) => return Err(msg),
        Ok(_) => {}
    }
    if d.errors.is_empty() {
        Ok(())
    } else {
        let head = match dialect {
            Dialect::V2 => "yaml: unmarshal errors:",
            Dialect::V4 => "yaml: construct errors:",
        };
        Err(format!("{head}\n  {}", d.errors.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(y: &str) -> Result<ImageMetadata, String> {
        let mut m = ImageMetadata::default();
        decode_into(y.as_bytes(), &mut m, Dialect::V2).map(|_| m)
    }

    #[test]
    fn quirks_match_yaml_v2() {
        let m = dec("architecture: amd64\ncreation_date: 1_458_040_200\nproperties:\n  version: 14.04\n  d: 2016-03-15\n  f: yes\n  n: ~\n").unwrap();
        assert_eq!(m.creation_date, 1458040200);
        let p = m.properties.unwrap();
        assert_eq!(p["version"], "14.04");
        assert_eq!(p["d"], "2016-03-15");
        assert_eq!(p["f"], "yes");
        assert_eq!(p["n"], "");
        assert_eq!(
            dec("creation_date: 0x56E7A8C8").unwrap().creation_date,
            1458022600
        );
        assert_eq!(
            dec("creation_date: 1458040200.9").unwrap().creation_date,
            1458040200
        );
        assert_eq!(
            dec("creation_date: 1.4580402007e9").unwrap().creation_date,
            1458040200
        );
        assert_eq!(dec("creation_date: -.inf").unwrap().creation_date, i64::MIN);
        assert_eq!(
            dec("architecture: x\ncreation_date: \"1458040200\"").unwrap_err(),
            "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `1458040200` into int64"
        );
        assert_eq!(
            dec("creation_date: 2016-03-15").unwrap_err(),
            "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!timestamp `2016-03-15` into int64"
        );
        assert_eq!(dec("").unwrap_err(), "EOF");
        assert_eq!(dec("# only a comment\n").unwrap_err(), "EOF");
        assert_eq!(dec("---\n").unwrap(), ImageMetadata::default());
        assert_eq!(dec("hello").unwrap_err(), "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `hello` into api.ImageMetadata");
        let m =
            dec("properties: {os: a, os: b}\narchitecture: bogus\narchitecture: x86_64").unwrap();
        assert_eq!(m.properties.unwrap()["os"], "b");
        assert_eq!(m.architecture, "x86_64");
        assert!(dec("templates:\n  /etc/hosts:\n    when: create\n")
            .unwrap_err()
            .contains("cannot unmarshal !!str `create` into []string"));
        assert!(dec("templates:\n  /etc/hosts:\n    create_only: \"yes\"\n")
            .unwrap_err()
            .contains("!!str `yes` into bool"));
        assert!(dec("templates:\n  /etc/hosts:\n    create_only: yes\n").is_ok());
        assert!(dec("properties: [a, b]")
            .unwrap_err()
            .contains("!!seq into map[string]string"));
        let m = dec(
            "base: &b\n  os: ubuntu\n  release: focal\nproperties:\n  <<: *b\n  release: jammy\n",
        )
        .unwrap();
        assert_eq!(m.properties.unwrap()["release"], "jammy");
    }

    #[test]
    fn v4_differences() {
        let mut m = ImageMetadata::default();
        assert!(
            decode_into(b"properties: {os: a, os: b}", &mut m, Dialect::V4)
                .unwrap_err()
                .contains("already defined")
        );
        let mut m = ImageMetadata::default();
        decode_into(
            b"templates:\n  /a:\n    create_only: \"yes\"\n",
            &mut m,
            Dialect::V4,
        )
        .unwrap();
        let mut m = ImageMetadata::default();
        assert!(decode_into(b"creation_date: 1458040200.9", &mut m, Dialect::V4).is_err());
    }
}

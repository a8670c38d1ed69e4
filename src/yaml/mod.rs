//! `metadata.yaml` decoding that mirrors Go's `gopkg.in/yaml.v2` (LXD, Incus ≤ 6) and, where they
//! differ, `go.yaml.in/yaml/v4` (Incus ≥ 7).
//!
//! A plain serde derive disagrees with yaml.v2 in ways that change LXD's verdict (duplicate keys
//! win last, floats and `1_700_000_000` are integers, unquoted numbers and dates are kept as their
//! source text in string fields, type errors are collected rather than fatal). So the YAML is read
//! as events (yaml-rust2), built into a node tree, and decoded by hand into the Go schema
//! (`api.ImageMetadata`), producing yaml.v2's messages.

mod decoder;
mod encoding;
mod node;
mod scalar;

use decoder::{Decoder, Fatal};
use node::{parse_first_document, FirstDocument};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// Prefix of a [`decode_into`] error that is one of lxdimg's limits, not the YAML library's
/// error: the verdict is then "not judged" (the prefix is removed).
pub const NOT_JUDGED: &str = "\u{0}not judged: ";

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
///
/// The bytes go through libyaml's reader first (`encoding.rs`): UTF-8 with or without a BOM,
/// UTF-16LE/BE with a BOM, and its errors (`yaml: invalid leading UTF-8 octet`,
/// `yaml: unexpected low surrogate area`, …).
pub fn decode_into(bytes: &[u8], out: &mut ImageMetadata, dialect: Dialect) -> Result<(), String> {
    let decoded = encoding::read(bytes, dialect);
    let mut text = decoded.text;
    // libyaml skips a U+FEFF at column 0 when it looks for the next token
    // (`yaml_parser_scan_to_next_token`), and the skip counts as a column: a space does the same
    // for yaml-rust2. At the very start the scanner is always between tokens.
    if text.starts_with('\u{feff}') {
        text.replace_range(..'\u{feff}'.len_utf8(), " ");
    }
    // Anywhere else libyaml's reader lets U+FEFF through and the scanner decides by context,
    // which yaml-rust2 does not reproduce; lxdimg refuses it.
    if text.contains('\u{feff}') {
        return Err("yaml: control characters are not allowed".into());
    }
    let parsed = parse_first_document(&text);
    if let Some(error) = &decoded.error {
        // The reader is lazy: the error counts unless the first document ended (at `---` or
        // `...`) before the scanner asked the reader for the piece of input that holds it.
        let unseen = matches!(&parsed, Ok(Some(doc))
            if ends_before(&text, doc.end, decoded.reached_at));
        if !unseen {
            return Err(error.message());
        }
    }
    let Some(FirstDocument { nodes, root, .. }) = parsed? else {
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

/// Whether the token yaml-rust2 ended the first document at, at `(line, col)`, is a `---` or
/// `...` whose four characters libyaml's scanner gets (`cache(parser, 4)` in
/// `yaml_parser_fetch_next_token`) without reading the character at `reached_at`. After such a
/// token the parser has its DOCUMENT-END event and `Decode` reads no further.
fn ends_before(text: &str, (line, col): (usize, usize), reached_at: usize) -> bool {
    // yaml-rust2's lines: `\r\n`, `\r` and `\n` end one; the first line is 1.
    let mut current = 1;
    let mut start = 0;
    let mut chars = text.chars().enumerate().peekable();
    while current < line {
        match chars.next() {
            Some((_, '\r')) if matches!(chars.peek(), Some((_, '\n'))) => continue,
            Some((i, '\r' | '\n')) => {
                current += 1;
                start = i + 1;
            }
            Some(_) => {}
            None => return false,
        }
    }
    let at = start + col;
    let marker: String = text.chars().skip(at).take(3).collect();
    (marker == "---" || marker == "...") && at + 3 < reached_at
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

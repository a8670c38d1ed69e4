//! `metadata.yaml` written by lxdimg: every string double-quoted, so that `gopkg.in/yaml.v2` (LXD,
//! Incus ≤ 6) and `yaml/v4` (Incus ≥ 7) read back exactly the strings written — no number, date,
//! boolean or null guessing, no `key: value` inside a value, whatever the bytes.

use crate::yaml::{ImageMetadata, Template};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A YAML double-quoted scalar holding exactly `s`. Characters YAML does not allow raw (C0
/// except tab, DEL, C1, U+FEFF, the Unicode line and paragraph separators, non-characters)
/// are written as escapes, which both Go libraries decode.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{20}'..='\u{7e}' => out.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}'
                if !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push(c)
            }
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn map(out: &mut String, indent: &str, key: &str, m: &Option<BTreeMap<String, String>>) {
    match m {
        None => {}
        Some(m) if m.is_empty() => {
            let _ = writeln!(out, "{indent}{key}: {{}}");
        }
        Some(m) => {
            let _ = writeln!(out, "{indent}{key}:");
            for (k, v) in m {
                let _ = writeln!(out, "{indent}  {}: {}", quoted(k), quoted(v));
            }
        }
    }
}

fn template(out: &mut String, path: &str, t: &Option<Template>) {
    let Some(t) = t else {
        let _ = writeln!(out, "  {}: null", quoted(path));
        return;
    };
    let _ = writeln!(out, "  {}:", quoted(path));
    match &t.when {
        None => {}
        Some(w) if w.is_empty() => out.push_str("    when: []\n"),
        Some(w) => {
            out.push_str("    when:\n");
            for x in w {
                let _ = writeln!(out, "      - {}", quoted(x));
            }
        }
    }
    let _ = writeln!(out, "    create_only: {}", t.create_only);
    let _ = writeln!(out, "    template: {}", quoted(&t.template));
    map(out, "    ", "properties", &t.properties);
}

/// The `metadata.yaml` text for `m`: decodes (yaml.v2 and v4) to `m` again, with Go's nil maps
/// (`None`) kept apart from empty ones. `expiry_date` 0 is left out (LXD's zero value).
pub fn metadata_yaml(m: &ImageMetadata) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "architecture: {}", quoted(&m.architecture));
    let _ = writeln!(out, "creation_date: {}", m.creation_date);
    if m.expiry_date != 0 {
        let _ = writeln!(out, "expiry_date: {}", m.expiry_date);
    }
    map(&mut out, "", "properties", &m.properties);
    match &m.templates {
        None => {}
        Some(t) if t.is_empty() => out.push_str("templates: {}\n"),
        Some(t) => {
            out.push_str("templates:\n");
            for (path, rule) in t {
                template(&mut out, path, rule);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{decode_into, Dialect};

    fn back(text: &str, dialect: Dialect) -> ImageMetadata {
        let mut m = ImageMetadata::default();
        decode_into(text.as_bytes(), &mut m, dialect).unwrap_or_else(|e| panic!("{e}\n{text}"));
        m
    }

    /// Strings that a plain YAML writer would turn into something else for yaml.v2.
    const HARD: &[&str] = &[
        "",
        " ",
        "  lead and trail  ",
        "yes",
        "no",
        "on",
        "off",
        "true",
        "null",
        "~",
        "NULL",
        "0x1F",
        "1_000",
        "14.04",
        "0777",
        "1e3",
        ".inf",
        "-.inf",
        ".nan",
        "2016-03-15",
        "2016-03-15T10:00:00Z",
        "a: b",
        "a #b",
        "#x",
        "- x",
        "[x]",
        "{x: y}",
        "*ref",
        "&anchor",
        "!tag",
        "|",
        ">",
        "'",
        "\"",
        "\\",
        "%x",
        "@x",
        "`x",
        "?",
        ":",
        "---",
        "...",
        "line\nbreak",
        "tab\there",
        "cr\rlf",
        "\u{1b}[31mred",
        "\u{7f}",
        "\u{85}nel",
        "\u{9b}csi",
        "\u{a0}nbsp",
        "\u{2028}ls",
        "\u{2029}ps",
        "\u{feff}bom",
        "\u{202e}bidi",
        "中文 描述",
        "emoji 🐧",
        "\u{fffe}",
        "\u{ffff}",
        "\u{10ffff}",
        "\u{e000}",
    ];

    #[test]
    fn every_hard_string_round_trips_in_both_dialects() {
        for (i, s) in HARD.iter().enumerate() {
            let mut props = BTreeMap::new();
            props.insert(s.to_string(), s.to_string());
            props.insert(format!("k{i}"), format!("v{s}v"));
            let mut rule_props = BTreeMap::new();
            rule_props.insert("default".to_string(), s.to_string());
            let mut templates = BTreeMap::new();
            templates.insert(
                format!("/etc/{s}"),
                Some(Template {
                    when: Some(vec!["create".into(), s.to_string()]),
                    create_only: i % 2 == 0,
                    template: s.to_string(),
                    properties: Some(rule_props),
                }),
            );
            let m = ImageMetadata {
                architecture: s.to_string(),
                creation_date: 1_700_000_000 + i as i64,
                expiry_date: if i % 3 == 0 { 253_402_300_799 } else { 0 },
                properties: Some(props),
                templates: Some(templates),
            };
            let text = metadata_yaml(&m);
            for d in [Dialect::V2, Dialect::V4] {
                assert_eq!(back(&text, d), m, "{s:?} {d:?}\n{text}");
            }
        }
    }

    #[test]
    fn nil_and_empty_maps_and_rules_are_kept_apart() {
        let mut templates = BTreeMap::new();
        templates.insert("/a".to_string(), None);
        templates.insert(
            "/b".to_string(),
            Some(Template {
                when: Some(vec![]),
                create_only: false,
                template: "b.tpl".into(),
                properties: Some(BTreeMap::new()),
            }),
        );
        templates.insert(
            "/c".to_string(),
            Some(Template {
                when: None,
                create_only: true,
                template: "c.tpl".into(),
                properties: None,
            }),
        );
        for (properties, templates) in [
            (None, None),
            (Some(BTreeMap::new()), Some(BTreeMap::new())),
            (None, Some(templates)),
        ] {
            let m = ImageMetadata {
                architecture: "x86_64".into(),
                creation_date: -5,
                expiry_date: 0,
                properties,
                templates,
            };
            assert_eq!(back(&metadata_yaml(&m), Dialect::V2), m);
        }
    }
}

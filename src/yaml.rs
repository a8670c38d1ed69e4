//! `metadata.yaml` decoding that mirrors Go's `gopkg.in/yaml.v2` (LXD, Incus ≤ 6) and, where they
//! differ, `go.yaml.in/yaml/v4` (Incus ≥ 7).
//!
//! A plain serde derive disagrees with yaml.v2 in ways that change LXD's verdict (duplicate keys
//! win last, floats and `1_700_000_000` are integers, unquoted numbers and dates are kept as their
//! source text in string fields, type errors are collected rather than fatal). So the YAML is read
//! as events (yaml-rust2), built into a node tree, and decoded by hand into the Go schema
//! (`api.ImageMetadata`), producing yaml.v2's messages.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

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
pub struct Template {
    pub when: Option<Vec<String>>,
    pub create_only: bool,
    pub template: String,
    pub properties: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Scalar,
    Mapping,
    Sequence,
    Alias,
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// 1-based line of the node's start.
    line: usize,
    /// Explicit tag in short form (`!!str`), or empty.
    tag: String,
    value: String,
    /// Plain (unquoted) scalar.
    plain: bool,
    children: Vec<usize>,
    alias: Option<usize>,
}

fn short_tag(t: &Tag) -> String {
    if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" {
        format!("!!{}", t.suffix)
    } else if t.handle.is_empty() && t.suffix.starts_with("tag:yaml.org,2002:") {
        format!("!!{}", &t.suffix["tag:yaml.org,2002:".len()..])
    } else {
        format!("{}{}", t.handle, t.suffix)
    }
}

/// Parses the first YAML document into a node tree; `Ok(None)` if the stream has no document.
fn parse_first_document(text: &str) -> Result<Option<(Vec<Node>, usize)>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors: BTreeMap<usize, usize> = BTreeMap::new();
    // Stack of open collections: (node index, pending key for mappings is implicit in children).
    let mut stack: Vec<usize> = Vec::new();
    let mut root: Option<usize> = None;
    let mut in_doc = false;
    loop {
        let (ev, mark) = parser
            .next_token()
            .map_err(|e| format!("yaml: line {}: {}", e.marker().line(), e.info()))?;
        let line = mark.line().max(1);
        let seq_start = matches!(ev, Event::SequenceStart(..));
        let new_node =
            |kind, tag: Option<Tag>, value: String, plain: bool, nodes: &mut Vec<Node>| {
                nodes.push(Node {
                    kind,
                    line,
                    tag: tag.as_ref().map(short_tag).unwrap_or_default(),
                    value,
                    plain,
                    children: Vec::new(),
                    alias: None,
                });
                nodes.len() - 1
            };
        let attach =
            |idx: usize, nodes: &mut Vec<Node>, stack: &[usize], root: &mut Option<usize>| {
                if let Some(&parent) = stack.last() {
                    nodes[parent].children.push(idx);
                } else if root.is_none() {
                    *root = Some(idx);
                }
            };
        match ev {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => return Ok(root.map(|r| (nodes, r))),
            Event::DocumentStart => in_doc = true,
            Event::DocumentEnd => {
                if in_doc {
                    return Ok(root.map(|r| (nodes, r)));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain;
                let idx = new_node(Kind::Scalar, tag, value, plain, &mut nodes);
                if anchor != 0 {
                    anchors.insert(anchor, idx);
                }
                attach(idx, &mut nodes, &stack, &mut root);
            }
            Event::Alias(id) => {
                let idx = new_node(Kind::Alias, None, String::new(), false, &mut nodes);
                nodes[idx].alias = anchors.get(&id).copied();
                if nodes[idx].alias.is_none() {
                    return Err(format!("yaml: unknown anchor '{id}' referenced"));
                }
                attach(idx, &mut nodes, &stack, &mut root);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                let kind = if seq_start {
                    Kind::Sequence
                } else {
                    Kind::Mapping
                };
                let idx = new_node(kind, tag, String::new(), false, &mut nodes);
                if anchor != 0 {
                    anchors.insert(anchor, idx);
                }
                attach(idx, &mut nodes, &stack, &mut root);
                stack.push(idx);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
        }
    }
}

/// The Go type being decoded into, for messages.
#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int64,
    Bool,
    Str,
    StrSlice,
    StrMap,
    Meta,
    Tmpl,
    TmplMap,
}

impl Ty {
    fn go(self) -> &'static str {
        match self {
            Ty::Int64 => "int64",
            Ty::Bool => "bool",
            Ty::Str => "string",
            Ty::StrSlice => "[]string",
            Ty::StrMap => "map[string]string",
            Ty::Meta => "api.ImageMetadata",
            Ty::Tmpl => "api.ImageMetadataTemplate",
            Ty::TmplMap => "map[string]*api.ImageMetadataTemplate",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Timestamp,
    Str,
    Binary,
    /// A tag yaml.v2 does not resolve (`!foo`): kept as text.
    Other,
}

impl Resolved {
    fn tag(&self) -> &'static str {
        match self {
            Resolved::Null => "!!null",
            Resolved::Bool(_) => "!!bool",
            Resolved::Int(_) | Resolved::Uint(_) => "!!int",
            Resolved::Float(_) => "!!float",
            Resolved::Timestamp => "!!timestamp",
            Resolved::Str | Resolved::Other => "!!str",
            Resolved::Binary => "!!binary",
        }
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` / `ParseUint`: sign, then 0x / 0o / 0b / leading-0 octal.
fn go_parse_int(s: &str) -> (Option<i64>, Option<u64>) {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        (16, &body[2..])
    } else if body.len() > 2 && (body.starts_with("0o") || body.starts_with("0O")) {
        (8, &body[2..])
    } else if body.len() > 2 && (body.starts_with("0b") || body.starts_with("0B")) {
        (2, &body[2..])
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return (None, None);
    }
    let Ok(mag) = u64::from_str_radix(digits, radix) else {
        return (None, None);
    };
    let signed = if neg {
        if mag <= 1u64 << 63 {
            Some((mag as i64).wrapping_neg())
        } else {
            None
        }
    } else if mag <= i64::MAX as u64 {
        Some(mag as i64)
    } else {
        None
    };
    let unsigned = if s.starts_with(['-', '+']) {
        None
    } else {
        Some(mag)
    };
    (signed, unsigned)
}

/// yaml.v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// yaml.v2's timestamp formats: `2006-1-2`, `2006-1-2 15:4:5.999999999`, `2006-1-2T15:4:5.999999999Z07:00`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - st < max {
            *i += 1;
        }
        if *i - st < min {
            return None;
        }
        s[st..*i].parse().ok()
    };
    let Some(month) = num(&mut i, 1, 2) else {
        return false;
    };
    if i >= b.len() || b[i] != b'-' {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 1, 2) else {
        return false;
    };
    let year: u32 = s[..4].parse().unwrap_or(0);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > mdays[month as usize - 1] {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let sep = b[i];
    if !matches!(sep, b'T' | b't' | b' ') {
        return false;
    }
    i += 1;
    let (Some(h), true) = (num(&mut i, 1, 2), i < b.len() && b[i] == b':') else {
        return false;
    };
    i += 1;
    let (Some(m), true) = (num(&mut i, 1, 2), i < b.len() && b[i] == b':') else {
        return false;
    };
    i += 1;
    let Some(sec) = num(&mut i, 1, 2) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if num(&mut i, 1, 9).is_none() {
            return false;
        }
    }
    if sep == b' ' {
        return i == b.len();
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            let r = &b[i + 1..];
            r.len() == 5
                && r[..2].iter().all(u8::is_ascii_digit)
                && r[2] == b':'
                && r[3..].iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// yaml.v2's `resolve` for a plain scalar.
fn resolve_plain(s: &str) -> Resolved {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => {
            if yaml_style_float(s) {
                if let Ok(f) = s.parse::<f64>() {
                    return Resolved::Float(f);
                }
            }
            Resolved::Str
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if is_timestamp(s) {
                return Resolved::Timestamp;
            }
            let plain = s.replace('_', "");
            let (i, u) = go_parse_int(&plain);
            if let Some(i) = i {
                return Resolved::Int(i);
            }
            if let Some(u) = u {
                return Resolved::Uint(u);
            }
            if yaml_style_float(&plain) {
                if let Ok(f) = plain.parse::<f64>() {
                    return Resolved::Float(f);
                }
            }
            for (prefix, neg) in [("0b", false), ("-0b", true)] {
                if let Some(rest) = plain.strip_prefix(prefix) {
                    if let Ok(v) = u64::from_str_radix(rest, 2) {
                        if neg && v <= 1 << 63 {
                            return Resolved::Int((v as i64).wrapping_neg());
                        } else if !neg && v <= i64::MAX as u64 {
                            return Resolved::Int(v as i64);
                        } else if !neg {
                            return Resolved::Uint(v);
                        }
                    }
                }
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

struct Decoder<'a> {
    nodes: &'a [Node],
    dialect: Dialect,
    errors: Vec<String>,
    expanding: HashSet<usize>,
    /// Nodes decoded so far, and those reached through an alias (yaml.v2's excessive-aliasing guard).
    decoded: u64,
    aliased: u64,
}

/// yaml.v2's `allowedAliasRatio`: generous for small documents, 10% for large ones.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    if decoded <= 400_000 {
        0.99
    } else if decoded >= 4_000_000 {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - 400_000) as f64 / 3_600_000.0)
    }
}

/// A fatal decode error (yaml.v2's `failf`).
struct Fatal(String);

type R<T> = Result<T, Fatal>;

impl<'a> Decoder<'a> {
    fn resolve(&self, n: &Node) -> Resolved {
        match n.tag.as_str() {
            "" if n.plain => resolve_plain(&n.value),
            "" | "!!str" => Resolved::Str,
            "!!binary" => Resolved::Binary,
            "!!null" => Resolved::Null,
            "!!int" | "!!float" | "!!bool" | "!!timestamp" => resolve_plain(&n.value),
            "!" => Resolved::Str,
            _ => Resolved::Other,
        }
    }

    fn terror(&mut self, n: &Node, tag: &str, ty: Ty) {
        let tag = if n.tag.is_empty() {
            tag
        } else {
            n.tag.as_str()
        };
        let value = if tag != "!!seq" && tag != "!!map" {
            let v = n.value.as_bytes();
            if v.len() > 10 {
                format!(" `{}...`", String::from_utf8_lossy(&v[..7]))
            } else {
                format!(" `{}`", n.value)
            }
        } else {
            String::new()
        };
        let verb = match self.dialect {
            Dialect::V2 => "unmarshal",
            Dialect::V4 => "construct",
        };
        self.errors.push(format!(
            "line {}: cannot {verb} {tag}{value} into {}",
            n.line,
            ty.go()
        ));
    }

    /// Follows aliases; returns the node to decode (guarding against self-reference).
    fn deref(&self, idx: usize) -> R<usize> {
        let mut i = idx;
        let mut hops = 0;
        while self.nodes[i].kind == Kind::Alias {
            i = self.nodes[i].alias.expect("checked at parse");
            hops += 1;
            if hops > self.nodes.len() {
                return Err(Fatal("yaml: anchor value contains itself".into()));
            }
        }
        Ok(i)
    }

    fn enter(&mut self, idx: usize) -> R<usize> {
        let target = self.deref(idx)?;
        self.decoded += 1;
        if target != idx {
            self.aliased += 1;
        }
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
        {
            return Err(Fatal("yaml: document contains excessive aliasing".into()));
        }
        if self.decoded > crate::limits::YAML_NODES_MAX {
            return Err(Fatal(format!(
                "yaml: lxdimg stops after decoding {} nodes",
                crate::limits::YAML_NODES_MAX
            )));
        }
        if target != idx {
            if !self.expanding.insert(target) {
                return Err(Fatal("yaml: anchor value contains itself".into()));
            }
        }
        Ok(target)
    }

    fn leave(&mut self, idx: usize, target: usize) {
        if target != idx {
            self.expanding.remove(&target);
        }
    }

    fn is_null(&self, n: &Node) -> bool {
        n.kind == Kind::Scalar && self.resolve(n) == Resolved::Null
    }

    /// Decodes a node into a scalar Go type. `None` if an error was recorded (or null, for which
    /// `Some(zero)` is returned by the callers through `null`).
    fn int64(&mut self, idx: usize) -> R<Option<i64>> {
        let t = self.enter(idx)?;
        let r = self.int64_at(t);
        self.leave(idx, t);
        r
    }

    fn int64_at(&mut self, t: usize) -> R<Option<i64>> {
        let n = &self.nodes[t];
        match n.kind {
            Kind::Mapping => {
                self.terror(n, "!!map", Ty::Int64);
                return Ok(None);
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::Int64);
                return Ok(None);
            }
            _ => {}
        }
        let r = self.resolve(n);
        const TWO63: f64 = 9_223_372_036_854_775_808.0;
        let v = match r {
            Resolved::Null => Some(0),
            Resolved::Int(i) => Some(i),
            Resolved::Uint(u) if u <= i64::MAX as u64 => Some(u as i64),
            Resolved::Float(f) if self.dialect == Dialect::V2 && !f.is_nan() && f <= TWO63 => {
                // Go converts out-of-range floats to the minimum int64 on amd64.
                Some(if !(-TWO63..TWO63).contains(&f) {
                    i64::MIN
                } else {
                    f.trunc() as i64
                })
            }
            Resolved::Float(f)
                if self.dialect == Dialect::V4
                    && f.fract() == 0.0
                    && (-TWO63..TWO63).contains(&f) =>
            {
                Some(f as i64)
            }
            _ => None,
        };
        if v.is_none() {
            let tag = r.tag();
            self.terror(n, tag, Ty::Int64);
        }
        Ok(v)
    }

    fn boolean(&mut self, idx: usize) -> R<Option<bool>> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let v = match n.kind {
            Kind::Mapping => {
                self.terror(n, "!!map", Ty::Bool);
                None
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::Bool);
                None
            }
            _ => {
                let r = self.resolve(n);
                match r {
                    Resolved::Null => Some(false),
                    Resolved::Bool(b) => Some(b),
                    Resolved::Str if self.dialect == Dialect::V4 => match resolve_plain(&n.value) {
                        Resolved::Bool(b) => Some(b),
                        _ => {
                            self.terror(n, "!!str", Ty::Bool);
                            None
                        }
                    },
                    other => {
                        self.terror(n, other.tag(), Ty::Bool);
                        None
                    }
                }
            }
        };
        self.leave(idx, t);
        Ok(v)
    }

    fn string(&mut self, idx: usize) -> R<Option<String>> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let v = match n.kind {
            Kind::Mapping => {
                self.terror(n, "!!map", Ty::Str);
                None
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::Str);
                None
            }
            _ => match self.resolve(n) {
                Resolved::Null => Some(String::new()),
                Resolved::Timestamp if self.dialect == Dialect::V4 => {
                    self.terror(n, "!!timestamp", Ty::Str);
                    None
                }
                _ => Some(n.value.clone()),
            },
        };
        self.leave(idx, t);
        Ok(v)
    }

    fn str_slice(&mut self, idx: usize, out: &mut Option<Vec<String>>) -> R<bool> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let ok = match n.kind {
            Kind::Sequence => {
                let mut v = Vec::new();
                for &c in &n.children {
                    if let Some(s) = self.string(c)? {
                        v.push(s);
                    }
                }
                *out = Some(v);
                true
            }
            Kind::Mapping => {
                self.terror(n, "!!map", Ty::StrSlice);
                false
            }
            _ if self.is_null(n) => {
                *out = None;
                true
            }
            _ => {
                let tag = self.resolve(n).tag();
                self.terror(n, tag, Ty::StrSlice);
                false
            }
        };
        self.leave(idx, t);
        Ok(ok)
    }

    fn check_duplicates(&mut self, n: &Node) {
        if self.dialect != Dialect::V4 {
            return;
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for pair in n.children.chunks(2) {
            let Ok(k) = self.deref(pair[0]) else { continue };
            let k = &self.nodes[k];
            if k.kind != Kind::Scalar {
                continue;
            }
            if let Some(first) = seen.get(&k.value) {
                self.errors.push(format!(
                    "line {}: mapping key \"{}\" already defined at line {}",
                    k.line, k.value, first
                ));
            } else {
                seen.insert(k.value.clone(), k.line);
            }
        }
    }

    fn is_merge(&self, k: usize) -> bool {
        let n = &self.nodes[k];
        n.kind == Kind::Scalar && n.value == "<<" && (n.plain || n.tag == "!!merge")
    }

    /// yaml.v2's `merge`: the value must be a map, an alias of one, or a sequence of those.
    fn merge(&mut self, v: usize, f: &mut dyn FnMut(&mut Self, usize) -> R<bool>) -> R<()> {
        const WANT_MAP: &str = "yaml: map merge requires map or sequence of maps as the value";
        let n = &self.nodes[v];
        match n.kind {
            Kind::Mapping => {
                f(self, v)?;
            }
            Kind::Alias => {
                let t = self.deref(v)?;
                if self.nodes[t].kind != Kind::Mapping {
                    return Err(Fatal(WANT_MAP.into()));
                }
                f(self, v)?;
            }
            Kind::Sequence => {
                let children = n.children.clone();
                for &c in children.iter().rev() {
                    let t = self.deref(c)?;
                    if self.nodes[t].kind != Kind::Mapping {
                        return Err(Fatal(WANT_MAP.into()));
                    }
                    f(self, c)?;
                }
            }
            _ => return Err(Fatal(WANT_MAP.into())),
        }
        Ok(())
    }

    fn str_map(&mut self, idx: usize, out: &mut Option<BTreeMap<String, String>>) -> R<bool> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let ok = match n.kind {
            Kind::Mapping => {
                self.check_duplicates(n);
                let map = out.get_or_insert_with(BTreeMap::new);
                let children = n.children.clone();
                let mut map = std::mem::take(map);
                for pair in children.chunks(2) {
                    if self.is_merge(pair[0]) {
                        let mut inner = Some(std::mem::take(&mut map));
                        self.merge(pair[1], &mut |d, v| d.str_map(v, &mut inner))?;
                        map = inner.unwrap_or_default();
                        continue;
                    }
                    if let Some(k) = self.string(pair[0])? {
                        if let Some(v) = self.string(pair[1])? {
                            map.insert(k, v);
                        }
                    }
                }
                *out = Some(map);
                true
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::StrMap);
                false
            }
            _ if self.is_null(n) => {
                *out = None;
                true
            }
            _ => {
                let tag = self.resolve(n).tag();
                self.terror(n, tag, Ty::StrMap);
                false
            }
        };
        self.leave(idx, t);
        Ok(ok)
    }

    fn template(&mut self, idx: usize, out: &mut Template) -> R<bool> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let ok = match n.kind {
            Kind::Mapping => {
                self.check_duplicates(n);
                let children = n.children.clone();
                for pair in children.chunks(2) {
                    if self.is_merge(pair[0]) {
                        self.merge(pair[1], &mut |d, v| d.template(v, out))?;
                        continue;
                    }
                    let Some(key) = self.string(pair[0])? else {
                        continue;
                    };
                    match key.as_str() {
                        "when" => {
                            self.str_slice(pair[1], &mut out.when)?;
                        }
                        "create_only" => {
                            if let Some(b) = self.boolean(pair[1])? {
                                out.create_only = b;
                            }
                        }
                        "template" => {
                            if let Some(s) = self.string(pair[1])? {
                                out.template = s;
                            }
                        }
                        "properties" => {
                            self.str_map(pair[1], &mut out.properties)?;
                        }
                        _ => {}
                    }
                }
                true
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::Tmpl);
                false
            }
            _ if self.is_null(n) => {
                *out = Template::default();
                true
            }
            _ => {
                let tag = self.resolve(n).tag();
                self.terror(n, tag, Ty::Tmpl);
                false
            }
        };
        self.leave(idx, t);
        Ok(ok)
    }

    fn template_map(
        &mut self,
        idx: usize,
        out: &mut Option<BTreeMap<String, Option<Template>>>,
    ) -> R<bool> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let ok = match n.kind {
            Kind::Mapping => {
                self.check_duplicates(n);
                let children = n.children.clone();
                let mut map = out.take().unwrap_or_default();
                for pair in children.chunks(2) {
                    if self.is_merge(pair[0]) {
                        let mut inner = Some(std::mem::take(&mut map));
                        self.merge(pair[1], &mut |d, v| d.template_map(v, &mut inner))?;
                        map = inner.unwrap_or_default();
                        continue;
                    }
                    let Some(k) = self.string(pair[0])? else {
                        continue;
                    };
                    let vt = self.deref(pair[1])?;
                    if self.is_null(&self.nodes[vt]) {
                        map.insert(k, None);
                        continue;
                    }
                    let mut tmpl = Template::default();
                    if self.template(pair[1], &mut tmpl)? {
                        map.insert(k, Some(tmpl));
                    }
                }
                *out = Some(map);
                true
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::TmplMap);
                false
            }
            _ if self.is_null(n) => {
                *out = None;
                true
            }
            _ => {
                let tag = self.resolve(n).tag();
                self.terror(n, tag, Ty::TmplMap);
                false
            }
        };
        self.leave(idx, t);
        Ok(ok)
    }

    fn metadata(&mut self, idx: usize, out: &mut ImageMetadata) -> R<bool> {
        let t = self.enter(idx)?;
        let n = &self.nodes[t];
        let ok = match n.kind {
            Kind::Mapping => {
                self.check_duplicates(n);
                let children = n.children.clone();
                for pair in children.chunks(2) {
                    if self.is_merge(pair[0]) {
                        self.merge(pair[1], &mut |d, v| d.metadata(v, out))?;
                        continue;
                    }
                    let Some(key) = self.string(pair[0])? else {
                        continue;
                    };
                    match key.as_str() {
                        "architecture" => {
                            if let Some(s) = self.string(pair[1])? {
                                out.architecture = s;
                            }
                        }
                        "creation_date" => {
                            if let Some(v) = self.int64(pair[1])? {
                                out.creation_date = v;
                            }
                        }
                        "expiry_date" => {
                            if let Some(v) = self.int64(pair[1])? {
                                out.expiry_date = v;
                            }
                        }
                        "properties" => {
                            self.str_map(pair[1], &mut out.properties)?;
                        }
                        "templates" => {
                            self.template_map(pair[1], &mut out.templates)?;
                        }
                        _ => {}
                    }
                }
                true
            }
            Kind::Sequence => {
                self.terror(n, "!!seq", Ty::Meta);
                false
            }
            _ if self.is_null(n) => {
                *out = ImageMetadata::default();
                true
            }
            _ => {
                let tag = self.resolve(n).tag();
                self.terror(n, tag, Ty::Meta);
                false
            }
        };
        self.leave(idx, t);
        Ok(ok)
    }
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

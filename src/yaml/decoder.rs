//! Decoding the node tree into LXD's Go schema (`api.ImageMetadata`) with yaml.v2's (or v4's)
//! rules and messages.

use super::node::{Kind, Node};
use super::scalar::*;
use super::{Dialect, ImageMetadata, Template};
use std::collections::{BTreeMap, HashSet};

/// The Go type being decoded into, for messages.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Ty {
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

pub(super) struct Decoder<'a> {
    pub(super) nodes: &'a [Node],
    pub(super) dialect: Dialect,
    pub(super) errors: Vec<String>,
    pub(super) expanding: HashSet<usize>,
    /// Nodes decoded so far, and those reached through an alias (yaml.v2's excessive-aliasing guard).
    pub(super) decoded: u64,
    pub(super) aliased: u64,
}

/// yaml.v2's `allowedAliasRatio`: generous for small documents, 10% for large ones.
pub(super) fn allowed_alias_ratio(decoded: u64) -> f64 {
    if decoded <= 400_000 {
        0.99
    } else if decoded >= 4_000_000 {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - 400_000) as f64 / 3_600_000.0)
    }
}

/// A fatal decode error (yaml.v2's `failf`).
pub(super) struct Fatal(pub(super) String);

pub(super) type R<T> = Result<T, Fatal>;

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
                "{}lxdimg stops after decoding {} YAML nodes",
                super::NOT_JUDGED,
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

    pub(super) fn metadata(&mut self, idx: usize, out: &mut ImageMetadata) -> R<bool> {
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

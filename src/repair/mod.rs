//! `lxdimg repair`: a plan of mechanical fixes for an image LXD refuses (or that fails at `init`
//! or first start), each tied to the finding code or the refusal it answers, and the new
//! `metadata.yaml` (written by [`crate::make::emit`], read back by the core's YAML decoder in both
//! dialects before it is offered).
//!
//! [`MetaReader`] reads the metadata part of an image once (the metadata tarball of a split image,
//! or the non-rootfs members of a unified one) and keeps every `metadata.yaml`-like member, link
//! and template file; [`plan`] decides. The caller writes the result: a new metadata tarball
//! ([`crate::make::metadata_tarball`]) for a split image, or the [`crate::rewrite`] edits
//! ([`Plan::edits`]) for a unified one — and inspects it again before offering it.

use crate::arch;
use crate::decode::ExpansionLimits;
use crate::detect::Format;
use crate::make::emit::metadata_yaml;
use crate::make::probe::normalize;
use crate::report::Report;
use crate::rewrite::{Edits, NewEntry, Target as RwTarget};
use crate::tar::stream::{TarballEnd, TarballStream};
use crate::tar::{EntryHeader, Visitor};
use crate::verdict::TARGETS;
use crate::yaml::{decode_into, Dialect, ImageMetadata, Template};
use crate::FindingCode;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bytes kept of one member (LXD's own `metadata.yaml` cap, and a template's size in practice).
pub const MEMBER_KEEP: usize = 1 << 20;
/// Bytes kept over all members.
pub const KEEP_TOTAL: usize = 32 << 20;
/// Members recorded at most.
pub const MEMBERS_MAX: usize = 4096;
/// The last date LXD's database reads back (facts §2.5).
pub const DATE_MAX: i64 = 253_402_300_799;

/// One member of the metadata part.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The name as Go's reader gives it (what the rewrite matches).
    pub raw: String,
    /// Without `./` and `/` prefixes.
    pub name: String,
    /// n-th member with this raw name (0-based).
    pub occurrence: u64,
    pub kind: u8,
    pub link: String,
    pub size: u64,
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl Member {
    fn regular(&self) -> bool {
        matches!(self.kind, b'0' | b'7')
    }
    fn complete(&self) -> bool {
        self.data.len() as u64 == self.size
    }
}

/// What [`MetaReader`] kept.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetaParts {
    pub format: Option<Format>,
    pub members: Vec<Member>,
    /// Members under `rootfs/` or named `rootfs.img` (a unified image).
    pub rootfs_members: u64,
    /// Why the part could not be read whole.
    pub error: Option<String>,
}

#[derive(Default)]
struct Keep {
    parts: MetaParts,
    kept: usize,
    cur: Option<usize>,
    seen: BTreeMap<String, u64>,
}

impl Visitor for Keep {
    fn entry(&mut self, h: &EntryHeader) -> bool {
        self.cur = None;
        let name = normalize(&h.name);
        if name == "rootfs" || name.starts_with("rootfs/") || name == "rootfs.img" {
            self.parts.rootfs_members += 1;
            return false;
        }
        let raw = h.name_lossy();
        let n = self.seen.entry(raw.clone()).or_insert(0);
        let occurrence = *n;
        *n += 1;
        if self.parts.members.len() >= MEMBERS_MAX {
            return false;
        }
        self.parts.members.push(Member {
            raw,
            name,
            occurrence,
            kind: h.kind,
            link: String::from_utf8_lossy(&h.link).into_owned(),
            size: h.size,
            data: Vec::new(),
        });
        let wanted = h.is_regular() && h.size > 0;
        if wanted {
            self.cur = Some(self.parts.members.len() - 1);
        }
        wanted
    }
    fn data(&mut self, chunk: &[u8]) {
        if let Some(i) = self.cur {
            let d = &mut self.parts.members[i].data;
            let room = MEMBER_KEEP
                .saturating_sub(d.len())
                .min(KEEP_TOTAL.saturating_sub(self.kept));
            let n = room.min(chunk.len());
            d.extend_from_slice(&chunk[..n]);
            self.kept += n;
        }
    }
    fn entry_end(&mut self) {
        self.cur = None;
    }
}

/// Reads the metadata part of an image (push any chunking, then [`MetaReader::finish`]).
pub struct MetaReader {
    stream: TarballStream,
    keep: Keep,
}

impl MetaReader {
    pub fn new(limits: ExpansionLimits) -> MetaReader {
        MetaReader {
            stream: TarballStream::new(limits),
            keep: Keep::default(),
        }
    }
    pub fn push(&mut self, chunk: &[u8]) {
        self.stream.push(chunk, &mut self.keep);
    }
    /// Whether nothing more is needed (the tar stream ended, or failed).
    pub fn done(&self) -> bool {
        self.stream.done()
    }
    pub fn finish(mut self) -> MetaParts {
        self.stream.finish(&mut self.keep);
        let mut parts = std::mem::take(&mut self.keep.parts);
        parts.format = self.stream.format();
        parts.error = match self.stream.end() {
            TarballEnd::Unrecognised | TarballEnd::NotATarball(_) => Some("not a tarball".into()),
            TarballEnd::Bomb(b) => Some(b.describe("the metadata")),
            TarballEnd::Decode(e) => Some(e.message.clone()),
            TarballEnd::Tar(e) => Some(format!("{} ({})", e.go_message, e.detail)),
            TarballEnd::Complete => None,
        };
        parts
    }
}

/// What a fix answers: a finding of the core, or a daemon's refusal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    /// The finding code (`date-out-of-range`, …), or `refused` for a verdict's error.
    pub code: String,
    /// What LXD or Incus says, for a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// What the repair does.
    pub what: String,
}

/// The repair: fixes, what is left, the old and new `metadata.yaml`, the template files.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub fixes: Vec<Fix>,
    /// Problems with no mechanical fix (the image stays refused or broken for these).
    pub unfixable: Vec<String>,
    /// The `metadata.yaml` LXD reads now (as text; empty when there is none).
    pub old_yaml: String,
    pub new_yaml: String,
    #[serde(skip)]
    pub metadata: ImageMetadata,
    /// `templates/NAME` files of the repaired image.
    #[serde(skip)]
    pub templates: Vec<(String, Vec<u8>)>,
    /// Members of the image the repaired `metadata.yaml` and templates replace (raw name,
    /// occurrence).
    pub replaced_members: Vec<(String, u64)>,
    /// The metadata tarball must be recompressed (LXD misdetects or refuses its format).
    pub recompress: bool,
    /// The image is unified (its rootfs is in the same tarball).
    pub unified: bool,
}

impl Plan {
    /// The unified diff of `metadata.yaml`, before → after.
    pub fn diff(&self) -> String {
        similar::TextDiff::from_lines(&self.old_yaml, &self.new_yaml)
            .unified_diff()
            .context_radius(3)
            .header("metadata.yaml (now)", "metadata.yaml (repaired)")
            .to_string()
    }

    /// The edits that turn a unified image into the repaired one ([`crate::rewrite`]): every old
    /// `metadata.yaml` and template member out, the new ones in first.
    pub fn edits(&self, mtime: u64) -> Edits {
        let mut e = Edits::default();
        for (raw, n) in &self.replaced_members {
            e.drop.push(RwTarget::nth(raw.as_bytes().to_vec(), *n));
        }
        e.add.push(NewEntry::file(
            b"metadata.yaml".to_vec(),
            self.new_yaml.as_bytes().to_vec(),
            mtime,
        ));
        for (name, data) in &self.templates {
            e.add.push(NewEntry::file(
                format!("templates/{name}").into_bytes(),
                data.clone(),
                mtime,
            ));
        }
        e
    }
}

/// UTF-16 (with a BOM) or UTF-8 text; `None` for the encoding when it was UTF-8.
fn text_of(data: &[u8]) -> (String, Option<&'static str>) {
    let utf16 = |le: bool, b: &[u8]| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = data.strip_prefix(b"\xff\xfe") {
        (utf16(true, rest), Some("UTF-16LE"))
    } else if let Some(rest) = data.strip_prefix(b"\xfe\xff") {
        (utf16(false, rest), Some("UTF-16BE"))
    } else {
        let b = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        (String::from_utf8_lossy(b).into_owned(), None)
    }
}

fn known_everywhere(a: &str) -> bool {
    TARGETS.iter().all(|t| arch::lookup(t.arch, a).is_some())
}

const TRIGGERS: &[&str] = &["create", "copy", "start", "rename"];

/// Decides the repair. `now` is the caller's clock (a missing or unreadable creation date
/// becomes it); `rootfs_arch` is the architecture the rootfs's ELF header shows, when read.
pub fn plan(
    parts: &MetaParts,
    report: &Report,
    now: i64,
    rootfs_arch: Option<&str>,
) -> Result<Plan, String> {
    if parts.format.is_none() {
        return Err(
            "the metadata file is not a tarball LXD reads: nothing to repair mechanically".into(),
        );
    }
    let refusal = || {
        report.verdicts.iter().find_map(|(_, v)| {
            (v.accepted == Some(false))
                .then(|| v.error.clone())
                .flatten()
        })
    };
    let has = |c: FindingCode| report.findings.iter().any(|f| f.code == c);
    let mut fixes: Vec<Fix> = Vec::new();
    let mut unfixable = Vec::new();
    let mut fix = |code: &str, refusal: Option<String>, what: String| {
        fixes.push(Fix {
            code: code.into(),
            refusal,
            what,
        })
    };
    if let Some(e) = &parts.error {
        if parts.members.iter().all(|m| m.name != "metadata.yaml") {
            return Err(format!("the metadata tarball cannot be read: {e}"));
        }
    }
    let by_name = |name: &str| {
        parts
            .members
            .iter()
            .rev()
            .find(|m| m.name == name && m.regular())
    };
    // 1. Where metadata.yaml comes from.
    let root_docs: Vec<&Member> = parts
        .members
        .iter()
        .filter(|m| m.raw == "metadata.yaml" || m.raw == "./metadata.yaml")
        .collect();
    let mut sources: Vec<(String, Vec<u8>)> = Vec::new();
    let mut replaced: Vec<(String, u64)> = Vec::new();
    if root_docs.is_empty() {
        let misplaced = parts.members.iter().find(|m| {
            m.regular()
                && m.name
                    .rsplit('/')
                    .next()
                    .is_some_and(|b| b.eq_ignore_ascii_case("metadata.yaml"))
        });
        match misplaced {
            Some(m) if parts.rootfs_members == 0 || !m.name.contains('/') => {
                fix(
                    "refused",
                    refusal(),
                    format!("{:?} is not at the archive root: written as metadata.yaml", m.raw),
                );
                sources.push((m.raw.clone(), m.data.clone()));
                replaced.push((m.raw.clone(), m.occurrence));
            }
            _ => return Err("no metadata.yaml anywhere in the metadata tarball: nothing to repair from (lxdimg make writes one)".into()),
        }
    }
    for d in &root_docs {
        replaced.push((d.raw.clone(), d.occurrence));
        if d.regular() {
            sources.push((d.raw.clone(), d.data.clone()));
            continue;
        }
        // A symlink (relative to the root) or a hard link (from the root) to another member.
        let target = if d.kind == b'2' && !d.link.starts_with('/') {
            normalize(format!("{}", d.link).as_bytes())
        } else {
            normalize(d.link.as_bytes())
        };
        match by_name(&target) {
            Some(t) => {
                fix(
                    FindingCode::MetadataNotRegular.as_str(),
                    refusal(),
                    format!(
                        "{:?} is a link to {:?}: written as a regular file with its content",
                        d.raw, t.raw
                    ),
                );
                sources.push((d.raw.clone(), t.data.clone()));
            }
            None => unfixable.push(format!(
                "{:?} is a link to {:?}, which is not in the tarball",
                d.raw, d.link
            )),
        }
    }
    if sources.is_empty() {
        return Err(unfixable.join("; "));
    }
    if sources.len() > 1 {
        fix(
            FindingCode::MetadataDuplicate.as_str(),
            None,
            format!("{} metadata.yaml members merged as LXD reads them (each on top of the last) into one", sources.len()),
        );
    }
    // 2. Decode, as LXD does (documents merged in order).
    let mut m = ImageMetadata::default();
    let mut old_yaml = String::new();
    for (i, (name, data)) in sources.iter().enumerate() {
        let (text, enc) = text_of(data);
        if i == 0 {
            old_yaml = text.clone();
        }
        if let Some(enc) = enc {
            fix(
                "refused",
                refusal(),
                format!("{name:?} is {enc}: written as UTF-8"),
            );
        }
        if let Err(e) = decode_into(text.as_bytes(), &mut m, Dialect::V2) {
            if !e.starts_with("yaml: unmarshal errors:") {
                return Err(format!(
                    "{name:?} is not YAML lxdimg can repair mechanically: {e}"
                ));
            }
            // Type errors: the fields that decoded are kept; the others are fixed below.
            fix("refused", Some(e.clone()), "fields with the wrong type are written again with their defaults (fixed below where a default exists)".into());
        }
    }
    // 3. Architecture.
    let old_arch = m.architecture.clone();
    if !known_everywhere(&old_arch) {
        let word = old_arch.split_whitespace().next().unwrap_or("");
        let guess = arch::canonical_any(word)
            .filter(|a| known_everywhere(a))
            .or_else(|| rootfs_arch.filter(|a| known_everywhere(a)));
        match guess {
            Some(a) => {
                let why = if arch::canonical_any(word) == Some(a) {
                    "the name every LXD and Incus version knows"
                } else {
                    "from the ELF header of the rootfs's /bin/sh"
                };
                fix(
                    "refused",
                    refusal().filter(|r| r.contains("rchitecture")),
                    format!("architecture {old_arch:?} → {a:?} ({why})"),
                );
                m.architecture = a.to_string();
            }
            None => unfixable.push(format!(
                "architecture {old_arch:?}: no name every LXD and Incus version knows{}",
                if rootfs_arch.is_none() {
                    " (give the rootfs to read it from /bin/sh)"
                } else {
                    ""
                }
            )),
        }
    }
    // 4. Dates.
    if m.creation_date == 0 {
        fix(
            "refused",
            Some("Missing creation date".into()),
            format!("creation_date → {now} (now)"),
        );
        m.creation_date = now;
    } else if !(1..=DATE_MAX).contains(&m.creation_date) {
        fix(
            FindingCode::DateOutOfRange.as_str(),
            None,
            format!("creation_date {} → {now} (now)", m.creation_date),
        );
        m.creation_date = now;
    }
    if !(0..=DATE_MAX).contains(&m.expiry_date) {
        fix(
            FindingCode::DateOutOfRange.as_str(),
            None,
            format!("expiry_date {} removed", m.expiry_date),
        );
        m.expiry_date = 0;
    }
    // 5. Properties.
    if m.properties.is_none() {
        fix(
            FindingCode::PropertiesMissing.as_str(),
            None,
            "properties: added".into(),
        );
    }
    let props = m.properties.get_or_insert_with(BTreeMap::new);
    let os = report.os_release.as_ref();
    let empty =
        |p: &BTreeMap<String, String>, k: &str| p.get(k).is_none_or(|v| v.trim().is_empty());
    let mut from_os = |key: &str, value: Option<String>, props: &mut BTreeMap<String, String>| {
        if empty(props, key) {
            match value.filter(|v| !v.trim().is_empty()) {
                Some(v) => {
                    fix(
                        FindingCode::PropertyMissing.as_str(),
                        None,
                        format!("properties.{key} → {v:?} (from the rootfs's os-release)"),
                    );
                    props.insert(key.to_string(), v);
                }
                None if has(FindingCode::PropertyMissing) => unfixable.push(format!(
                    "properties.{key} is missing and the rootfs has no os-release that says it"
                )),
                None => {}
            }
        }
    };
    from_os(
        "os",
        os.and_then(|o| o.id.clone().or(o.name.clone())),
        props,
    );
    from_os(
        "release",
        os.and_then(|o| o.version_codename.clone().or(o.version_id.clone())),
        props,
    );
    if empty(props, "description") {
        let name = os
            .and_then(|o| o.pretty_name.clone())
            .or_else(|| Some(format!("{} {}", props.get("os")?, props.get("release")?)));
        if let Some(name) = name {
            let d = format!("{name} {}", m.architecture);
            fix(
                FindingCode::PropertyMissing.as_str(),
                None,
                format!("properties.description → {d:?}"),
            );
            props.insert("description".into(), d);
        }
    }
    // 6. Templates and their files.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for t in parts
        .members
        .iter()
        .filter(|t| t.name.starts_with("templates/"))
    {
        let name = t.name["templates/".len()..].to_string();
        if name.is_empty() || name.contains('/') {
            continue;
        }
        replaced.push((t.raw.clone(), t.occurrence));
        let src = if t.regular() {
            Some(t)
        } else if t.kind == b'2' || t.kind == b'1' {
            let target = if t.kind == b'2' && !t.link.starts_with('/') {
                normalize(format!("templates/{}", t.link).as_bytes())
            } else {
                normalize(t.link.as_bytes())
            };
            let s = by_name(&target);
            if s.is_some() {
                fix(
                    FindingCode::TemplateFileNotRegular.as_str(),
                    None,
                    format!(
                        "templates/{name} is a link: written as a regular file with its content"
                    ),
                );
            }
            s
        } else {
            None
        };
        match src {
            Some(s) if s.complete() => {
                files.insert(name, s.data.clone());
            }
            Some(_) => unfixable.push(format!(
                "templates/{name} is larger than {MEMBER_KEEP} bytes: not carried over"
            )),
            None => {}
        }
    }
    if let Some(rules) = m.templates.take() {
        let mut out: BTreeMap<String, Option<Template>> = BTreeMap::new();
        for (path, rule) in rules {
            let Some(mut rule) = rule else {
                fix(
                    FindingCode::TemplateEmpty.as_str(),
                    None,
                    format!("template rule {path:?} is empty: removed"),
                );
                continue;
            };
            let mut path = path;
            if !path.starts_with('/') {
                let abs = format!("/{}", path.trim_start_matches("./"));
                fix(
                    FindingCode::TemplatePathNotAbsolute.as_str(),
                    None,
                    format!("template path {path:?} → {abs:?}"),
                );
                path = abs;
            }
            if let Some(when) = rule.when.take() {
                let had = !when.is_empty();
                let mut kept: Vec<String> = Vec::new();
                for w in when {
                    let lw = w.trim().to_lowercase();
                    if TRIGGERS.contains(&w.as_str()) {
                        if !kept.contains(&w) {
                            kept.push(w);
                        }
                    } else if TRIGGERS.contains(&lw.as_str()) {
                        fix(
                            FindingCode::TemplateTriggerUnknown.as_str(),
                            None,
                            format!("{path}: trigger {w:?} → {lw:?}"),
                        );
                        if !kept.contains(&lw) {
                            kept.push(lw);
                        }
                    } else {
                        fix(
                            FindingCode::TemplateTriggerUnknown.as_str(),
                            None,
                            format!("{path}: trigger {w:?} removed (LXD never fires it)"),
                        );
                    }
                }
                if had && kept.is_empty() {
                    fix(
                        FindingCode::TemplateNoTrigger.as_str(),
                        None,
                        format!("template rule {path:?} has no trigger LXD fires: removed"),
                    );
                    continue;
                }
                rule.when = Some(kept);
            }
            let base = rule.template.rsplit('/').next().unwrap_or("").to_string();
            let ci = |n: &str| files.keys().find(|k| k.eq_ignore_ascii_case(n)).cloned();
            if rule.template.is_empty() {
                let stem = path.rsplit('/').next().unwrap_or("");
                match ci(&format!("{stem}.tpl")).or_else(|| ci(stem)) {
                    Some(f) => {
                        fix(
                            FindingCode::TemplateNameMissing.as_str(),
                            None,
                            format!("{path}: template → {f:?} (the file named after the target)"),
                        );
                        rule.template = f;
                    }
                    None => {
                        fix(
                            FindingCode::TemplateNameMissing.as_str(),
                            None,
                            format!("template rule {path:?} names no file: removed"),
                        );
                        continue;
                    }
                }
            } else if rule.template.contains('/') {
                match ci(&base) {
                    Some(f) => {
                        fix(
                            FindingCode::TemplateNameInvalid.as_str(),
                            None,
                            format!("{path}: template {:?} → {f:?}", rule.template),
                        );
                        rule.template = f;
                    }
                    None => {
                        fix(FindingCode::TemplateNameInvalid.as_str(), None, format!("template rule {path:?} names {:?}, not a file in templates/: removed", rule.template));
                        continue;
                    }
                }
            } else if !files.contains_key(&rule.template) {
                match ci(&rule.template) {
                    Some(f) => {
                        fix(
                            FindingCode::TemplateFileMissing.as_str(),
                            None,
                            format!("{path}: template {:?} → {f:?}", rule.template),
                        );
                        rule.template = f;
                    }
                    None => {
                        fix(FindingCode::TemplateFileMissing.as_str(), None, format!("template rule {path:?} names templates/{}, which is not in the image: removed (it fails at first start)", rule.template));
                        continue;
                    }
                }
            }
            out.entry(path).or_insert(Some(rule));
        }
        m.templates = Some(out);
    }
    // 7. The tarball itself.
    let recompress = has(FindingCode::LxdMisdetectsFormat) || has(FindingCode::V7Tar);
    if recompress {
        fix(
            if has(FindingCode::LxdMisdetectsFormat) {
                FindingCode::LxdMisdetectsFormat.as_str()
            } else {
                FindingCode::V7Tar.as_str()
            },
            refusal(),
            "the tarball is written as .tar.xz (LXD reads its format by its first bytes)".into(),
        );
    }
    let new_yaml = metadata_yaml(&m);
    for d in [Dialect::V2, Dialect::V4] {
        let mut back = ImageMetadata::default();
        decode_into(new_yaml.as_bytes(), &mut back, d).map_err(|e| {
            format!("lxdimg wrote a metadata.yaml its decoder refuses ({e}): not offered")
        })?;
        if back != m {
            return Err(
                "lxdimg wrote a metadata.yaml that reads back differently: not offered".into(),
            );
        }
    }
    Ok(Plan {
        fixes,
        unfixable,
        old_yaml,
        new_yaml,
        templates: files.into_iter().collect(),
        metadata: m,
        replaced_members: replaced,
        recompress,
        unified: parts.rootfs_members > 0,
    })
}

#[cfg(test)]
mod tests;

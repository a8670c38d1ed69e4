//! Findings about `metadata.yaml` as LXD decodes it: dates, properties, template rules, and the
//! rootfs's os-release against the `os`/`release` properties.

use super::Findings;
use crate::codes::FindingCode as C;
use crate::report::{rfc3339, TemplateReport};
use crate::rootfs::{self, OsRelease};
use crate::view::Collected;
use crate::yaml::ImageMetadata;

const META: &str = "metadata.yaml";

/// The latest date LXD 5.0's database can read back (9999-12-31T23:59:59Z).
pub const MAX_DATE: i64 = 253_402_300_799;

pub(crate) fn metadata_findings(m: &ImageMetadata, now: Option<i64>, out: &mut Findings) {
    for (key, v) in [
        ("creation_date", m.creation_date),
        ("expiry_date", m.expiry_date),
    ] {
        // 0 is "unset": "Missing creation date" is LXD's own verdict, a zero expiry is normal.
        if v == 0 || (1..=MAX_DATE).contains(&v) {
            continue;
        }
        out.add(
            C::DateOutOfRange,
            format!(
                "{key} {v} is outside 1..{MAX_DATE} (year 1970 to 9999): {}",
                if v > MAX_DATE {
                    "LXD 5.0 writes the row but can never read it back, poisoning its image database"
                } else {
                    "a date before 1970 is not a real build time"
                }
            ),
        )
        .entry(META);
    }
    if m.expiry_date != 0 && m.creation_date != 0 && m.expiry_date < m.creation_date {
        out.add(
            C::ExpiryBeforeCreation,
            format!(
                "expiry_date {} is before creation_date {}",
                m.expiry_date, m.creation_date
            ),
        )
        .entry(META);
    }
    if let Some(now) = now {
        if m.expiry_date != 0 && m.expiry_date < now {
            out.add(
                C::Expired,
                format!(
                    "expiry_date {} ({}) is in the past",
                    m.expiry_date,
                    rfc3339(m.expiry_date).unwrap_or_default()
                ),
            )
            .entry(META);
        }
    }
    control_findings(m, out);
    match &m.properties {
        None => {
            out.add(
                C::PropertiesMissing,
                "metadata.yaml has no properties: map; `lxc image import FILE key=value` then crashes LXD's import operation (nil map)",
            )
            .entry(META);
        }
        Some(p) => {
            for key in ["description", "os", "release"] {
                if p.get(key).map(|v| v.trim().is_empty()).unwrap_or(true) {
                    out.add(
                        C::PropertyMissing,
                        format!("properties.{key} is missing or empty; `lxc image list` and simplestreams indexes show it"),
                    )
                    .entry(META);
                }
            }
        }
    }
}

/// At most this many `control-characters` findings, then one that counts the rest.
const MAX_CONTROL_FINDINGS: usize = 16;

/// `base.key`, or `base["key"]` when the key is not a plain word.
fn member(base: &str, key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        format!("{base}.{key}")
    } else {
        format!("{base}[{key:?}]")
    }
}

/// Metadata strings holding control characters (`crate::controls`): LXD stores them as they are,
/// and `lxc image list` / `lxc image info` print property values raw, so an image can recolour,
/// retitle or erase the terminal of whoever lists it.
fn control_findings<'a>(m: &'a ImageMetadata, out: &mut Findings) {
    use crate::controls;
    // (field, value, where it reaches a terminal)
    let mut hits: Vec<(String, &str, &str)> = Vec::new();
    fn hit<'a>(
        hits: &mut Vec<(String, &'a str, &'static str)>,
        field: &dyn Fn() -> String,
        value: &'a str,
        shown: &'static str,
    ) {
        // A TAB only moves to the next column: harmless, not worth a warning. A template
        // property's value may span lines (cloud-init's `#cloud-config` default does, in the
        // public images and in `lxdimg make --template-set cloud-init`).
        let multiline = shown == TEMPLATE_VALUE;
        if value
            .chars()
            .any(|c| c != '\t' && !(multiline && c == '\n') && crate::controls::is_control(c))
        {
            hits.push((field(), value, shown));
        }
    }
    let mut check = |field: &dyn Fn() -> String, value: &'a str, shown: &'static str| {
        hit(&mut hits, field, value, shown)
    };
    const IMPORT: &str = "LXD quotes it as is in the errors `lxc image import` prints";
    const LIST: &str = "`lxc image list` and `lxc image info` on an LXD host print it raw";
    const KEY: &str = "`lxc image info` on an LXD host prints it raw";
    const TEMPLATE: &str = "LXD keeps it as is and a terminal that shows it acts on them";
    const TEMPLATE_VALUE: &str =
        "LXD keeps it as is and a terminal that shows it acts on them (line breaks aside: multi-line values are normal there)";
    check(&|| "architecture".into(), &m.architecture, IMPORT);
    for (k, v) in m.properties.iter().flatten() {
        check(&|| format!("property key {k:?}"), k, KEY);
        check(&|| member("properties", k), v, LIST);
    }
    for (path, t) in m.templates.iter().flatten() {
        let rule = || member("templates", path);
        check(&|| format!("template path {path:?}"), path, TEMPLATE);
        let Some(t) = t else { continue };
        for (i, w) in t.when.iter().flatten().enumerate() {
            check(&|| format!("{}.when[{i}]", rule()), w, TEMPLATE);
        }
        check(&|| format!("{}.template", rule()), &t.template, TEMPLATE);
        for (k, v) in t.properties.iter().flatten() {
            check(&|| format!("property key {k:?} of {}", rule()), k, TEMPLATE);
            check(
                &|| member(&format!("{}.properties", rule()), k),
                v,
                TEMPLATE_VALUE,
            );
        }
    }
    let more = hits.len().saturating_sub(MAX_CONTROL_FINDINGS);
    for (field, value, shown) in hits.into_iter().take(MAX_CONTROL_FINDINGS) {
        out.add(
            C::ControlCharacters,
            format!(
                "{field} holds control characters ({}); {shown}, so they can rewrite what the terminal shows (colours, title, erased or reordered lines)",
                controls::distinct(value, 8).join(" ")
            ),
        )
        .entry(META);
    }
    if more > 0 {
        out.add(
            C::ControlCharacters,
            format!("{more} more metadata fields hold control characters"),
        )
        .entry(META);
    }
}

/// The triggers LXD fires templates on.
pub const TRIGGERS: [&str; 4] = ["create", "copy", "start", "rename"];

/// The template rules joined with their files in `templates/`, and what is wrong with them.
pub(crate) fn template_reports(
    m: &ImageMetadata,
    c: &Collected,
    out: &mut Findings,
) -> Vec<TemplateReport> {
    let mut list = Vec::new();
    let Some(templates) = &m.templates else {
        return list;
    };
    let mut used = std::collections::BTreeSet::new();
    // Template files whose syntax was checked, with whether a rule using them fires.
    let mut checked: std::collections::BTreeMap<String, bool> = Default::default();
    for (path, t) in templates {
        let Some(t) = t else {
            out.add(
                C::TemplateEmpty,
                format!("template rule {path:?} is empty (null)"),
            )
            .entry(META);
            continue;
        };
        let when = t.when.clone().unwrap_or_default();
        for w in when.iter().filter(|w| !TRIGGERS.contains(&w.as_str())) {
            out.add(
                C::TemplateTriggerUnknown,
                format!("template {path:?} has trigger {w:?}, which LXD never fires (known: create, copy, start, rename)"),
            )
            .entry(META);
        }
        if when.is_empty() {
            out.add(
                C::TemplateNoTrigger,
                format!("template {path:?} has no triggers (when:), so it is never applied"),
            )
            .entry(META);
        }
        if !path.starts_with('/') {
            out.add(
                C::TemplatePathNotAbsolute,
                format!("template target {path:?} is not an absolute path"),
            )
            .entry(META);
        }
        let file = c.templates.get(&t.template);
        if t.template.is_empty() {
            out.add(
                C::TemplateNameMissing,
                format!("template {path:?} names no template file (template:); applying it fails at first start"),
            )
            .entry(META);
        } else if t.template.contains('/') || t.template == ".." || t.template == "." {
            out.add(
                C::TemplateNameInvalid,
                format!("template {path:?} names file {:?}; it must be a plain file name under templates/", t.template),
            )
            .entry(META);
        } else if file.is_none() && c.templates_unlisted == 0 {
            out.add(
                C::TemplateFileMissing,
                format!("template {path:?} uses templates/{} which is not in the image; the instance fails at first start", t.template),
            )
            .entry(META);
        } else if file.is_some_and(|f| !f.regular) {
            out.add(
                C::TemplateFileNotRegular,
                format!(
                    "templates/{} is a link or special file; newer LXD refuses symlinked templates",
                    t.template
                ),
            )
            .entry(format!("templates/{}", t.template));
        }
        used.insert(t.template.clone());
        let fires = when.iter().any(|w| TRIGGERS.contains(&w.as_str()));
        if file.is_some_and(|f| f.regular && !f.truncated()) {
            *checked.entry(t.template.clone()).or_default() |= fires;
        }
        list.push(TemplateReport {
            path: path.clone(),
            when,
            template: t.template.clone(),
            create_only: t.create_only,
            properties: t.properties.clone().unwrap_or_default(),
            present: file.is_some(),
            size: file.map(|f| f.size),
            text: file.map(|f| String::from_utf8_lossy(&f.data).into_owned()),
            text_truncated: file.is_some_and(|f| f.truncated()),
        });
    }
    for (name, fires) in &checked {
        let text = crate::template::text_of(&c.templates[name].data);
        let Err(e) = crate::template::check_lxd(&text) else {
            continue;
        };
        if e.kind() != crate::template::Kind::Syntax {
            continue; // lxdimg's own limits or a tag it does not render: no verdict
        }
        let at = if e.line > 0 {
            format!(", line {} column {}", e.line, e.col)
        } else {
            String::new()
        };
        let hint = e
            .hint
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let when = if *fires {
            "when LXD applies it, the instance's start fails with this error"
        } else {
            "no rule using it has a trigger LXD fires, so LXD never applies it"
        };
        let add = out
            .add(
                C::TemplateSyntax,
                format!(
                    "templates/{name}{at}: pongo2 refuses it: {}{hint}; {when}",
                    e.message
                ),
            )
            .entry(format!("templates/{name}"));
        if !fires {
            add.severity(crate::codes::Severity::Warning);
        }
    }
    for name in c.templates.keys().filter(|n| !used.contains(*n)) {
        out.add(
            C::TemplateFileUnused,
            format!("templates/{name} is not used by any template rule in metadata.yaml"),
        )
        .entry(format!("templates/{name}"));
    }
    list
}

/// The rootfs's os-release (following the usual `etc/os-release` → `usr/lib/os-release` link).
pub(crate) fn os_release_of(c: &Collected) -> Option<OsRelease> {
    let etc = c.os_etc.as_ref()?;
    let text = if etc.regular {
        &etc.data
    } else {
        // Usually a symlink to ../usr/lib/os-release.
        let link = c.os_etc_link.as_deref().unwrap_or_default();
        if link.ends_with(b"usr/lib/os-release") {
            &c.os_usr.as_ref()?.data
        } else {
            return None;
        }
    };
    Some(rootfs::os_release(text))
}

pub(crate) fn os_release_findings(os: &OsRelease, m: &ImageMetadata, out: &mut Findings) {
    let Some(p) = &m.properties else { return };
    let entry = "rootfs/etc/os-release";
    if let Some(v) = p.get("os").filter(|v| !v.is_empty()) {
        if !os.matches_os(v) {
            out.add(
                C::OsReleaseMismatch,
                format!(
                    "properties.os is {v:?} but the rootfs's os-release says ID={:?} NAME={:?}",
                    os.id.clone().unwrap_or_default(),
                    os.name.clone().unwrap_or_default()
                ),
            )
            .entry(entry);
        }
    }
    if let Some(v) = p.get("release").filter(|v| !v.is_empty()) {
        if !os.matches_release(v) {
            out.add(
                C::OsReleaseMismatch,
                format!(
                    "properties.release is {v:?} but the rootfs's os-release says VERSION_ID={:?} VERSION_CODENAME={:?}",
                    os.version_id.clone().unwrap_or_default(),
                    os.version_codename.clone().unwrap_or_default()
                ),
            )
            .entry(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn control_findings_name_the_field_and_are_capped() {
        let mut m = ImageMetadata {
            architecture: "amd64".into(),
            ..Default::default()
        };
        m.properties = Some(
            (0..20)
                .map(|i| (format!("k{i:02}"), format!("v\u{1b}[{i}m")))
                .chain([("ok".to_string(), "plain ✓ text".to_string())])
                .collect(),
        );
        let mut out = Findings::default();
        control_findings(&m, &mut out);
        let list = out.into_sorted();
        assert_eq!(list.len(), MAX_CONTROL_FINDINGS + 1);
        assert!(list.iter().all(|f| f.code == C::ControlCharacters));
        assert!(list[0]
            .message
            .starts_with("properties.k00 holds control characters (\\u{1b}); `lxc image list`"));
        assert_eq!(
            list[MAX_CONTROL_FINDINGS].message,
            "4 more metadata fields hold control characters"
        );
        let mut clean = Findings::default();
        m.properties = Some([("description".into(), "a\tTAB is harmless".into())].into());
        control_findings(&m, &mut clean);
        assert!(clean.into_sorted().is_empty());
        // A template property may span lines (cloud-init's default); a property may not.
        let mut rules = BTreeMap::new();
        rules.insert(
            "/var/lib/cloud/seed/nocloud-net/user-data".to_string(),
            Some(crate::yaml::Template {
                when: Some(vec!["create".into()]),
                template: "cloud-init-user.tpl".into(),
                properties: Some([("default".into(), "#cloud-config\n{}".into())].into()),
                ..Default::default()
            }),
        );
        let mut multiline = m.clone();
        multiline.templates = Some(rules);
        let mut out = Findings::default();
        control_findings(&multiline, &mut out);
        assert!(out.into_sorted().is_empty());
        let mut newline = Findings::default();
        m.properties = Some([("description".into(), "a\nPublic: yes".into())].into());
        control_findings(&m, &mut newline);
        assert!(newline.into_sorted()[0].message.contains("(\\n)"));
    }
}

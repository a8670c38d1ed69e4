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

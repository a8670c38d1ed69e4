//! `os-release` parsing.

use serde::Serialize;

/// The fields of an `os-release` file that say which distribution and release it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OsRelease {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
}

/// Parses `KEY=value` lines (shell-quoted values) of an os-release file.
pub fn os_release(text: &[u8]) -> OsRelease {
    let mut r = OsRelease::default();
    for line in String::from_utf8_lossy(text).lines() {
        let line = line.trim();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v)
            .to_string();
        match k {
            "ID" => r.id = Some(v),
            "NAME" => r.name = Some(v),
            "VERSION_ID" => r.version_id = Some(v),
            "VERSION_CODENAME" => r.version_codename = Some(v),
            "PRETTY_NAME" => r.pretty_name = Some(v),
            _ => {}
        }
    }
    r
}

impl OsRelease {
    /// Whether the `os` property names this distribution.
    pub fn matches_os(&self, os: &str) -> bool {
        let os = os.trim().to_lowercase();
        [&self.id, &self.name, &self.pretty_name]
            .iter()
            .filter_map(|v| v.as_deref())
            .any(|v| {
                v.to_lowercase() == os
                    || v.to_lowercase().split_whitespace().next() == Some(os.as_str())
            })
    }

    /// Whether the `release` property names this release (codename or version).
    pub fn matches_release(&self, release: &str) -> bool {
        let rel = release.trim().to_lowercase();
        let ok = |v: &Option<String>| {
            v.as_deref().map(|v| v.to_lowercase()).is_some_and(|v| {
                v == rel || v.starts_with(&format!("{rel}.")) || rel.starts_with(&format!("{v}."))
            })
        };
        ok(&self.version_id)
            || ok(&self.version_codename)
            || self
                .pretty_name
                .as_deref()
                .is_some_and(|p| p.to_lowercase().contains(&rel))
    }
}

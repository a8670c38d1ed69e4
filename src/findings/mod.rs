//! Findings: what lxdimg notices beyond (or explaining) LXD's verdict, built from the read-only
//! views of [`crate::view`].
//!
//! ```text
//! out.add(FindingCode::DecodeError, message).file(role).offset(at);
//! ```

mod file;
mod metadata;
mod rootfs;

pub(crate) use file::file_findings;
pub(crate) use metadata::{metadata_findings, os_release_findings, os_release_of, template_reports};
pub(crate) use rootfs::rootfs_report;

use crate::codes::{FindingCode, Severity};
use crate::report::{FileRole, Finding};

/// Quotes a word for a POSIX shell when it needs it (for the commands findings suggest).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The findings of one inspection, in the order they were noticed.
#[derive(Debug, Default)]
pub struct Findings(Vec<Finding>);

/// A finding being built: the code and message are given, the rest is optional.
pub struct Add<'a>(&'a mut Finding);

impl Add<'_> {
    pub fn severity(self, severity: Severity) -> Self {
        self.0.severity = severity;
        self
    }
    pub fn file(self, role: FileRole) -> Self {
        self.0.file = Some(role);
        self
    }
    pub fn offset(self, offset: u64) -> Self {
        self.0.offset = Some(offset);
        self
    }
    pub fn entry(self, entry: impl Into<String>) -> Self {
        self.0.entry = Some(entry.into());
        self
    }
}

impl Findings {
    /// Adds a finding with the code's usual severity.
    pub fn add(&mut self, code: FindingCode, message: impl Into<String>) -> Add<'_> {
        self.0.push(Finding {
            code,
            severity: code.severity(),
            message: message.into(),
            file: None,
            offset: None,
            entry: None,
        });
        Add(self.0.last_mut().expect("just pushed"))
    }

    /// The findings, errors first (stable within a severity).
    pub fn into_sorted(mut self) -> Vec<Finding> {
        self.0.sort_by_key(|f| f.severity);
        self.0
    }

    pub fn codes(&self) -> impl Iterator<Item = FindingCode> + '_ {
        self.0.iter().map(|f| f.code)
    }
}

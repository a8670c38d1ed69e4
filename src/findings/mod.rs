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
pub(crate) use metadata::{
    metadata_findings, os_release_findings, os_release_of, template_reports,
};
pub(crate) use rootfs::rootfs_report;

use crate::codes::{FindingCode, Severity};
use crate::report::{FileRole, Finding};

/// Quotes a word for a POSIX shell when it needs it (for the commands findings suggest). A word
/// with control characters (`crate::controls`) is written as bash's `$'…'` with escapes, so the
/// command shows no raw control character and still names the same file when pasted.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,%".contains(c))
    {
        s.to_string()
    } else if s.chars().any(crate::controls::is_control) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if crate::controls::is_control(c) && (c as u32) < 0x80 => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if crate::controls::is_control(c) => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeError, Trailing};
    use crate::detect::Format;
    use crate::view::{Collected, FileView, ImageView, TarView};

    fn view<'a>(collected: &'a Collected, error: Option<&'a DecodeError>) -> FileView<'a> {
        FileView {
            role: FileRole::Unified,
            name: Some("hand-built.tar.xz"),
            size: 4096,
            partial: false,
            format: Some(Format::Xz),
            head: b"\xfd7zXZ\0",
            tar: Some(TarView {
                entries: 3,
                data_bytes: 100,
                offset: 2048,
                end: None,
                error: None,
            }),
            decode_error: error,
            bomb: None,
            trailing: Some(Trailing {
                offset: 4000,
                len: 96,
                all_zero: true,
            }),
            collected,
            squashfs_tables: None,
        }
    }

    #[test]
    fn findings_from_a_hand_built_view() {
        let collected = Collected {
            saw_container_root: true,
            saw_vm_root: true,
            ..Default::default()
        };
        let e = DecodeError {
            offset: 1234,
            message: "xz: Compressed data is corrupt".into(),
        };
        let mut out = Findings::default();
        file_findings(&view(&collected, Some(&e)), &mut out);
        let codes: Vec<_> = out.codes().collect();
        assert_eq!(
            codes,
            [
                FindingCode::DecodeError,
                FindingCode::TrailingData,
                FindingCode::RootfsAndDisk
            ]
        );
        let sorted = out.into_sorted();
        assert_eq!(sorted[0].offset, Some(1234));
        assert_eq!(sorted.last().unwrap().severity, Severity::Info); // zero padding

        // The same view, judged for creation: the decode error is what GNU tar reports.
        let image = ImageView {
            files: vec![view(&collected, Some(&e))],
            split_type: None,
        };
        let c = crate::creatable::unpack_outcome(&image, true);
        assert_eq!(c.code, Some(crate::report::CreatableCode::DecodeError));
        assert!(c
            .error
            .unwrap()
            .contains("xz: (stdin): Compressed data is corrupt"));
    }
}

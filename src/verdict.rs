//! LXD's and Incus's import decisions, per target version, from what the walk recorded.

use crate::arch::{self, ArchRules};
use crate::detect::{detect_incus_table, detect_lxd, Detection, Format};
use crate::limits::{LXD_METADATA_YAML_CAP, METADATA_YAML_KEEP, METADATA_YAML_KEEP_TOTAL};
use crate::report::{Creatable, ImageType, Verdict};
use crate::tar::TarError;
use crate::yaml::{decode_into, Dialect, ImageMetadata};

/// One LXD or Incus build whose import behaviour lxdimg reproduces.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The key of this target's verdict in the Report (`lxd-5.0`, …).
    pub key: &'static str,
    /// How people name the build (the page's column heading, the CLI's verdict list).
    pub label: &'static str,
    /// Incus's detection table (zstd/lz4 before ustar).
    pub incus_detection: bool,
    /// Incus's table checks that enough bytes were read for each rule (after Incus 6.0.4).
    pub detection_guards: bool,
    pub dialect: Dialect,
    /// The error when `metadata.yaml` is over 1 MiB, if this build caps it.
    pub yaml_cap: Option<&'static str>,
    /// Whether a non-regular `metadata.yaml` is refused by name.
    pub regular_check: bool,
    pub arch: ArchRules,
    /// Quotes the architecture in its error (`"x"`), and the wording.
    pub arch_message: fn(&str) -> String,
    /// The real daemon build the verdicts were checked against by the differential tests
    /// (`None`: reproduced from the source code only).
    pub checked_against: Option<&'static str>,
    /// The host this build ships with has `sqfs2tar` (squashfs-tools-ng): a squashfs metadata
    /// file is unpacked instead of refused.
    pub sqfs2tar: bool,
}

fn arch_msg_old(a: &str) -> String {
    format!("Architecture isn't supported: {a}")
}
fn arch_msg_new(a: &str) -> String {
    format!("Architecture is not supported: {a:?}")
}

const LXD_CAP: &str = "yaml: input error: input data is larger than maximum 1048576 bytes";
const INCUS_CAP: &str = "yaml: input error: input data too large";

/// The Debian 12 build of LXD 5.0.2: 1 MiB cap with Incus wording, `mipsle`, no loongarch64.
pub const LXD_5_0: Target = Target {
    key: "lxd-5.0",
    label: "LXD 5.0 (5.0.2, Debian 12)",
    incus_detection: false,
    detection_guards: false,
    dialect: Dialect::V2,
    yaml_cap: Some(INCUS_CAP),
    regular_check: false,
    arch: ArchRules {
        mipsle: true,
        loongarch: false,
        amd64v3: false,
        x86_64_levels: false,
        first_word: false,
    },
    arch_message: arch_msg_old,
    checked_against: Some("LXD 5.0.2 (Debian 12 package 5.0.2-5+deb12u6)"),
    sqfs2tar: false,
};
/// LXD 5.21.7.
pub const LXD_5_21: Target = Target {
    key: "lxd-5.21",
    label: "LXD 5.21",
    incus_detection: false,
    detection_guards: false,
    dialect: Dialect::V2,
    yaml_cap: Some(LXD_CAP),
    regular_check: true,
    arch: ArchRules {
        mipsle: true,
        loongarch: true,
        amd64v3: true,
        x86_64_levels: false,
        first_word: true,
    },
    arch_message: arch_msg_new,
    checked_against: None,
    sqfs2tar: false,
};
/// LXD 6.9.
pub const LXD_6: Target = Target {
    key: "lxd-6",
    label: "LXD 6",
    incus_detection: false,
    detection_guards: false,
    dialect: Dialect::V2,
    yaml_cap: Some(LXD_CAP),
    regular_check: false,
    arch: ArchRules {
        mipsle: true,
        loongarch: true,
        amd64v3: true,
        x86_64_levels: false,
        first_word: true,
    },
    arch_message: arch_msg_new,
    checked_against: None,
    sqfs2tar: false,
};
/// Debian's Incus 6.0.4 (bookworm-backports): upstream Incus 6.0 with Debian's YAML library,
/// which caps `metadata.yaml` at 1 MiB.
pub const INCUS_6_0: Target = Target {
    key: "incus-6.0",
    label: "Incus 6.0 (6.0.4, Debian 12 backports)",
    incus_detection: true,
    detection_guards: false,
    dialect: Dialect::V2,
    yaml_cap: Some(INCUS_CAP),
    regular_check: false,
    arch: ArchRules {
        mipsle: true,
        loongarch: true,
        amd64v3: false,
        x86_64_levels: false,
        first_word: false,
    },
    arch_message: arch_msg_old,
    checked_against: Some("Incus 6.0.4 (Debian package 6.0.4-2+deb13u7~bpo12+1)"),
    sqfs2tar: true,
};
/// Upstream Incus 6.x (no YAML cap).
pub const INCUS_6: Target = Target {
    key: "incus-6",
    label: "Incus 6 (upstream)",
    incus_detection: true,
    detection_guards: true,
    dialect: Dialect::V2,
    yaml_cap: None,
    regular_check: false,
    arch: ArchRules {
        mipsle: true,
        loongarch: true,
        amd64v3: false,
        x86_64_levels: true,
        first_word: false,
    },
    arch_message: arch_msg_old,
    checked_against: None,
    sqfs2tar: true,
};
/// Incus 7.
pub const INCUS_7: Target = Target {
    key: "incus-7",
    label: "Incus 7",
    incus_detection: true,
    detection_guards: true,
    dialect: Dialect::V4,
    yaml_cap: Some(INCUS_CAP),
    regular_check: false,
    arch: ArchRules {
        mipsle: true,
        loongarch: true,
        amd64v3: false,
        x86_64_levels: true,
        first_word: false,
    },
    arch_message: arch_msg_old,
    checked_against: None,
    sqfs2tar: true,
};

/// Every target, in the Report's order. This list is the one definition: the Report's verdict
/// map, its TypeScript type, the CLI's verdict list and the page's columns all come from it.
pub const TARGETS: [Target; 6] = [LXD_5_0, LXD_5_21, LXD_6, INCUS_6_0, INCUS_6, INCUS_7];

/// The target the CLI's exit status, the early verdict and the worker's upload gate follow.
pub const REFERENCE: Target = LXD_5_0;

/// The target with this key.
pub fn target(key: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.key == key)
}

/// One `metadata.yaml` entry LXD decodes (those before its early stop).
#[derive(Debug, Clone)]
pub struct MetaDoc {
    /// The entry name as written (`metadata.yaml` or `./metadata.yaml`).
    pub name: String,
    pub regular: bool,
    /// Data size according to the header.
    pub size: u64,
    /// Kept data (up to [`METADATA_YAML_KEEP`]).
    pub data: Vec<u8>,
    /// Whether all of the entry's data arrived (false if the stream ended inside it).
    pub complete: bool,
}

/// What LXD's metadata walk over the image (or the metadata tarball) saw.
#[derive(Debug, Clone, Default)]
pub struct LxdWalk<'a> {
    /// First bytes of the file (up to 263), for detection.
    pub head: &'a [u8],
    /// The format lxdimg decoded the file as.
    pub decoded_as: Option<Format>,
    pub docs: &'a [MetaDoc],
    /// Root type seen (last one wins), before the stop.
    pub root: Option<ImageType>,
    /// A tar error hit before the stop.
    pub tar_error: Option<&'a TarError>,
    /// The walk was cut short by lxdimg's expansion limits before LXD's stop: why, in plain
    /// words. LXD would decompress on, so what it decides is not known (unless a target already
    /// fails on what was read).
    pub cut: Option<String>,
}

/// The rootfs file of a split image, as the `lxc` client checks it.
#[derive(Debug, Clone)]
pub struct SplitRootfs<'a> {
    pub head: &'a [u8],
    /// Whether the `lxc` client's detection runs on it (it does unless the uploader names the
    /// multipart part itself, as API clients and the edge worker do).
    pub client_check: bool,
}

/// Why an import does not go through: the target's own error, or lxdimg cannot tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The target refuses the image with this message, word for word.
    Lxd(String),
    /// lxdimg cannot judge what the target would do (a limit of lxdimg's, not the target's).
    NotJudged(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal::Lxd(message)
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal::Lxd(message.to_string())
    }
}

/// Decodes the `metadata.yaml` entries the way `target` would; the error is LXD's message.
/// What the YAML decoder gets from a reader that fails mid-entry.
const YAML_EOF: &str = "yaml: input error: unexpected EOF";

pub fn decode_docs(target: &Target, docs: &[MetaDoc]) -> Result<ImageMetadata, Refusal> {
    let mut md = ImageMetadata::default();
    for doc in docs {
        if target.regular_check && !doc.regular {
            return Err(format!("Cannot read non-regular file {:?}", doc.name).into());
        }
        if let Some(cap) = target.yaml_cap {
            if doc.size > LXD_METADATA_YAML_CAP as u64 && doc.data.len() > LXD_METADATA_YAML_CAP {
                return Err(cap.into());
            }
        }
        if doc.size > METADATA_YAML_KEEP as u64 && target.yaml_cap.is_none() {
            return Err(Refusal::NotJudged(format!(
                "metadata.yaml is {} bytes; lxdimg judges files up to {} bytes for {}",
                doc.size, METADATA_YAML_KEEP, target.key
            )));
        }
        if doc.complete && (doc.data.len() as u64) < doc.size {
            // Over METADATA_YAML_KEEP_TOTAL: the entry was not kept whole.
            if target.yaml_cap.is_none() || doc.data.len() <= LXD_METADATA_YAML_CAP {
                return Err(Refusal::NotJudged(format!(
                    "the metadata.yaml entries hold more than {METADATA_YAML_KEEP_TOTAL} bytes together, which lxdimg does not keep; {} is not kept whole",
                    doc.name
                )));
            }
        }
        if !doc.complete {
            // What the YAML decoder gets from a reader that fails mid-entry.
            return Err(YAML_EOF.into());
        }
        decode_into(&doc.data, &mut md, target.dialect).map_err(|e| {
            match e.strip_prefix(crate::yaml::NOT_JUDGED) {
                Some(why) => Refusal::NotJudged(why.to_string()),
                None => Refusal::Lxd(e),
            }
        })?;
    }
    Ok(md)
}

/// The import verdict of one target.
///
/// `fingerprint` is the image's, for the one error that names it (`None`: not computed yet).
pub fn evaluate(
    target: &Target,
    walk: &LxdWalk<'_>,
    split_rootfs: Option<&SplitRootfs<'_>>,
    fingerprint: Option<&str>,
) -> (Verdict, Option<ImageMetadata>) {
    let (mut v, md) = evaluate_import(target, walk, split_rootfs, fingerprint);
    v.checked_against = target.checked_against;
    v.architecture = md
        .as_ref()
        .and_then(|m| arch::lookup(target.arch, &m.architecture))
        .map(|(_, name)| name);
    (v, md)
}

fn evaluate_import(
    target: &Target,
    walk: &LxdWalk<'_>,
    split_rootfs: Option<&SplitRootfs<'_>>,
    fingerprint: Option<&str>,
) -> (Verdict, Option<ImageMetadata>) {
    let reject = |e: Refusal| (verdict(Some(e)), None);
    let detect = |head: &[u8]| {
        if target.incus_detection {
            detect_incus_table(head, target.detection_guards)
        } else {
            detect_lxd(head)
        }
    };
    // The client checks a split rootfs before anything is uploaded.
    if let Some(r) = split_rootfs.filter(|r| r.client_check) {
        match detect(&r.head) {
            Detection::Empty => return reject("EOF".into()),
            Detection::Unsupported => return reject("Unsupported compression".into()),
            Detection::Format(_) => {}
        }
    }
    let format = match detect(&walk.head) {
        Detection::Empty => return reject("EOF".into()),
        Detection::Unsupported => return reject("Unsupported compression".into()),
        Detection::Format(f) => f,
    };
    match format {
        Format::Squashfs if target.sqfs2tar => {
            return reject(Refusal::NotJudged(
                "the metadata file is a squashfs, which this host unpacks with sqfs2tar; lxdimg does not read squashfs contents".into(),
            ))
        }
        Format::Squashfs => {
            return reject("exec: \"sqfs2tar\": executable file not found in $PATH".into())
        }
        Format::Qcow2 | Format::Vmdk => {
            return reject("Metadata tarball is missing metadata.yaml".into())
        }
        _ => {}
    }
    if Some(format) != walk.decoded_as {
        if format == Format::Lz4 && walk.decoded_as.is_none() {
            return reject(Refusal::NotJudged(
                "lxdimg does not decode lz4 tarballs (Incus reads them)".into(),
            ));
        }
        // The target pipes the file through the wrong decompressor, which outputs nothing.
        return reject("Metadata tarball is missing metadata.yaml".into());
    }
    if let Some(why) = &walk.cut {
        let partial = walk.docs.last().is_some_and(|d| !d.complete);
        return match decode_docs(target, &walk.docs) {
            Err(Refusal::Lxd(e)) if !(partial && e == YAML_EOF) => reject(Refusal::Lxd(e)),
            Err(Refusal::NotJudged(e)) => reject(Refusal::NotJudged(e)),
            _ => reject(Refusal::NotJudged(format!(
                "{why}, before LXD would have stopped reading; LXD would decompress on, so its verdict is not known"
            ))),
        };
    }
    let md = match decode_docs(target, &walk.docs) {
        Ok(md) => md,
        Err(e) => return reject(e),
    };
    if let Some(e) = &walk.tar_error {
        return reject(e.go_message.into());
    }
    if walk.docs.is_empty() {
        return reject("Metadata tarball is missing metadata.yaml".into());
    }
    if arch::lookup(target.arch, &md.architecture).is_none() {
        return (
            verdict(Some((target.arch_message)(&md.architecture).into())),
            Some(md),
        );
    }
    if md.creation_date == 0 {
        return (verdict(Some("Missing creation date".into())), Some(md));
    }
    if split_rootfs.is_none() && walk.root.is_none() {
        return (verdict(Some("Invalid instance type".into())), Some(md));
    }
    // The row is written, but the database cannot read the date back: the import operation
    // fails (and the row stays behind, see the date-out-of-range finding).
    if let Some(e) = [md.creation_date, md.expiry_date]
        .into_iter()
        .find_map(unreadable_date)
    {
        let fp = fingerprint.unwrap_or("<fingerprint>");
        return (
            verdict(Some(
                format!(
                    "Fetch image \"{fp}\": Failed to fetch images: Failed to fetch images: {e}"
                )
                .into(),
            )),
            Some(md),
        );
    }
    (verdict(None), Some(md))
}

/// How LXD's database stores a Unix time (Go's `time.Unix(t, 0).UTC()` as
/// `2006-01-02 15:04:05-07:00`, the year with at least four digits).
pub fn db_time(t: i64) -> String {
    let (y, m, d, secs) = crate::report::civil(t);
    let year = if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    format!(
        "{year}-{m:02}-{d:02} {:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The error reading `t` back from LXD's database gives (Go's `time.Parse` of [`db_time`] with a
/// four-digit year), or `None` when the year is 0000–9999.
pub fn unreadable_date(t: i64) -> Option<String> {
    let text = db_time(t);
    let (rest, layout) = if text.starts_with('-') {
        (text.as_str(), "2006")
    } else if text.as_bytes()[4] != b'-' {
        (&text[4..], "-")
    } else {
        return None;
    };
    Some(format!(
        "parsing time {text:?} as \"2006-01-02\": cannot parse {rest:?} as {layout:?}"
    ))
}

fn verdict(refusal: Option<Refusal>) -> Verdict {
    let (accepted, error, reason) = match refusal {
        None => (Some(true), None, None),
        Some(Refusal::Lxd(e)) => (Some(false), Some(e), None),
        Some(Refusal::NotJudged(why)) => (None, None, Some(why)),
    };
    Verdict {
        accepted,
        error,
        reason,
        creatable: Creatable::default(),
        checked_against: None,
        architecture: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_the_database_cannot_read_back() {
        // Measured on LXD 5.0.2 and Incus 6.0.4 (facts §2.5, §8.1).
        assert_eq!(unreadable_date(253_402_300_799), None);
        assert_eq!(
            unreadable_date(253_402_300_800).unwrap(),
            r#"parsing time "10000-01-01 00:00:00+00:00" as "2006-01-02": cannot parse "0-01-01 00:00:00+00:00" as "-""#
        );
        assert_eq!(unreadable_date(-62_135_596_801), None); // 0000-12-31, accepted
        assert_eq!(unreadable_date(-62_167_219_200), None); // 0000-01-01
        assert!(unreadable_date(-62_167_219_201)
            .unwrap()
            .contains(r#"as "2006""#));
        // Measured on Incus 6.0.4 with creation_date: 9223372036854775807.
        assert_eq!(
            unreadable_date(i64::MAX).unwrap(),
            r#"parsing time "292277026596-12-04 15:30:07+00:00" as "2006-01-02": cannot parse "77026596-12-04 15:30:07+00:00" as "-""#
        );
        assert!(unreadable_date(i64::MIN).is_some());
        assert_eq!(db_time(1_458_040_200), "2016-03-15 11:10:00+00:00");
    }
}

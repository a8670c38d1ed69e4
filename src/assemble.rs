//! Builds the [`Report`] from the read-only views of the finished files: the verdict of every
//! target, creatability, findings, templates and the summaries.

use crate::arch;
use crate::codes::FindingCode;
use crate::creatable::{creatable, unpack_outcome};
use crate::findings::{self, Findings};
use crate::inspector::Options;
use crate::report::*;
use crate::verdict::{self, REFERENCE, TARGETS};
use crate::view::ImageView;
use crate::yaml::{decode_into, ImageMetadata};

/// What the inspector hands over at the end.
pub(crate) struct Inputs<'a> {
    pub image: &'a ImageView<'a>,
    pub opts: &'a Options,
    /// The fingerprint and each file's SHA-256 (`None` when not every byte was read).
    pub fingerprint: Option<String>,
    pub hashes: Vec<Option<String>>,
    pub bytes_consumed: u64,
    pub verdict_offset: Option<u64>,
    /// Every byte of every file was read.
    pub complete: bool,
}

pub(crate) fn report(i: Inputs<'_>) -> Report {
    let image = i.image;
    let complete = i.complete;
    let (walk, split) = image.lxd_walk();
    let unpack = unpack_outcome(image, complete);
    let mut reference_md = None;
    let mut list = Vec::with_capacity(TARGETS.len());
    for t in TARGETS.iter() {
        let (mut v, md) = verdict::evaluate(t, &walk, split.as_ref(), i.fingerprint.as_deref());
        if t.key == REFERENCE.key {
            reference_md = md.clone();
        }
        let arch_text = md.as_ref().map(|m| m.architecture.as_str());
        v.creatable = creatable(t, &v, &unpack, arch_text, i.opts.host_arch.as_deref());
        list.push((t.key, v));
    }
    let verdicts = Verdicts(list);

    let first = image.first();
    // What metadata.yaml says, decoded as leniently as the reference target would before failing.
    let md = reference_md.or_else(|| {
        let docs = &first.collected.docs;
        if docs.is_empty() {
            return None;
        }
        let mut md = ImageMetadata::default();
        for d in docs.iter().filter(|d| d.complete) {
            let _ = decode_into(&d.data, &mut md, REFERENCE.dialect);
        }
        Some(md)
    });
    let image_type = image.image_type();
    let architecture = md
        .as_ref()
        .and_then(|m| arch::lookup(REFERENCE.arch, &m.architecture))
        .map(|(_, n)| n.to_string());

    let mut out = Findings::default();
    for f in &image.files {
        findings::file_findings(f, &mut out);
    }
    let templates = md
        .as_ref()
        .map(|m| findings::template_reports(m, first.collected, &mut out))
        .unwrap_or_default();
    if let Some(m) = &md {
        findings::metadata_findings(m, i.opts.now, &mut out);
    }
    let os_release = findings::os_release_of(image.rootfs_file().unwrap_or(first).collected);
    if let (Some(os), Some(m)) = (&os_release, &md) {
        findings::os_release_findings(os, m, &mut out);
    }
    let rootfs = findings::rootfs_report(image, &mut out);
    if !complete {
        out.add(
            FindingCode::Quick,
            format!("reading stopped once LXD's verdict was known, after {} bytes; the fingerprint and checks past that point were not computed", i.bytes_consumed),
        );
    }

    let files = image
        .files
        .iter()
        .zip(i.hashes)
        .map(|(f, sha256)| FileReport {
            role: f.role,
            name: f.name.map(str::to_string),
            size: f.size,
            sha256,
            compression: Compression::of(f.size, f.format),
            decoded_size: f.tar.map(|t| t.offset),
        })
        .collect();
    let tar = first.tar.map(|t| TarSummary {
        entries: t.entries,
        bytes: t.data_bytes,
        end: tar_end(t.error.is_some(), t.end, complete && !first.partial),
    });
    let metadata = md.map(|m| MetadataReport {
        created: rfc3339(m.creation_date),
        expires: rfc3339(m.expiry_date),
        architecture: m.architecture,
        creation_date: m.creation_date,
        expiry_date: m.expiry_date,
        properties: m.properties.unwrap_or_default(),
        templates: m.templates.unwrap_or_default(),
    });
    Report {
        short_fingerprint: i.fingerprint.as_ref().map(|f| f[..12].to_string()),
        fingerprint: i.fingerprint,
        format: if image.is_split() {
            ImageFormat::Split
        } else {
            ImageFormat::Unified
        },
        files,
        image_type,
        architecture,
        verdicts,
        metadata,
        templates,
        findings: out.into_sorted(),
        verdict_offset: i.verdict_offset,
        complete,
        tar,
        rootfs,
        os_release,
    }
}

fn tar_end(error: bool, end: Option<crate::tar::TarEnd>, complete: bool) -> TarEnd {
    use crate::tar::TarEnd as Walk;
    if error {
        return TarEnd::Error;
    }
    match end {
        Some(Walk::Marker) => TarEnd::Marker,
        Some(Walk::LoneZeroBlock) => TarEnd::LoneZeroBlock,
        Some(Walk::NoMarker) if complete => TarEnd::NoMarker,
        _ => TarEnd::Incomplete,
    }
}

//! `lxdimg make`: a split image from a rootfs file. The rootfs is read once
//! ([`probe::RootfsProbe`]: the architecture from the ELF header of `/bin/sh`, `os-release`),
//! the metadata is proposed from it ([`propose`]), and the metadata tarball is written in memory
//! ([`metadata_tarball`]: `metadata.yaml` and `templates/`, xz-compressed like the public images'
//! `lxd.tar.xz`). The caller then inspects the made pair with the [`crate::Inspector`] (which
//! computes the fingerprint) before offering it.

pub mod elf;
pub mod emit;
pub mod probe;

use crate::template::sets::{files, TemplateSet};
use crate::yaml::{ImageMetadata, Template};
use std::collections::BTreeMap;

pub use emit::metadata_yaml;
pub use probe::{ArchGuess, Probe, RootfsProbe};

/// What the user says, overriding what the rootfs says.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub release: Option<String>,
    pub variant: Option<String>,
    pub description: Option<String>,
    pub template_set: Option<TemplateSet>,
}

impl Choices {
    /// Whether nothing needs to be read from the rootfs (the architecture, os and release are
    /// given): then `lxdimg make` reads the rootfs once, for the inspection and fingerprint only.
    pub fn complete(&self) -> bool {
        self.architecture.is_some() && self.os.is_some() && self.release.is_some()
    }
}

/// `YYYYMMDD_hh:mm` (UTC), the serial the public images carry.
pub fn serial(t: i64) -> String {
    let (y, m, d, s) = crate::report::civil(t);
    format!("{y:04}{m:02}{d:02}_{:02}:{:02}", s / 3600, s / 60 % 60)
}

/// The template rules of a set, as `metadata.yaml` holds them.
pub fn template_rules(set: TemplateSet) -> Option<BTreeMap<String, Option<Template>>> {
    let list = files(set);
    if list.is_empty() {
        return None;
    }
    Some(
        list.iter()
            .map(|f| {
                let props: BTreeMap<String, String> = f
                    .properties
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (
                    f.path.to_string(),
                    Some(Template {
                        when: Some(f.when.iter().map(|w| w.to_string()).collect()),
                        create_only: f.create_only,
                        template: f.name.to_string(),
                        properties: Some(props),
                    }),
                )
            })
            .collect(),
    )
}

/// The metadata proposed for a rootfs: the user's choices first, then what the rootfs says;
/// `now` is the caller's clock (the creation date). An error says what is missing and which
/// option gives it.
pub fn propose(probe: Option<&Probe>, c: &Choices, now: i64) -> Result<ImageMetadata, String> {
    let os_release = probe.and_then(|p| p.os_release.as_ref());
    let why = || {
        probe
            .and_then(|p| p.error.clone())
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    };
    let architecture = match (&c.architecture, probe.and_then(|p| p.architecture.as_ref())) {
        (Some(a), _) => a.clone(),
        (None, Some(g)) => g.name.to_string(),
        (None, None) => {
            return Err(format!(
                "no ELF executable in the rootfs's /bin, /usr/bin, /sbin or /usr/sbin tells its architecture{}: give --arch",
                why()
            ))
        }
    };
    let pick = |given: &Option<String>, from: &[Option<&String>], what: &str| {
        given
            .clone()
            .or_else(|| {
                from.iter()
                    .flatten()
                    .find(|v| !v.trim().is_empty())
                    .map(|v| v.to_string())
            })
            .ok_or_else(|| {
                format!(
                    "the rootfs has no os-release that says its {what}{}: give --{what}",
                    why()
                )
            })
    };
    let os = pick(
        &c.os,
        &[
            os_release.and_then(|o| o.id.as_ref()),
            os_release.and_then(|o| o.name.as_ref()),
        ],
        "os",
    )?;
    let release = pick(
        &c.release,
        &[
            os_release.and_then(|o| o.version_codename.as_ref()),
            os_release.and_then(|o| o.version_id.as_ref()),
        ],
        "release",
    )?;
    let variant = c.variant.clone().unwrap_or_else(|| "default".to_string());
    let serial = serial(now);
    let description = c.description.clone().unwrap_or_else(|| {
        let name = os_release
            .and_then(|o| o.pretty_name.clone())
            .unwrap_or_else(|| format!("{os} {release}"));
        format!("{name} {architecture} ({serial})")
    });
    let mut properties = BTreeMap::new();
    properties.insert("architecture".to_string(), architecture.clone());
    properties.insert("description".to_string(), description);
    properties.insert("os".to_string(), os);
    properties.insert("release".to_string(), release);
    properties.insert("serial".to_string(), serial);
    properties.insert("variant".to_string(), variant);
    Ok(ImageMetadata {
        architecture,
        creation_date: now,
        expiry_date: 0,
        properties: Some(properties),
        templates: template_rules(c.template_set.unwrap_or(TemplateSet::Basic)),
    })
}

/// A metadata tarball: `metadata.yaml` (the given text) and `templates/` with the files of the
/// set, owned by root, dated `mtime`, xz-compressed (one block, CRC64, preset 6 — what `xz`
/// writes). Small: built in memory.
pub fn metadata_tarball(
    yaml: &str,
    templates: &[(String, Vec<u8>)],
    mtime: i64,
) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mtime = mtime.max(0) as u64;
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    let mut h = header(tar::EntryType::Regular, 0o644, yaml.len() as u64);
    tar.append_data(&mut h, "metadata.yaml", yaml.as_bytes())?;
    if !templates.is_empty() {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, "templates/", std::io::empty())?;
        for (name, text) in templates {
            let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64);
            tar.append_data(&mut h, format!("templates/{name}"), text.as_slice())?;
        }
    }
    let raw = tar.into_inner()?;
    let mut xz = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6))?;
    std::io::Write::write_all(&mut xz, &raw)?;
    xz.finish()
}

/// The template files of a set, as [`metadata_tarball`] takes them.
pub fn template_files(set: TemplateSet) -> Vec<(String, Vec<u8>)> {
    files(set)
        .iter()
        .map(|f| (f.name.to_string(), f.text.as_bytes().to_vec()))
        .collect()
}

/// `lxc image import META ROOTFS --alias A`, the file names quoted for a POSIX shell.
pub fn import_command(client: &str, meta: &str, rootfs: &str, alias: Option<&str>) -> String {
    let q = crate::findings::shell_quote;
    let mut cmd = format!("{client} image import {} {}", q(meta), q(rootfs));
    if let Some(a) = alias {
        cmd.push_str(&format!(" --alias {}", q(a)));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::OsRelease;

    fn probe_of(arch: Option<&'static str>, os: Option<OsRelease>) -> Probe {
        Probe {
            architecture: arch.map(|name| ArchGuess {
                name,
                path: "/bin/sh".into(),
                file: "/usr/bin/dash".into(),
            }),
            os_release: os,
            ..Probe::default()
        }
    }

    #[test]
    fn proposal_from_the_rootfs_and_from_the_choices() {
        let os = crate::rootfs::os_release(
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        let p = probe_of(Some("x86_64"), Some(os));
        let m = propose(Some(&p), &Choices::default(), 1_704_067_200).unwrap();
        assert_eq!(m.architecture, "x86_64");
        assert_eq!(m.creation_date, 1_704_067_200);
        let props = m.properties.clone().unwrap();
        assert_eq!(props["os"], "debian");
        assert_eq!(props["release"], "bookworm");
        assert_eq!(props["variant"], "default");
        assert_eq!(props["serial"], "20240101_00:00");
        assert_eq!(
            props["description"],
            "Debian GNU/Linux 12 (bookworm) x86_64 (20240101_00:00)"
        );
        assert_eq!(m.templates.as_ref().unwrap().len(), 2);
        // Alpine: no codename, the version instead.
        let alpine =
            crate::rootfs::os_release(b"ID=alpine\nNAME=\"Alpine Linux\"\nVERSION_ID=3.20.3\n");
        let m = propose(
            Some(&probe_of(Some("aarch64"), Some(alpine))),
            &Choices::default(),
            0,
        )
        .unwrap();
        assert_eq!(m.properties.unwrap()["release"], "3.20.3");
        // Choices win; nothing to read when they are complete.
        let c = Choices {
            architecture: Some("amd64".into()),
            os: Some("mine".into()),
            release: Some("1".into()),
            template_set: Some(TemplateSet::None),
            ..Choices::default()
        };
        assert!(c.complete());
        let m = propose(None, &c, 5).unwrap();
        assert_eq!(
            (m.architecture.as_str(), m.templates.is_none()),
            ("amd64", true)
        );
        // Missing pieces name their option.
        let e = propose(Some(&probe_of(None, None)), &Choices::default(), 5).unwrap_err();
        assert!(e.contains("--arch"), "{e}");
        let e = propose(
            Some(&probe_of(Some("x86_64"), None)),
            &Choices::default(),
            5,
        )
        .unwrap_err();
        assert!(e.contains("--os"), "{e}");
    }

    /// The made metadata tarball is one the core's inspector accepts as the metadata of a split
    /// image, for every template set, with exactly the rules and files of the set.
    #[test]
    fn made_tarballs_are_accepted_split_metadata() {
        for set in TemplateSet::ALL {
            let c = Choices {
                architecture: Some("x86_64".into()),
                os: Some("debian".into()),
                release: Some("bookworm".into()),
                template_set: Some(set),
                ..Choices::default()
            };
            let m = propose(None, &c, 1_704_067_200).unwrap();
            let meta = metadata_tarball(&metadata_yaml(&m), &template_files(set), m.creation_date)
                .unwrap();
            assert!(meta.starts_with(b"\xfd7zXZ\0"));
            let mut rootfs = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            rootfs
                .append_data(&mut h, "./etc/hostname", &b"x\n\n"[..])
                .unwrap();
            let rootfs = rootfs.into_inner().unwrap();
            let mut insp = crate::Inspector::new(crate::Options::default());
            insp.push(&meta);
            insp.start_rootfs().unwrap();
            insp.push(&rootfs);
            let r = insp.finish();
            for (k, v) in r.verdicts.iter() {
                assert_eq!(v.accepted, Some(true), "{set:?} {k}: {:?}", v.error);
            }
            let errors: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.severity == crate::Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{set:?}: {errors:?}");
            assert_eq!(r.templates.len(), files(set).len());
        }
    }

    #[test]
    fn import_command_quotes_names() {
        assert_eq!(
            import_command("lxc", "a.tar.xz", "my root.tar", Some("debian/12")),
            "lxc image import a.tar.xz 'my root.tar' --alias debian/12"
        );
        assert_eq!(
            import_command("incus", "it's", "r", None),
            "incus image import 'it'\\''s' r"
        );
    }
}

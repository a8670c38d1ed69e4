//! The template sets `lxdimg make --template-set` writes into a metadata tarball, in one place:
//! the template files (`templates/NAME`) and the `metadata.yaml` rules that apply them.
//!
//! They are written as the images on the public image servers carry them (distrobuilder's
//! `hostname`, `hosts` and `cloud-init` generators): the hostname and `/etc/hosts` from the
//! instance name, and cloud-init's NoCloud seed from the instance's `cloud-init.*` or `user.*`
//! config keys, with the image's defaults in the rule's `properties`.
//!
//! ```
//! use lxdimg::template::sets::{files, TemplateSet};
//! let basic = files(TemplateSet::Basic);
//! assert_eq!(basic[0].path, "/etc/hostname");
//! assert_eq!(basic[0].text, "{{ container.name }}\n");
//! assert!(files(TemplateSet::None).is_empty());
//! ```

/// A named set of templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateSet {
    /// No templates.
    None,
    /// `/etc/hostname` and `/etc/hosts` from the instance name.
    Basic,
    /// `basic`, plus cloud-init's NoCloud seed: `meta-data`, `user-data`, `vendor-data`,
    /// `network-config` under `/var/lib/cloud/seed/nocloud-net/` (what the `/cloud` images carry).
    CloudInit,
}

impl TemplateSet {
    /// Every set, in the order the CLI lists them.
    pub const ALL: [TemplateSet; 3] = [TemplateSet::None, TemplateSet::Basic, TemplateSet::CloudInit];

    /// The name `--template-set` takes (`none`, `basic`, `cloud-init`).
    pub fn name(self) -> &'static str {
        match self {
            TemplateSet::None => "none",
            TemplateSet::Basic => "basic",
            TemplateSet::CloudInit => "cloud-init",
        }
    }

    /// The set of that name.
    pub fn from_name(name: &str) -> Option<TemplateSet> {
        TemplateSet::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One template: the target path in the instance (the key under `templates:` in `metadata.yaml`),
/// the file under `templates/`, its text, and the rule's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateFile {
    /// Target path in the instance (absolute).
    pub path: &'static str,
    /// File name under `templates/` (the rule's `template:`).
    pub name: &'static str,
    /// The template text (pongo2).
    pub text: &'static str,
    /// The rule's triggers (`when:`).
    pub when: &'static [&'static str],
    /// The rule's `create_only:`.
    pub create_only: bool,
    /// The rule's `properties:` (the template's `properties` variable).
    pub properties: &'static [(&'static str, &'static str)],
}

const CREATE_COPY: &[&str] = &["create", "copy"];

/// The cloud-init default every `/cloud` image ships for user-data and vendor-data.
const CLOUD_CONFIG_DEFAULT: &str = "#cloud-config\n{}";

const HOSTNAME: TemplateFile = TemplateFile {
    path: "/etc/hostname",
    name: "hostname.tpl",
    text: "{{ container.name }}\n",
    when: CREATE_COPY,
    create_only: false,
    properties: &[],
};

const HOSTS: TemplateFile = TemplateFile {
    path: "/etc/hosts",
    name: "hosts.tpl",
    text: "127.0.0.1\tlocalhost\n\
127.0.1.1\t{{ container.name }}\n\
\n\
# The following lines are desirable for IPv6 capable hosts\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n",
    when: CREATE_COPY,
    create_only: false,
    properties: &[],
};

const META_DATA: TemplateFile = TemplateFile {
    path: "/var/lib/cloud/seed/nocloud-net/meta-data",
    name: "cloud-init-meta.tpl",
    text: "instance-id: {{ container.name }}\n\
local-hostname: {{ container.name }}\n\
{{ config_get(\"user.meta-data\", \"\") }}\n",
    when: CREATE_COPY,
    create_only: false,
    properties: &[],
};

const USER_DATA: TemplateFile = TemplateFile {
    path: "/var/lib/cloud/seed/nocloud-net/user-data",
    name: "cloud-init-user.tpl",
    text: "{%- if config_get(\"cloud-init.user-data\", properties.default) == properties.default -%}\n\
{{ config_get(\"user.user-data\", properties.default) }}\n\
{%- else -%}\n\
{{- config_get(\"cloud-init.user-data\", properties.default) }}\n\
{%- endif %}\n",
    when: CREATE_COPY,
    create_only: false,
    properties: &[("default", CLOUD_CONFIG_DEFAULT)],
};

const VENDOR_DATA: TemplateFile = TemplateFile {
    path: "/var/lib/cloud/seed/nocloud-net/vendor-data",
    name: "cloud-init-vendor.tpl",
    text: "{%- if config_get(\"cloud-init.vendor-data\", properties.default) == properties.default -%}\n\
{{ config_get(\"user.vendor-data\", properties.default) }}\n\
{%- else -%}\n\
{{- config_get(\"cloud-init.vendor-data\", properties.default) }}\n\
{%- endif %}\n",
    when: CREATE_COPY,
    create_only: false,
    properties: &[("default", CLOUD_CONFIG_DEFAULT)],
};

const NETWORK_CONFIG: TemplateFile = TemplateFile {
    path: "/var/lib/cloud/seed/nocloud-net/network-config",
    name: "cloud-init-network.tpl",
    text: "{%- if config_get(\"cloud-init.network-config\", \"\") == \"\" -%}\n\
{%- if config_get(\"user.network-config\", \"\") == \"\" -%}\n\
version: 1\n\
config:\n  \
  - type: physical\n    \
    name: {% if instance.type == \"virtual-machine\" %}enp5s0{% else %}eth0{% endif %}\n    \
    subnets:\n      \
      - type: dhcp\n        \
        control: auto\n\
{%- else -%}\n\
{{- config_get(\"user.network-config\", \"\") -}}\n\
{%- endif -%}\n\
{%- else -%}\n\
{{- config_get(\"cloud-init.network-config\", \"\") -}}\n\
{%- endif %}\n",
    when: CREATE_COPY,
    create_only: false,
    properties: &[],
};

const BASIC: &[TemplateFile] = &[HOSTNAME, HOSTS];
const CLOUD_INIT: &[TemplateFile] = &[
    HOSTNAME,
    HOSTS,
    META_DATA,
    USER_DATA,
    VENDOR_DATA,
    NETWORK_CONFIG,
];

/// The templates of a set, in a fixed order.
pub fn files(set: TemplateSet) -> &'static [TemplateFile] {
    match set {
        TemplateSet::None => &[],
        TemplateSet::Basic => BASIC,
        TemplateSet::CloudInit => CLOUD_INIT,
    }
}

/// The `templates:` block of `metadata.yaml` for a set (empty for `none`), indented as a top-level
/// key, ending with a newline: paste it after the other keys.
pub fn metadata_yaml(set: TemplateSet) -> String {
    let list = files(set);
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("templates:\n");
    for t in list {
        out.push_str(&format!("  {}:\n", t.path));
        out.push_str("    when:\n");
        for w in t.when {
            out.push_str(&format!("      - {w}\n"));
        }
        out.push_str(&format!("    create_only: {}\n", t.create_only));
        out.push_str(&format!("    template: {}\n", t.name));
        if t.properties.is_empty() {
            out.push_str("    properties: {}\n");
        } else {
            out.push_str("    properties:\n");
            for (k, v) in t.properties {
                // A block scalar keeps the value's lines exactly (`|-`: no final newline added).
                out.push_str(&format!("      {k}: |-\n"));
                for line in v.split('\n') {
                    out.push_str(&format!("        {line}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_fragment_decodes_to_the_rules() {
        for set in TemplateSet::ALL {
            let doc = format!(
                "architecture: x86_64\ncreation_date: 1\n{}",
                metadata_yaml(set)
            );
            let mut m = crate::yaml::ImageMetadata::default();
            crate::yaml::decode_into(doc.as_bytes(), &mut m, crate::yaml::Dialect::V2)
                .expect("decodes");
            let rules = m.templates.unwrap_or_default();
            assert_eq!(rules.len(), files(set).len(), "{set:?}");
            for f in files(set) {
                let r = rules[f.path].as_ref().expect("a rule");
                assert_eq!(r.template, f.name);
                assert_eq!(r.create_only, f.create_only);
                let when: Vec<&str> = r.when.iter().flatten().map(String::as_str).collect();
                assert_eq!(when, f.when);
                let props = r.properties.clone().unwrap_or_default();
                assert_eq!(props.len(), f.properties.len());
                for (k, v) in f.properties {
                    assert_eq!(props[*k], *v);
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for set in TemplateSet::ALL {
            assert_eq!(TemplateSet::from_name(set.name()), Some(set));
        }
        assert_eq!(TemplateSet::from_name("Basic"), None);
    }
}

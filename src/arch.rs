//! LXD's and Incus's architecture table (`shared/osarch/architectures.go`), per target version.

/// `(id, canonical name, aliases every version knows)`.
const TABLE: &[(u32, &str, &[&str])] = &[
    (1, "i686", &["i386", "i586", "386", "x86", "generic_32"]),
    (2, "x86_64", &["amd64", "generic_64"]),
    (
        3,
        "armv7l",
        &[
            "armhf",
            "armhfp",
            "armv7a_hardfp",
            "armv7",
            "armv7a_vfpv3_hardfp",
        ],
    ),
    (4, "aarch64", &["arm64", "arm64_generic"]),
    (5, "ppc", &["powerpc"]),
    (6, "ppc64", &["powerpc64", "ppc64"]),
    (7, "ppc64le", &["ppc64el"]),
    (8, "s390x", &[]),
    (9, "mips", &["mipsel"]),
    (10, "mips64", &["mips64el"]),
    (11, "riscv32", &[]),
    (12, "riscv64", &[]),
    (13, "armv6l", &["armel", "arm"]),
    (14, "armv8l", &[]),
    (15, "loongarch64", &["loong64"]),
];

/// What an architecture lookup knows in a given LXD/Incus build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchRules {
    /// `mipsle`/`mips64le` aliases (LXD ≥ 5.0.3, the Debian 5.0.2 build, Incus).
    pub mipsle: bool,
    /// `loongarch64`/`loong64` (LXD ≥ 5.0.3 upstream, Incus; not the Debian 5.0.2 build).
    pub loongarch: bool,
    /// `amd64v3` alias of x86_64 (LXD 5.21.7, ≥ 6.7).
    pub amd64v3: bool,
    /// `x86_64_v1` … `x86_64_v4` aliases (Incus).
    pub x86_64_levels: bool,
    /// Only the first whitespace-separated word is looked up (LXD 5.21.7, ≥ 6.7).
    pub first_word: bool,
}

/// Resolves an architecture name or alias to `(id, canonical name)` the way the given build does.
pub fn lookup(rules: ArchRules, text: &str) -> Option<(u32, &'static str)> {
    let text = if rules.first_word {
        text.split_whitespace().next().unwrap_or("")
    } else {
        text
    };
    for &(id, name, _) in TABLE {
        if id == 15 && !rules.loongarch {
            continue;
        }
        if name == text {
            return Some((id, name));
        }
    }
    for &(id, name, aliases) in TABLE {
        if id == 15 && !rules.loongarch {
            continue;
        }
        let extra: &[&str] = match id {
            2 if rules.amd64v3 && rules.x86_64_levels => &[
                "amd64v3",
                "x86_64_v1",
                "x86_64_v2",
                "x86_64_v3",
                "x86_64_v4",
            ],
            2 if rules.amd64v3 => &["amd64v3"],
            2 if rules.x86_64_levels => &["x86_64_v1", "x86_64_v2", "x86_64_v3", "x86_64_v4"],
            9 if rules.mipsle => &["mipsle"],
            10 if rules.mipsle => &["mips64le"],
            _ => &[],
        };
        if aliases.contains(&text) || extra.contains(&text) {
            return Some((id, name));
        }
    }
    None
}

/// Every name and alias some LXD or Incus version knows (whole-token lookups).
pub const ANY_VERSION: ArchRules = ArchRules {
    mipsle: true,
    loongarch: true,
    amd64v3: true,
    x86_64_levels: true,
    first_word: false,
};

/// The canonical name for what a client may send in `LXD-Server-Architectures` or
/// `Incus-Server-Architectures`: a name or alias any version knows, or a numeric ID (LXD ≤ 4.2),
/// in any case, with surrounding blanks ignored.
pub fn canonical_any(token: &str) -> Option<&'static str> {
    let t = token.trim().to_ascii_lowercase();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let digits = t.trim_start_matches('0');
        return if digits.len() <= 3 {
            name_of_id(digits.parse().unwrap_or(0))
        } else {
            None
        };
    }
    lookup(ANY_VERSION, &t).map(|(_, name)| name)
}

/// The canonical name for a numeric architecture ID (what LXD ≤ 4.2 sends in URL-import headers).
pub fn name_of_id(id: u32) -> Option<&'static str> {
    TABLE.iter().find(|e| e.0 == id).map(|e| e.1)
}

/// Architectures a host of the given canonical architecture can run (its personalities), as LXD
/// reports them in `LXD-Server-Architectures`.
pub fn personalities(host: &str) -> &'static [&'static str] {
    match host {
        "x86_64" => &["x86_64", "i686"],
        "aarch64" => &["aarch64", "armv7l", "armv6l"],
        "ppc64" => &["ppc64", "ppc"],
        "mips64" => &["mips64", "mips"],
        "i686" => &["i686"],
        "armv7l" => &["armv7l", "armv6l"],
        "ppc64le" => &["ppc64le"],
        "s390x" => &["s390x"],
        "riscv64" => &["riscv64"],
        "loongarch64" => &["loongarch64"],
        _ => &[],
    }
}

/// Every canonical architecture name.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|e| e.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    const DEB: ArchRules = ArchRules {
        mipsle: true,
        loongarch: false,
        amd64v3: false,
        x86_64_levels: false,
        first_word: false,
    };

    #[test]
    fn aliases_resolve_to_canonical_names() {
        assert_eq!(lookup(DEB, "amd64"), Some((2, "x86_64")));
        assert_eq!(lookup(DEB, "mipsle"), Some((9, "mips")));
        assert_eq!(lookup(DEB, "loongarch64"), None);
        assert_eq!(lookup(DEB, "X86_64"), None);
        assert_eq!(lookup(DEB, "amd64 "), None);
        let new = ArchRules {
            first_word: true,
            ..DEB
        };
        assert_eq!(lookup(new, "x86_64 x86_64"), Some((2, "x86_64")));
        assert_eq!(name_of_id(4), Some("aarch64"));
    }

    #[test]
    fn any_version_tokens() {
        assert_eq!(canonical_any(" ARM64 "), Some("aarch64"));
        assert_eq!(canonical_any("2"), Some("x86_64"));
        assert_eq!(canonical_any("002"), Some("x86_64"));
        assert_eq!(canonical_any("16"), None);
        assert_eq!(canonical_any("loong64"), Some("loongarch64"));
        assert_eq!(canonical_any("x86_64_v3"), Some("x86_64"));
        assert_eq!(canonical_any("amd64v3"), Some("x86_64"));
        assert_eq!(canonical_any("mips64le"), Some("mips64"));
        assert_eq!(canonical_any("sparc"), None);
        assert_eq!(canonical_any(""), None);
    }
}

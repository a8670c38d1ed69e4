//! The architecture of an ELF executable, as LXD names it (`shared/osarch`).
//!
//! From the ELF identification (class, byte order), `e_machine` and, for 32-bit ARM, the
//! hard-float flag of `e_flags` (Debian `armhf` → `armv7l`, `armel` → `armv6l`). `armv8l` (32-bit
//! userland on a 64-bit ARM CPU) has no ELF mark of its own: its binaries are `armv7l`'s.

/// Bytes of an executable's start this needs (the 64-bit ELF header holds `e_flags` at 48).
pub const ELF_HEAD: usize = 52;

const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

/// Whether these bytes start an ELF file.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// LXD's canonical architecture name for the ELF file starting with `head`, or `None` when it is
/// not ELF, is cut short, or is for a machine LXD does not know.
pub fn elf_architecture(head: &[u8]) -> Option<&'static str> {
    if !is_elf(head) || head.len() < 20 {
        return None;
    }
    let class64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big = match head[5] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |at: usize| {
        let b = [head[at], head[at + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let flags = {
        let at = if class64 { 48 } else { 36 };
        head.get(at..at + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        })
    };
    Some(match (u16_at(18), class64) {
        (EM_386, false) => "i686",
        // x32 executables (ILP32 on x86_64) run on x86_64 only.
        (EM_X86_64, _) => "x86_64",
        (EM_ARM, false) => {
            if flags? & EF_ARM_ABI_FLOAT_HARD != 0 {
                "armv7l"
            } else {
                "armv6l"
            }
        }
        (EM_AARCH64, _) => "aarch64",
        (EM_PPC, false) => "ppc",
        (EM_PPC64, true) if big => "ppc64",
        (EM_PPC64, true) => "ppc64le",
        (EM_S390, true) => "s390x",
        (EM_MIPS, false) => "mips",
        (EM_MIPS, true) => "mips64",
        (EM_RISCV, false) => "riscv32",
        (EM_RISCV, true) => "riscv64",
        (EM_LOONGARCH, true) => "loongarch64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic ELF header: class, byte order, machine, flags.
    fn header(class64: bool, big: bool, machine: u16, flags: u32) -> Vec<u8> {
        let mut h = vec![0u8; if class64 { 64 } else { 52 }];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if class64 { 2 } else { 1 };
        h[5] = if big { 2 } else { 1 };
        h[6] = 1;
        let put16 = |h: &mut Vec<u8>, at: usize, v: u16| {
            let b = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            h[at..at + 2].copy_from_slice(&b);
        };
        put16(&mut h, 16, 2); // ET_EXEC
        put16(&mut h, 18, machine);
        let at = if class64 { 48 } else { 36 };
        let b = if big {
            flags.to_be_bytes()
        } else {
            flags.to_le_bytes()
        };
        h[at..at + 4].copy_from_slice(&b);
        h
    }

    /// Every architecture LXD knows (src/arch.rs), from the ELF header its binaries carry (the
    /// Debian port's in brackets), looked up in LXD 5.0.2's table or, for loongarch64, Incus's.
    #[test]
    fn every_lxd_architecture_from_its_elf_header() {
        let cases: &[(&str, bool, bool, u16, u32)] = &[
            ("i686", false, false, EM_386, 0),                // i386
            ("x86_64", true, false, EM_X86_64, 0),            // amd64
            ("x86_64", false, false, EM_X86_64, 0),           // x32
            ("armv7l", false, false, EM_ARM, 0x0500_0400),    // armhf
            ("armv6l", false, false, EM_ARM, 0x0500_0200),    // armel
            ("aarch64", true, false, EM_AARCH64, 0),          // arm64
            ("ppc", false, true, EM_PPC, 0),                  // powerpc
            ("ppc64", true, true, EM_PPC64, 1),               // ppc64
            ("ppc64le", true, false, EM_PPC64, 2),            // ppc64el
            ("s390x", true, true, EM_S390, 0),                // s390x
            ("mips", false, true, EM_MIPS, 0x7000_1007),      // mips
            ("mips", false, false, EM_MIPS, 0x7000_1007),     // mipsel
            ("mips64", true, false, EM_MIPS, 0x8000_0007),    // mips64el
            ("mips64", true, true, EM_MIPS, 0x8000_0007),     // mips64
            ("riscv32", false, false, EM_RISCV, 5),           // riscv32
            ("riscv64", true, false, EM_RISCV, 5),            // riscv64
            ("loongarch64", true, false, EM_LOONGARCH, 0x43), // loong64
        ];
        let mut seen = std::collections::BTreeSet::new();
        for &(want, c64, big, machine, flags) in cases {
            let h = header(c64, big, machine, flags);
            assert_eq!(
                elf_architecture(&h),
                Some(want),
                "{want} {c64} {big} {machine}"
            );
            let rules = if want == "loongarch64" {
                crate::verdict::INCUS_6_0.arch
            } else {
                crate::verdict::LXD_5_0.arch
            };
            assert_eq!(crate::arch::lookup(rules, want).map(|x| x.1), Some(want));
            seen.insert(want);
        }
        // armv8l is the one name no ELF header yields (its binaries are armv7l's).
        let missing: Vec<_> = crate::arch::all_names()
            .filter(|n| !seen.contains(n))
            .collect();
        assert_eq!(missing, ["armv8l"]);
    }

    #[test]
    fn not_elf_cut_short_or_unknown() {
        assert_eq!(elf_architecture(b""), None);
        assert_eq!(elf_architecture(b"#!/bin/sh\n"), None);
        assert_eq!(
            elf_architecture(&header(true, false, EM_X86_64, 0)[..19]),
            None
        );
        assert_eq!(
            elf_architecture(&header(true, false, 2 /* SPARC */, 0)),
            None
        );
        assert_eq!(elf_architecture(&header(false, false, EM_S390, 0)), None); // 31-bit s390
        let mut bad_class = header(true, false, EM_X86_64, 0);
        bad_class[4] = 3;
        assert_eq!(elf_architecture(&bad_class), None);
        // 32-bit ARM without e_flags: unknown float ABI.
        assert_eq!(
            elf_architecture(&header(false, false, EM_ARM, 0x400)[..36]),
            None
        );
    }
}

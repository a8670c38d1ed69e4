//! The TypeScript types of the Report (`src/report.d.ts`), generated from the Rust types by
//! ts-rs when `cargo test` runs, and compared with the checked-in file: a stale file fails the
//! test (`UPDATE_TS=1 cargo test --lib tsgen` rewrites it). `src/wasm.rs` embeds the file in
//! `pkg/lxdimg.d.ts`, so the page and the worker see exactly these types.

use crate::codes::{FindingCode, Severity};
use crate::detect::Format;
use crate::report::*;
use crate::rootfs::{OsRelease, Qcow2, Squashfs};
use crate::verdict::TARGETS;
use crate::yaml::Template;
use ts_rs::TS;

fn decl<T: TS>() -> String {
    format!("export {}\n", T::decl())
}

/// The whole generated file.
pub fn typescript() -> String {
    let mut s = String::from(
        "// Generated from the Rust types by `cargo test` (src/tsgen.rs); do not edit.\n\n",
    );
    let keys: Vec<String> = TARGETS.iter().map(|t| format!("{:?}", t.key)).collect();
    s += &format!(
        "/** The key of a verdict target (`crate::verdict::TARGETS`). */\nexport type TargetKey = {};\n\n",
        keys.join(" | ")
    );
    s += "/** One verdict per target, in the order of `targets()`. */\nexport type Verdicts = {\n";
    for t in TARGETS.iter() {
        s += &format!("  /** {} */\n  {:?}: Verdict;\n", t.label, t.key);
    }
    s += "};\n\n";
    s += "/** A verdict target as `targets()` lists it. */\nexport type TargetInfo = { key: TargetKey; label: string };\n\n";
    for d in [
        decl::<Report>(),
        decl::<FileReport>(),
        decl::<FileRole>(),
        decl::<Compression>(),
        decl::<Undetected>(),
        decl::<Format>(),
        decl::<ImageFormat>(),
        decl::<ImageType>(),
        decl::<Verdict>(),
        decl::<Creatable>(),
        decl::<CreatableCode>(),
        decl::<MetadataReport>(),
        decl::<Template>(),
        decl::<TemplateReport>(),
        decl::<Finding>(),
        decl::<FindingCode>(),
        decl::<Severity>(),
        decl::<TarSummary>(),
        decl::<TarEnd>(),
        decl::<RootfsReport>(),
        decl::<RootfsFormat>(),
        decl::<Unpacked>(),
        decl::<Squashfs>(),
        decl::<Qcow2>(),
        decl::<OsRelease>(),
    ] {
        s += &d;
        s += "\n";
    }
    s
}

#[test]
fn report_d_ts_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report.d.ts");
    let want = typescript();
    if std::env::var_os("UPDATE_TS").is_some() {
        std::fs::write(&path, &want).expect("write src/report.d.ts");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "src/report.d.ts is not what the Rust types generate; run `UPDATE_TS=1 cargo test --lib tsgen` and commit it"
    );
}

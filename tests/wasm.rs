//! The JS bindings (`src/wasm.rs`) in real browsers: `make test-wasm` runs these with
//! `wasm-pack test --headless --chrome` and `--firefox`.
//!
//! Every fixture of `tests/fixtures.rs` goes through the JS API (the exported `Inspector` class,
//! called from JavaScript) in chunkings the native tests do not use, and the report, turned into
//! JSON by the browser's `JSON.stringify`, must equal the golden report the CLI gives. The
//! fixtures come from `target/wasm-fixtures/common.rs`, which `tests/browser/gen-wasm-fixtures.py`
//! makes from `tests/common/mod.rs` and `tests/fixtures.rs` (the three fixtures that need
//! `mksquashfs` or `qemu-img` are skipped here).
#![cfg(target_arch = "wasm32")]

#[path = "../target/wasm-fixtures/common.rs"]
#[allow(dead_code, unused_imports, clippy::all)]
mod common;

use js_sys::{Uint8Array, JSON};
use lxdimg::wasm::{self, Fingerprinter, Inspector};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Calls into the exported classes from JavaScript, as the page and the edge worker do.
#[wasm_bindgen(inline_js = r#"
export function call(obj, method, ...args) { return obj[method](...args); }
export function get(obj, prop) { return obj[prop]; }
export function thrown(obj, method, ...args) {
  try { obj[method](...args); return undefined; }
  catch (e) { return (e instanceof Error ? "Error: " : "not an Error: ") + e.message; }
}
export function construct_error(ctor, options) {
  try { new ctor(options); return undefined; }
  catch (e) { return (e instanceof Error ? "Error: " : "not an Error: ") + e.message; }
}
export function inspector_class(obj) { return obj.constructor; }
"#)]
extern "C" {
    #[wasm_bindgen(variadic)]
    fn call(obj: &JsValue, method: &str, args: &JsValue) -> JsValue;
    fn get(obj: &JsValue, prop: &str) -> JsValue;
    #[wasm_bindgen(variadic)]
    fn thrown(obj: &JsValue, method: &str, args: &JsValue) -> Option<String>;
    fn construct_error(ctor: &JsValue, options: &JsValue) -> Option<String>;
    fn inspector_class(obj: &JsValue) -> JsValue;
}

const SKIPPED: [&str; 3] = ["split-squashfs", "split-qcow2", "unified-vm-qcow2"];

/// The fixtures, made once for all the tests: making them (xz, bzip2, … in wasm) is most of this
/// file's run time, and a page busy for 30 s makes the WebDriver give up.
fn fixtures() -> &'static [(&'static str, Vec<Vec<u8>>)] {
    static FIXTURES: std::sync::OnceLock<Vec<(&'static str, Vec<Vec<u8>>)>> =
        std::sync::OnceLock::new();
    FIXTURES.get_or_init(common::fixtures)
}

/// One fixture's files.
fn fixture(name: &str) -> &'static [Vec<u8>] {
    &fixtures().iter().find(|(n, _)| *n == name).unwrap().1
}

fn args(list: &[JsValue]) -> JsValue {
    list.iter().collect::<js_sys::Array>().into()
}

fn options(split: bool) -> JsValue {
    JSON::parse(if split {
        r#"{"now": 1800000000, "names": ["image", "rootfs"]}"#
    } else {
        r#"{"now": 1800000000, "names": ["image"]}"#
    })
    .unwrap()
}

fn new_inspector(opts: &JsValue) -> JsValue {
    Inspector::new(Some(opts.clone().unchecked_into()))
        .unwrap()
        .into()
}

fn to_json(v: &JsValue) -> serde_json::Value {
    serde_json::from_str(&String::from(JSON::stringify(v).unwrap())).unwrap()
}

/// Runs `files` through the JS API in pieces from `plan`; returns the report as JSON and the
/// verdict getter's value at the end (before `finish`).
fn inspect_js(files: &[Vec<u8>], mut plan: impl FnMut() -> usize) -> (serde_json::Value, JsValue) {
    let insp = new_inspector(&options(files.len() == 2));
    for (i, f) in files.iter().enumerate() {
        if i == 1 {
            call(&insp, "startRootfs", &args(&[]));
        }
        let mut rest = f.as_slice();
        while !rest.is_empty() {
            let n = plan().clamp(1, rest.len());
            call(&insp, "push", &args(&[Uint8Array::from(&rest[..n]).into()]));
            rest = &rest[n..];
        }
    }
    let verdict = get(&insp, "verdict");
    let report = call(&insp, "finish", &args(&[]));
    (to_json(&report), verdict)
}

/// Chunk plans the native tests do not use.
fn plans() -> Vec<(&'static str, Box<dyn FnMut() -> usize>)> {
    vec![
        ("whole", Box::new(|| usize::MAX)),
        ("61", Box::new(|| 61)),
        ("4093", Box::new(|| 4093)),
        ("random", Box::new(common::random_plan(0x5eed_0f_1a5d))),
    ]
}

#[wasm_bindgen_test]
fn same_report_in_the_browser_as_natively() {
    let mut checked = 0;
    for (name, files) in fixtures() {
        if SKIPPED.contains(name) {
            continue;
        }
        let golden: serde_json::Value = serde_json::from_str(
            common::golden(name).unwrap_or_else(|| panic!("{name}: no golden")),
        )
        .unwrap();
        for (plan_name, plan) in plans() {
            // The whole Report, `verdict_offset` included: both builds decode with the same
            // libraries (libzstd too), so nothing may differ.
            let (got, verdict) = inspect_js(files, plan);
            assert_eq!(
                got, golden,
                "{name}: report differs in the browser ({plan_name} chunks)"
            );
            if !verdict.is_undefined() {
                // The import verdict (`accepted`, `error`, `reason`) is final once known.
                let v = to_json(&verdict);
                let want = &golden["verdicts"][wasm::reference_target()];
                assert_eq!(
                    (&v["accepted"], &v["error"], &v["reason"]),
                    (&want["accepted"], &want["error"], &want["reason"]),
                    "{name}: the verdict getter disagrees with the report"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} fixtures checked");
}

#[wasm_bindgen_test]
fn finish_json_is_the_cli_json() {
    for (name, files) in fixtures().iter().take(3) {
        let mut insp = Inspector::new(Some(options(false).unchecked_into())).unwrap();
        insp.push(&files[0]).unwrap();
        let text = insp.finish_json().unwrap();
        let golden: serde_json::Value =
            serde_json::from_str(common::golden(name).unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            golden,
            "{name}"
        );
    }
}

#[wasm_bindgen_test]
fn the_verdict_is_known_before_the_end() {
    let files = fixture("unified-tar-gnu");
    let insp = new_inspector(&options(false));
    assert!(get(&insp, "verdict").is_undefined());
    assert_eq!(get(&insp, "verdictKnown"), JsValue::FALSE);
    let f = &files[0];
    let mut at = 0;
    while get(&insp, "verdictKnown") == JsValue::FALSE && at < f.len() {
        let n = 4096.min(f.len() - at);
        call(
            &insp,
            "push",
            &args(&[Uint8Array::from(&f[at..at + n]).into()]),
        );
        at += n;
    }
    let v = to_json(&get(&insp, "verdict"));
    assert_eq!(
        (&v["accepted"], &v["error"]),
        (&true.into(), &serde_json::Value::Null)
    );
    assert_eq!(get(&insp, "bytesConsumed").as_f64(), Some(at as f64));
    assert_eq!(get(&insp, "finished"), JsValue::FALSE);
    call(&insp, "finish", &args(&[]));
    assert_eq!(get(&insp, "finished"), JsValue::TRUE);
}

#[wasm_bindgen_test]
fn misuse_throws_errors_with_the_core_message() {
    let insp = new_inspector(&JsValue::UNDEFINED);
    assert_eq!(thrown(&insp, "startRootfs", &args(&[])), None);
    assert_eq!(
        thrown(&insp, "startRootfs", &args(&[])).as_deref(),
        Some("Error: the rootfs file of this split image was already started")
    );
    call(&insp, "finish", &args(&[]));
    let gone = Some("Error: this Inspector was already finished; create a new one");
    assert_eq!(thrown(&insp, "finish", &args(&[])).as_deref(), gone);
    assert_eq!(
        thrown(
            &insp,
            "push",
            &args(&[Uint8Array::new_with_length(3).into()])
        )
        .as_deref(),
        gone
    );
    assert_eq!(thrown(&insp, "finishJson", &args(&[])).as_deref(), gone);

    let class = inspector_class(&insp);
    let bad = |json: &str| construct_error(&class, &JSON::parse(json).unwrap());
    assert_eq!(bad("null"), None);
    assert_eq!(bad("{}"), None);
    assert_eq!(
        bad(r#"{"splitType": "virtual-machine", "names": [null, "x"]}"#),
        None
    );
    assert!(bad(r#"{"splitType": "vm"}"#)
        .unwrap()
        .starts_with("Error: invalid Inspector options: splitType"));
    assert!(bad(r#"{"now": 1.5}"#)
        .unwrap()
        .starts_with("Error: invalid Inspector options: now"));
    assert!(bad(r#"{"names": "x"}"#)
        .unwrap()
        .starts_with("Error: invalid Inspector options"));
}

#[wasm_bindgen_test]
fn split_type_option_reaches_the_report() {
    let meta = common::gzip(&common::metadata_tar(common::METADATA));
    let opts = JSON::parse(r#"{"splitType": "virtual-machine"}"#).unwrap();
    let mut insp = Inspector::new(Some(opts.unchecked_into())).unwrap();
    insp.push(&meta).unwrap();
    insp.start_rootfs().unwrap();
    insp.push(b"QFI\xfb").unwrap();
    let r = to_json(&insp.finish().unwrap().into());
    assert_eq!(r["type"], "virtual-machine");
    assert_eq!(r["files"][0]["name"], serde_json::Value::Null);
}

#[wasm_bindgen_test]
fn host_arch_option_reaches_the_creatable_verdict() {
    let image = common::gzip(&common::unified_tar(
        common::TarFlavor::Gnu,
        common::METADATA,
        false,
    ));
    let creatable = |opts: &str| {
        let mut insp = Inspector::new(Some(JSON::parse(opts).unwrap().unchecked_into())).unwrap();
        insp.push(&image).unwrap();
        let r = to_json(&insp.finish().unwrap().into());
        r["verdicts"]["lxd-5.0"]["creatable"].clone()
    };
    assert_eq!(creatable(r#"{"hostArch": "x86_64"}"#)["ok"], true);
    let no = creatable(r#"{"hostArch": "aarch64"}"#);
    assert_eq!(
        (&no["ok"], &no["code"]),
        (&false.into(), &"architecture".into())
    );
}

#[wasm_bindgen_test]
fn fingerprinter_and_helpers() {
    for (name, files) in fixtures() {
        let golden: serde_json::Value =
            serde_json::from_str(common::golden(name).unwrap()).unwrap();
        if SKIPPED.contains(name) {
            continue;
        }
        let mut fp = Fingerprinter::new();
        for f in files {
            for c in f.chunks(1000) {
                fp.push(c).unwrap();
            }
        }
        assert_eq!(
            serde_json::Value::from(fp.finish().unwrap()),
            golden["fingerprint"],
            "{name}"
        );
        assert!(fp.finish().is_err());

        let head = |f: &Vec<u8>| f[..f.len().min(512)].to_vec();
        let want = golden["files"][0]["compression"].as_str().unwrap();
        let got = wasm::detect_format(&head(&files[0]));
        if ["gzip", "bzip2", "xz", "lzma", "zstd", "tar", "empty"].contains(&want)
            && !name.contains("v7")
            && !name.contains("bz-named")
        {
            assert_eq!(got, want, "{name}: detectFormat");
        }
        if let [meta, rootfs] = files.as_slice() {
            let (m, r) = (head(meta), head(rootfs));
            let (ms, rs) = (meta.len() as f64, rootfs.len() as f64);
            assert_eq!(wasm::rootfs_index(&m, ms, &r, rs), 1, "{name}: rootfsIndex");
            assert_eq!(
                wasm::rootfs_index(&r, rs, &m, ms),
                0,
                "{name}: rootfsIndex swapped"
            );
        }
    }
    assert_eq!(wasm::detect_format(b""), "empty");
    assert_eq!(wasm::detect_format(b"hello"), "unsupported");
    assert_eq!(wasm::detect_format(b"hsqs...."), "squashfs");
    // A squashfs or qcow2 file is the rootfs whatever the sizes.
    assert_eq!(wasm::rootfs_index(b"hsqs", 10.0, &[0x1f, 0x8b, 8], 1e9), 0);
    assert_eq!(
        wasm::rootfs_index(&[0x1f, 0x8b, 8], 1e9, b"QFI\xfb", 10.0),
        1
    );
    assert!(wasm::memory_bytes() >= 65536.0);
    assert_eq!(wasm::version(), env!("CARGO_PKG_VERSION"));
}

#[wasm_bindgen_test]
fn targets_reference_and_architectures() {
    // `targets()`: the keys of a Report's `verdicts`, in the same order, each with a label.
    let list = to_json(&wasm::targets().unwrap().into());
    let list = list.as_array().unwrap();
    let keys: Vec<&str> = list.iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert!(list
        .iter()
        .all(|t| !t["label"].as_str().unwrap().is_empty()));
    let files = fixture("unified-tar-gnu");
    let insp = new_inspector(&options(false));
    call(
        &insp,
        "push",
        &args(&[Uint8Array::from(&files[0][..]).into()]),
    );
    let report = call(&insp, "finish", &args(&[]));
    let verdicts: js_sys::Object = get(&report, "verdicts").unchecked_into();
    let order: Vec<String> = js_sys::Object::keys(&verdicts)
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    assert_eq!(order, keys, "targets() is not the Report's order");
    assert_eq!(keys[0], "lxd-5.0");
    assert_eq!(wasm::reference_target(), "lxd-5.0");

    // The architecture lookups the edge worker's URL-import answers use.
    let canon = |t: &str| wasm::canonical_architecture(t);
    assert_eq!(canon("x86_64").as_deref(), Some("x86_64"));
    assert_eq!(canon(" AMD64 ").as_deref(), Some("x86_64"));
    assert_eq!(canon("2").as_deref(), Some("x86_64"));
    assert_eq!(canon("loong64").as_deref(), Some("loongarch64"));
    assert_eq!(canon("x86_64_v3").as_deref(), Some("x86_64"));
    assert_eq!(canon("0"), None);
    assert_eq!(canon("sparc"), None);
    assert_eq!(
        wasm::personalities("aarch64"),
        ["aarch64", "armv7l", "armv6l"]
    );
    assert!(wasm::personalities("amd64").is_empty());
}

//! The JavaScript boundary (wasm-bindgen), compiled for `wasm32` only: it converts and forwards.
//!
//! The page's Web Worker (`www/worker.js`) and the edge worker (`worker/`) import the `pkg/` that
//! `wasm-pack build --target web` makes from this module. The API is documented, with examples, in
//! `www/README-api.md`; keep the two in step. Reports cross the boundary as plain JS objects with
//! the same field names as the CLI's `--json` (serde-wasm-bindgen, JSON-compatible mode); misuse
//! of the API becomes a JS exception (`Error`) carrying the core's message.

use crate::detect::{detect_lxd, sniff, Detection, Format};
use crate::{ImageType, Options, Report};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// The Report's types, generated from the Rust types (src/tsgen.rs, checked by `cargo test`).
#[wasm_bindgen(typescript_custom_section)]
const TS_REPORT: &'static str = include_str!("report.d.ts");

#[wasm_bindgen(typescript_custom_section)]
const TS_OPTIONS: &'static str = r#"
/** Options of `new Inspector(options)`; every field may be left out. */
export interface InspectorOptions {
  /** Current Unix time in seconds, for the "expired" findings (e.g. `Math.floor(Date.now() / 1000)`). Left out: not checked. */
  now?: number | null;
  /** File names for the report: `[first file, rootfs file of a split image]`. */
  names?: [string | null | undefined, (string | null | undefined)?];
  /** Split images: the type the uploader declares (multipart part `rootfs` or `rootfs.img`). Left out: decided from the rootfs content, as `lxc` does. */
  splitType?: "container" | "virtual-machine" | null;
  /** Canonical architecture of the LXD host (`x86_64`, `aarch64`, …), for the `creatable` verdict. Left out: not checked. */
  hostArch?: string | null;
  /** Expansion limit: decoding of a compressed file stops (a `decompression-bomb` error finding) once it has decoded more than this many bytes *and* more than `maxExpansionRatio` times the compressed bytes read. Left out: 1073741824 (1 GiB). */
  maxDecodedBytes?: number | null;
  /** Expansion limit: decoded bytes per compressed byte read (see `maxDecodedBytes`). Left out: 100. */
  maxExpansionRatio?: number | null;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "InspectorOptions")]
    pub type JsInspectorOptions;
    #[wasm_bindgen(typescript_type = "Report")]
    pub type JsReport;
    #[wasm_bindgen(typescript_type = "Verdict | undefined")]
    pub type JsVerdict;
    #[wasm_bindgen(typescript_type = "TargetInfo[]")]
    pub type JsTargets;

    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Panics (bugs) go to the console before the module traps with a `WebAssembly.RuntimeError`.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| console_error(&format!("lxdimg: {info}"))));
    });
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsOptions {
    now: Option<f64>,
    names: Option<Vec<Option<String>>>,
    split_type: Option<String>,
    host_arch: Option<String>,
    max_decoded_bytes: Option<f64>,
    max_expansion_ratio: Option<f64>,
}

/// A limit given as a JS number: a whole number of at least 0 (up to 2^53, the largest exact one).
fn limit(name: &str, v: Option<f64>, default: u64) -> Result<u64, JsError> {
    match v {
        None => Ok(default),
        Some(n)
            if n.is_finite()
                && n.fract() == 0.0
                && (0.0..=9_007_199_254_740_992.0).contains(&n) =>
        {
            Ok(n as u64)
        }
        Some(n) => Err(JsError::new(&format!(
            "invalid Inspector options: {name} must be a whole number of at least 0, not {n}"
        ))),
    }
}

fn options(js: Option<JsInspectorOptions>) -> Result<Options, JsError> {
    let js: JsOptions = match js.map(JsValue::from) {
        Some(v) if !v.is_undefined() && !v.is_null() => serde_wasm_bindgen::from_value(v)
            .map_err(|e| JsError::new(&format!("invalid Inspector options: {e}")))?,
        _ => JsOptions::default(),
    };
    let now = match js.now {
        None => None,
        Some(t) if t.is_finite() && t.fract() == 0.0 && t.abs() < 9.0e15 => Some(t as i64),
        Some(t) => {
            return Err(JsError::new(&format!(
                "invalid Inspector options: now must be whole Unix seconds, not {t}"
            )))
        }
    };
    let mut names = [None, None];
    for (slot, name) in names.iter_mut().zip(js.names.unwrap_or_default()) {
        *slot = name;
    }
    let split_type = match js.split_type.as_deref() {
        None => None,
        Some("container") => Some(ImageType::Container),
        Some("virtual-machine") => Some(ImageType::VirtualMachine),
        Some(other) => {
            return Err(JsError::new(&format!(
                "invalid Inspector options: splitType must be \"container\" or \"virtual-machine\", not {other:?}"
            )))
        }
    };
    let defaults = Options::default();
    Ok(Options {
        now,
        names,
        split_type,
        host_arch: js.host_arch,
        max_decoded_bytes: limit(
            "maxDecodedBytes",
            js.max_decoded_bytes,
            defaults.max_decoded_bytes,
        )?,
        max_expansion_ratio: limit(
            "maxExpansionRatio",
            js.max_expansion_ratio,
            defaults.max_expansion_ratio,
        )?,
    })
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

fn finished() -> JsError {
    JsError::new("this Inspector was already finished; create a new one")
}

/// Inspects one image, pushed in chunks of any size (see `www/README-api.md`).
#[wasm_bindgen]
pub struct Inspector {
    core: Option<crate::Inspector>,
}

#[wasm_bindgen]
impl Inspector {
    /// `options`: see `InspectorOptions`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: Option<JsInspectorOptions>) -> Result<Inspector, JsError> {
        install_panic_hook();
        Ok(Inspector {
            core: Some(crate::Inspector::new(self::options(options)?)),
        })
    }

    fn core(&mut self) -> Result<&mut crate::Inspector, JsError> {
        self.core.as_mut().ok_or_else(finished)
    }

    /// Feeds the next bytes of the current file (copied; the array can be reused).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.core()?.push(chunk);
        Ok(())
    }

    /// Split images: ends the metadata file; later pushes are the rootfs file.
    #[wasm_bindgen(js_name = startRootfs)]
    pub fn start_rootfs(&mut self) -> Result<(), JsError> {
        self.core()?
            .start_rootfs()
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Split images, quick mode: ends the metadata file after reading only part of it.
    #[wasm_bindgen(js_name = startRootfsEarly)]
    pub fn start_rootfs_early(&mut self) -> Result<(), JsError> {
        self.core()?
            .start_rootfs_early()
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Ends the input; returns the report. The inspector cannot be used afterwards.
    pub fn finish(&mut self) -> Result<JsReport, JsError> {
        Ok(to_js(&self.take()?.finish())?.unchecked_into())
    }

    /// Ends the input without treating it as the end of the file (stop reading early, `--quick`):
    /// no fingerprint, no truncation findings.
    #[wasm_bindgen(js_name = finishEarly)]
    pub fn finish_early(&mut self) -> Result<JsReport, JsError> {
        Ok(to_js(&self.take()?.finish_early())?.unchecked_into())
    }

    /// Like `finish`, as the CLI's `--json` text (pretty-printed, for a download or a response).
    #[wasm_bindgen(js_name = finishJson)]
    pub fn finish_json(&mut self) -> Result<String, JsError> {
        json(&self.take()?.finish())
    }

    /// Like `finishEarly`, as JSON text.
    #[wasm_bindgen(js_name = finishEarlyJson)]
    pub fn finish_early_json(&mut self) -> Result<String, JsError> {
        json(&self.take()?.finish_early())
    }

    fn take(&mut self) -> Result<crate::Inspector, JsError> {
        self.core.take().ok_or_else(finished)
    }

    /// Bytes pushed so far, over both files.
    #[wasm_bindgen(getter, js_name = bytesConsumed)]
    pub fn bytes_consumed(&self) -> f64 {
        self.core.as_ref().map_or(0, |c| c.bytes_consumed()) as f64
    }

    /// Whether the lxd-5.0 verdict is known from the bytes pushed so far. Until `startRootfs`,
    /// the first file is read as a unified image: for a split image, ask only while its rootfs is
    /// pushed.
    #[wasm_bindgen(getter, js_name = verdictKnown)]
    pub fn verdict_known(&self) -> bool {
        self.core.as_ref().is_some_and(|c| c.verdict_known())
    }

    /// The lxd-5.0 verdict so far: `undefined` until known (often long before the end).
    #[wasm_bindgen(getter)]
    pub fn verdict(&self) -> Result<JsVerdict, JsError> {
        Ok(match self.core.as_ref().and_then(|c| c.verdict()) {
            Some(v) => to_js(&v)?.unchecked_into(),
            None => JsValue::UNDEFINED.unchecked_into(),
        })
    }

    /// Whether the lxd-5.0 verdict needs no more bytes of the file being pushed.
    #[wasm_bindgen(getter, js_name = currentFileSettled)]
    pub fn current_file_settled(&self) -> bool {
        self.core.as_ref().is_some_and(|c| c.current_file_settled())
    }

    /// Whether `finish`/`finishEarly` was called.
    #[wasm_bindgen(getter)]
    pub fn finished(&self) -> bool {
        self.core.is_none()
    }
}

fn json(report: &Report) -> Result<String, JsError> {
    serde_json::to_string_pretty(report).map_err(|e| JsError::new(&e.to_string()))
}

/// LXD's fingerprint alone: streaming SHA-256 (of the metadata file, then the rootfs file).
#[wasm_bindgen]
pub struct Fingerprinter {
    core: Option<crate::Fingerprinter>,
}

#[wasm_bindgen]
impl Fingerprinter {
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Fingerprinter {
        install_panic_hook();
        Fingerprinter {
            core: Some(crate::Fingerprinter::new()),
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.core
            .as_mut()
            .ok_or_else(|| JsError::new("this Fingerprinter was already finished"))?
            .push(chunk);
        Ok(())
    }

    /// The fingerprint as 64 lowercase hex digits. The fingerprinter cannot be used afterwards.
    pub fn finish(&mut self) -> Result<String, JsError> {
        Ok(self
            .core
            .take()
            .ok_or_else(|| JsError::new("this Fingerprinter was already finished"))?
            .finish())
    }
}

/// LXD's format detection on the first bytes of a file (263 are enough): `"gzip"`, `"bzip2"`,
/// `"xz"`, `"lzma"`, `"zstd"`, `"tar"`, `"squashfs"`, `"qcow2"`, `"empty"` or `"unsupported"`.
#[wasm_bindgen(js_name = detectFormat)]
pub fn detect_format(head: &[u8]) -> String {
    match detect_lxd(head) {
        Detection::Format(f) => f.name().into(),
        Detection::Empty => "empty".into(),
        Detection::Unsupported => "unsupported".into(),
    }
}

/// Of two files dropped together, which one (0 or 1) is the rootfs of a split image, by content:
/// a squashfs/qcow2/vmdk file is the rootfs; else a file that is no tarball at all; else the larger
/// one; on a tie, the second. `head0`/`head1`: each file's first bytes (512 are enough).
#[wasm_bindgen(js_name = rootfsIndex)]
pub fn rootfs_index(head0: &[u8], size0: f64, head1: &[u8], size1: f64) -> u32 {
    fn rank(head: &[u8]) -> u8 {
        match sniff(head) {
            Some(Format::Squashfs | Format::Qcow2 | Format::Vmdk) => 2,
            Some(_) => 0,
            None => 1,
        }
    }
    let (r0, r1) = (rank(head0), rank(head1));
    if r0 != r1 {
        return u32::from(r0 < r1);
    }
    u32::from(size0 <= size1)
}

/// The verdict targets, in the Report's order: `[{key, label}]` (the page's columns).
#[wasm_bindgen]
pub fn targets() -> Result<JsTargets, JsError> {
    #[derive(Serialize)]
    struct TargetInfo {
        key: &'static str,
        label: &'static str,
    }
    let list: Vec<TargetInfo> = crate::verdict::TARGETS
        .iter()
        .map(|t| TargetInfo {
            key: t.key,
            label: t.label,
        })
        .collect();
    Ok(to_js(&list)?.unchecked_into())
}

/// The finding codes after which `lxc init` works but the instance fails at its first start
/// (template rules LXD cannot apply): the page says "created, but fails at first start".
#[wasm_bindgen(js_name = firstStartCodes)]
pub fn first_start_codes() -> Vec<String> {
    crate::FindingCode::ALL
        .iter()
        .filter(|c| c.breaks_first_start())
        .map(|c| c.as_str().to_string())
        .collect()
}

/// The control characters (`crate::controls`: C0, DEL, C1, bidi formatting) as the body of a
/// JavaScript regular-expression character class, for `new RegExp(`[${c}]`, "gu")`: the page
/// shows them as the CLI prints them (`\u{1b}`), never raw.
#[wasm_bindgen(js_name = controlCharacters)]
pub fn control_characters() -> String {
    crate::controls::js_class()
}

/// `text` with its control characters escaped as the CLI prints them (`\u{1b}`, `\n`, …).
#[wasm_bindgen(js_name = escapeControls)]
pub fn escape_controls(text: &str) -> String {
    crate::controls::escape(text).into_owned()
}

/// Quotes a word for a shell as the CLI's commands do: as is when plain, in single quotes, or
/// as bash's `$'…'` with escapes when it holds control characters.
#[wasm_bindgen(js_name = shellQuote)]
pub fn shell_quote(word: &str) -> String {
    crate::findings::shell_quote(word)
}

/// The key of the target whose verdict gates uploads and the early verdict (`"lxd-5.0"`).
#[wasm_bindgen(js_name = referenceTarget)]
pub fn reference_target() -> String {
    crate::verdict::REFERENCE.key.into()
}

/// The canonical architecture name for a name, an alias any LXD or Incus version knows, or a
/// numeric ID (as LXD ≤ 4.2 sends them), in any case; `undefined` if none.
#[wasm_bindgen(js_name = canonicalArchitecture)]
pub fn canonical_architecture(token: &str) -> Option<String> {
    crate::arch::canonical_any(token).map(str::to_string)
}

/// The architectures a host of this canonical architecture can run (itself first), as LXD lists
/// them in `LXD-Server-Architectures`; empty for an unknown name.
#[wasm_bindgen]
pub fn personalities(arch: &str) -> Vec<String> {
    crate::arch::personalities(arch)
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The crate version (`Cargo.toml`).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}

/// The size of the module's linear memory in bytes (it only grows).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size(0) * 65536) as f64
}

/// The simplestreams products file (`streams/v1/images.json`, JSON text) for the images a server
/// publishes: `[{fingerprint, type, architecture, properties, creation_date, expiry_date,
/// fallback_date, aliases, files: [{role, path, sha256, size, compression}]}]`. The item families
/// are the core's (`src/simplestreams.rs`), the same as `lxdimg stream` writes.
#[wasm_bindgen(js_name = simplestreamsProducts)]
pub fn simplestreams_products(images: JsValue) -> Result<String, JsError> {
    let images: Vec<crate::simplestreams::ServedImage> = serde_wasm_bindgen::from_value(images)?;
    let products = crate::simplestreams::products_for_server(&images);
    Ok(serde_json::to_string_pretty(&products)? + "\n")
}

/// The simplestreams index (`streams/v1/index.json`, JSON text) for a products file as
/// [`simplestreams_products`] returns it; `updated` is an RFC 2822 date or empty.
#[wasm_bindgen(js_name = simplestreamsIndex)]
pub fn simplestreams_index(products_json: &str, updated: &str) -> Result<String, JsError> {
    let products: crate::simplestreams::Products = serde_json::from_str(products_json)?;
    let index = crate::simplestreams::index_for(
        &products,
        (!updated.is_empty()).then(|| updated.to_string()),
    );
    Ok(serde_json::to_string_pretty(&index)? + "\n")
}

// --- make and repair (issue 12) -----------------------------------------------------------------

/// `lxdimg make` in the browser: push the rootfs file once, `finish()` (what it read), then
/// `metadata(choices, now)` (the proposed `metadata.yaml` and the metadata tarball's bytes).
#[wasm_bindgen]
pub struct MakeProbe {
    core: Option<crate::make::RootfsProbe>,
    probe: Option<crate::make::Probe>,
}

/// What the user chose (every field optional): `architecture`, `os`, `release`, `variant`,
/// `description`, `templateSet` (`none`, `basic`, `cloud-init`).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsChoices {
    architecture: Option<String>,
    os: Option<String>,
    release: Option<String>,
    variant: Option<String>,
    description: Option<String>,
    template_set: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

#[wasm_bindgen]
impl MakeProbe {
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> MakeProbe {
        install_panic_hook();
        MakeProbe {
            core: Some(crate::make::RootfsProbe::new(
                crate::decode::ExpansionLimits {
                    max_decoded: 64 << 30,
                    max_ratio: crate::limits::DEFAULT_MAX_EXPANSION_RATIO,
                },
            )),
            probe: None,
        }
    }

    /// The next bytes of the rootfs file.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.core
            .as_mut()
            .ok_or_else(|| JsError::new("this MakeProbe was already finished"))?
            .push(chunk);
        Ok(())
    }

    /// Whether the proposal is known (`/bin/sh`'s architecture and os-release found): reading the
    /// rootfs can stop here.
    #[wasm_bindgen(getter)]
    pub fn settled(&self) -> bool {
        self.core.as_ref().is_some_and(|c| c.settled())
    }

    /// Ends the rootfs: `{format, size, entries, architecture: {name, path, file} | null,
    /// os_release, os_release_file, error}`.
    pub fn finish(&mut self) -> Result<JsValue, JsError> {
        let p = self
            .core
            .take()
            .ok_or_else(|| JsError::new("this MakeProbe was already finished"))?
            .finish();
        let v = to_js(&p);
        self.probe = Some(p);
        v
    }

    /// The proposal: `{metadata, yaml, tarball: Uint8Array, alias}`; an error says which choice
    /// is missing. `now`: the caller's clock (Unix seconds).
    pub fn metadata(&self, choices: JsValue, now: f64) -> Result<JsValue, JsError> {
        let c: JsChoices = if choices.is_undefined() || choices.is_null() {
            JsChoices::default()
        } else {
            serde_wasm_bindgen::from_value(choices).map_err(|e| JsError::new(&e.to_string()))?
        };
        let set = match c.template_set.as_deref() {
            None => crate::template::sets::TemplateSet::Basic,
            Some(n) => crate::template::sets::TemplateSet::from_name(n)
                .ok_or_else(|| JsError::new(&format!("unknown template set {n:?}")))?,
        };
        let choices = crate::make::Choices {
            architecture: nonempty(c.architecture),
            os: nonempty(c.os),
            release: nonempty(c.release),
            variant: nonempty(c.variant),
            description: nonempty(c.description),
            template_set: Some(set),
        };
        let now = now as i64;
        let m = crate::make::propose(self.probe.as_ref(), &choices, now)
            .map_err(|e| JsError::new(&e))?;
        let yaml = crate::make::metadata_yaml(&m);
        let tarball = crate::make::metadata_tarball(&yaml, &crate::make::template_files(set), now)
            .map_err(|e| JsError::new(&e.to_string()))?;
        let props = m.properties.clone().unwrap_or_default();
        let alias = format!("{}/{}", props["os"], props["release"])
            .to_lowercase()
            .replace(' ', "-");
        let out = js_sys::Object::new();
        let set_key = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &k.into(), v).map(|_| ());
        set_key("metadata", &to_js(&m)?).map_err(|_| JsError::new("set"))?;
        set_key("yaml", &yaml.into()).map_err(|_| JsError::new("set"))?;
        set_key("alias", &alias.into()).map_err(|_| JsError::new("set"))?;
        set_key(
            "tarball",
            &js_sys::Uint8Array::from(tarball.as_slice()).into(),
        )
        .map_err(|_| JsError::new("set"))?;
        Ok(out.into())
    }
}

/// `lxdimg repair` in the browser: push the image as to an `Inspector` (`startRootfs()` between
/// the two files of a split image), then `finish(now)`: `{report, plan, diff, tarball?}` — the
/// plan's fixes (each with its finding code), the diff of `metadata.yaml`, and for a split image
/// the repaired metadata tarball (inspect it again with the rootfs before offering it).
#[wasm_bindgen]
pub struct Repairer {
    inspector: Option<crate::Inspector>,
    reader: Option<crate::repair::MetaReader>,
    parts: Option<crate::repair::MetaParts>,
}

#[wasm_bindgen]
impl Repairer {
    #[wasm_bindgen(constructor)]
    pub fn new(options: Option<JsInspectorOptions>) -> Result<Repairer, JsError> {
        install_panic_hook();
        let opts = self::options(options)?;
        let limits = crate::decode::ExpansionLimits {
            max_decoded: opts.max_decoded_bytes,
            max_ratio: opts.max_expansion_ratio,
        };
        Ok(Repairer {
            inspector: Some(crate::Inspector::new(opts)),
            reader: Some(crate::repair::MetaReader::new(limits)),
            parts: None,
        })
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.inspector
            .as_mut()
            .ok_or_else(|| JsError::new("this Repairer was already finished"))?
            .push(chunk);
        if let Some(r) = self.reader.as_mut() {
            r.push(chunk);
        }
        Ok(())
    }

    #[wasm_bindgen(js_name = startRootfs)]
    pub fn start_rootfs(&mut self) -> Result<(), JsError> {
        self.inspector
            .as_mut()
            .ok_or_else(|| JsError::new("this Repairer was already finished"))?
            .start_rootfs()
            .map_err(|e| JsError::new(&e.to_string()))?;
        self.parts = self.reader.take().map(|r| r.finish());
        Ok(())
    }

    pub fn finish(&mut self, now: f64) -> Result<JsValue, JsError> {
        let report = self
            .inspector
            .take()
            .ok_or_else(|| JsError::new("this Repairer was already finished"))?
            .finish();
        let split = self.parts.is_some();
        let parts = match self.parts.take() {
            Some(p) => p,
            None => self.reader.take().map(|r| r.finish()).unwrap_or_default(),
        };
        let now = now as i64;
        let out = js_sys::Object::new();
        let set_key = |k: &str, v: &JsValue| {
            js_sys::Reflect::set(&out, &k.into(), v)
                .map(|_| ())
                .map_err(|_| JsError::new("set"))
        };
        set_key("report", &to_js(&report)?)?;
        match crate::repair::plan(&parts, &report, now, None) {
            Err(e) => set_key("error", &e.into())?,
            Ok(p) => {
                set_key("plan", &to_js(&p)?)?;
                set_key("diff", &p.diff().into())?;
                if split && !p.fixes.is_empty() {
                    let t = crate::make::metadata_tarball(&p.new_yaml, &p.templates, now)
                        .map_err(|e| JsError::new(&e.to_string()))?;
                    set_key("tarball", &js_sys::Uint8Array::from(t.as_slice()).into())?;
                }
                if !split && !p.fixes.is_empty() {
                    // A unified image: the `Rewrite` edits (`RewriteEdits`) and output format.
                    let e = p.edits(now.max(0) as u64);
                    let member = |name: &[u8], occurrence: Option<u64>, content: Option<&[u8]>, mtime: Option<u64>| {
                        let o = js_sys::Object::new();
                        let _ = js_sys::Reflect::set(&o, &"name".into(), &String::from_utf8_lossy(name).as_ref().into());
                        if let Some(n) = occurrence {
                            let _ = js_sys::Reflect::set(&o, &"occurrence".into(), &(n as f64).into());
                        }
                        if let Some(c) = content {
                            let _ = js_sys::Reflect::set(&o, &"content".into(), &js_sys::Uint8Array::from(c).into());
                        }
                        if let Some(t) = mtime {
                            let _ = js_sys::Reflect::set(&o, &"mtime".into(), &(t as f64).into());
                        }
                        JsValue::from(o)
                    };
                    let drop = js_sys::Array::new();
                    for t in &e.drop {
                        drop.push(&member(&t.name, t.occurrence, None, None));
                    }
                    let add = js_sys::Array::new();
                    for a in &e.add {
                        add.push(&member(&a.name, None, Some(&a.content), Some(a.mtime)));
                    }
                    let edits = js_sys::Object::new();
                    let _ = js_sys::Reflect::set(&edits, &"drop".into(), &drop);
                    let _ = js_sys::Reflect::set(&edits, &"add".into(), &add);
                    set_key("edits", &edits.into())?;
                    if p.recompress {
                        set_key("format", &"xz".into())?;
                    }
                }
            }
        }
        Ok(out.into())
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TS_REWRITE: &'static str = r#"
/** A member's content: UTF-8 text or bytes. */
export type RewriteContent = string | Uint8Array | number[];
/** What `new Rewrite(edits, options)` changes in a unified image (see `lxdimg::rewrite::Edits`). */
export interface RewriteEdits {
  /** New content for regular-file members (`name` as the archive spells it; `occurrence`: only the n-th with that name, from 0). */
  replace?: { name: string; occurrence?: number | null; content: RewriteContent }[];
  /** Members left out. */
  drop?: { name: string; occurrence?: number | null }[];
  /** Members written first, in order (regular files, mode 0644 unless given, owned by root). */
  add?: { name: string; content?: RewriteContent; mode?: number; mtime?: number; directory?: boolean }[];
}
export interface RewriteOptions {
  /** Output codec; left out: the input's. */
  format?: "gzip" | "bzip2" | "xz" | "lzma" | "zstd" | "tar" | null;
  /** Compression level; left out: the tool's default (or what the input's header shows). */
  level?: number | null;
  maxDecodedBytes?: number | null;
  maxExpansionRatio?: number | null;
}
/** What `Rewrite.finish()` says (`summary`), beside the last `output` bytes. */
export interface RewriteSummary {
  fingerprint: string; format: string; level: number; bytes_in: number; bytes_out: number;
  tar_bytes_in: number; tar_bytes_out: number; members: number; replaced: number; dropped: number;
  added: number; trailing_dropped: number;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "RewriteEdits")]
    pub type JsRewriteEdits;
    #[wasm_bindgen(typescript_type = "RewriteOptions")]
    pub type JsRewriteOptions;
    #[wasm_bindgen(typescript_type = "{ output: Uint8Array; summary: RewriteSummary }")]
    pub type JsRewriteEnd;
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsContent {
    Text(String),
    Bytes(Vec<u8>),
}

impl JsContent {
    fn bytes(self) -> Vec<u8> {
        match self {
            JsContent::Text(s) => s.into_bytes(),
            JsContent::Bytes(b) => b,
        }
    }
}

#[derive(Deserialize)]
struct JsTarget {
    name: String,
    occurrence: Option<f64>,
    content: Option<JsContent>,
    mode: Option<u32>,
    mtime: Option<f64>,
    directory: Option<bool>,
}

impl JsTarget {
    fn target(&self) -> crate::rewrite::Target {
        crate::rewrite::Target {
            name: self.name.as_bytes().to_vec(),
            occurrence: self.occurrence.map(|n| n as u64),
        }
    }
}

#[derive(Deserialize, Default)]
struct JsEdits {
    #[serde(default)]
    replace: Vec<JsTarget>,
    #[serde(default)]
    drop: Vec<JsTarget>,
    #[serde(default)]
    add: Vec<JsTarget>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsRewriteOpts {
    format: Option<String>,
    level: Option<u32>,
    max_decoded_bytes: Option<f64>,
    max_expansion_ratio: Option<f64>,
}

fn from_js<T: for<'de> Deserialize<'de> + Default>(v: JsValue, what: &str) -> Result<T, JsError> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(v).map_err(|e| JsError::new(&format!("invalid {what}: {e}")))
}

/// Rewrites a unified image as a stream (`lxdimg::rewrite`): push the image's bytes in chunks of
/// any size, write out each returned chunk in order; `finish()` gives the last bytes and the new
/// fingerprint. Memory stays bounded (codec windows and one chunk), whatever the image's size.
#[wasm_bindgen]
pub struct Rewrite {
    core: Option<crate::rewrite::UnifiedRewrite>,
}

#[wasm_bindgen]
impl Rewrite {
    #[wasm_bindgen(constructor)]
    pub fn new(
        edits: Option<JsRewriteEdits>,
        options: Option<JsRewriteOptions>,
    ) -> Result<Rewrite, JsError> {
        install_panic_hook();
        let e: JsEdits = from_js(edits.map_or(JsValue::UNDEFINED, JsValue::from), "edits")?;
        let o: JsRewriteOpts =
            from_js(options.map_or(JsValue::UNDEFINED, JsValue::from), "options")?;
        let mut edits = crate::rewrite::Edits::default();
        for r in e.replace {
            let t = r.target();
            let content = r
                .content
                .ok_or_else(|| JsError::new(&format!("replace {:?}: no content", r.name)))?;
            edits.replace.push((t, content.bytes()));
        }
        edits.drop = e.drop.iter().map(JsTarget::target).collect();
        for a in e.add {
            let directory = a.directory.unwrap_or(false);
            edits.add.push(crate::rewrite::NewEntry {
                name: a.name.into_bytes(),
                kind: if directory {
                    crate::rewrite::NewKind::Directory
                } else {
                    crate::rewrite::NewKind::File
                },
                mode: a.mode.unwrap_or(if directory { 0o755 } else { 0o644 }),
                mtime: a.mtime.map_or(0, |t| t.max(0.0) as u64),
                content: a.content.map(JsContent::bytes).unwrap_or_default(),
            });
        }
        let format = match o.format.as_deref() {
            None => None,
            Some("gzip") => Some(Format::Gzip),
            Some("bzip2") => Some(Format::Bzip2),
            Some("xz") => Some(Format::Xz),
            Some("lzma") => Some(Format::Lzma),
            Some("zstd") => Some(Format::Zstd),
            Some("tar") => Some(Format::Tar),
            Some(f) => return Err(JsError::new(&format!("invalid options: format {f:?}"))),
        };
        let d = crate::rewrite::RewriteOptions::default();
        let opts = crate::rewrite::RewriteOptions {
            format,
            level: o.level,
            max_decoded_bytes: limit("maxDecodedBytes", o.max_decoded_bytes, d.max_decoded_bytes)?,
            max_expansion_ratio: limit(
                "maxExpansionRatio",
                o.max_expansion_ratio,
                d.max_expansion_ratio,
            )?,
        };
        Ok(Rewrite {
            core: Some(crate::rewrite::UnifiedRewrite::new(edits, opts)),
        })
    }

    /// Feeds the next bytes of the image; returns the output bytes produced (often empty).
    /// Throws on bad input (what is wrong and where); the output so far must then be discarded.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, JsError> {
        let core = self
            .core
            .as_mut()
            .ok_or_else(|| JsError::new("this Rewrite was already finished"))?;
        let mut out = Vec::new();
        core.push(chunk, &mut out)
            .map_err(|e| JsError::new(&e.message))?;
        Ok(out)
    }

    /// Ends the input: `{ output, summary }`, the last output bytes and what was done (with the
    /// new fingerprint, the SHA-256 of all the output).
    pub fn finish(&mut self) -> Result<JsRewriteEnd, JsError> {
        let core = self
            .core
            .take()
            .ok_or_else(|| JsError::new("this Rewrite was already finished"))?;
        let mut out = Vec::new();
        let summary = core
            .finish(&mut out)
            .map_err(|e| JsError::new(&e.message))?;
        let o = js_sys::Object::new();
        js_sys::Reflect::set(&o, &"output".into(), &js_sys::Uint8Array::from(&out[..]).into())
            .map_err(|_| JsError::new("cannot build the result"))?;
        js_sys::Reflect::set(&o, &"summary".into(), &to_js(&summary)?)
            .map_err(|_| JsError::new("cannot build the result"))?;
        Ok(o.unchecked_into())
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TS_RENDER: &'static str = r#"
/** The instance a template is rendered for (`renderTemplate`); every field may be left out. */
export interface TemplateContext {
  /** `container.name` (default "c1"). */
  name?: string;
  /** "container" (default) or "virtual-machine". */
  type?: string;
  /** LXD's architecture name (default "x86_64"). */
  architecture?: string;
  ephemeral?: boolean;
  /** The instance's expanded config (`config`, `config_get`). */
  config?: Record<string, string>;
  /** The instance's expanded devices. */
  devices?: Record<string, Record<string, string>>;
  /** The template rule's `properties`. */
  properties?: Record<string, string>;
}
/** A rendered template, or why it cannot be (`error`: file line/column, LXD's text, its kind). */
export interface TemplateResult {
  output?: string;
  notes?: string[];
  error?: { kind: "syntax" | "execution" | "unsupported" | "limit"; line: number; col: number; message: string; hint: string | null };
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "TemplateContext")]
    pub type JsTemplateContext;
    #[wasm_bindgen(typescript_type = "TemplateResult")]
    pub type JsTemplateResult;
    #[wasm_bindgen(typescript_type = "Record<string, string>")]
    pub type JsStringMap;
}

/// Renders a template's text as LXD applies it at `trigger` to the target `path`, for the
/// instance in `context` (see `TemplateContext`): `{output, notes}` or `{error}`. Bounded (output,
/// steps and nesting); the template text is at most what the Report keeps (1 MiB).
#[wasm_bindgen(js_name = renderTemplate)]
pub fn render_template(
    source: &str,
    context: JsTemplateContext,
    trigger: &str,
    path: &str,
) -> Result<JsTemplateResult, JsError> {
    install_panic_hook();
    let v = JsValue::from(context);
    let mut ctx: crate::template::RenderContext = if v.is_undefined() || v.is_null() {
        Default::default()
    } else {
        serde_wasm_bindgen::from_value(v)
            .map_err(|e| JsError::new(&format!("invalid template context: {e}")))?
    };
    ctx.trigger = trigger.to_string();
    ctx.path = path.to_string();
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        notes: Option<&'a [String]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Err<'a>>,
    }
    #[derive(Serialize)]
    struct Err<'a> {
        kind: crate::template::Kind,
        line: u32,
        col: u32,
        message: &'a str,
        hint: Option<&'a str>,
    }
    let r = crate::template::render_lxd(source, &ctx);
    let out = match &r {
        Ok(r) => Out {
            output: Some(&r.output),
            notes: Some(&r.notes),
            error: None,
        },
        Err(e) => Out {
            output: None,
            notes: None,
            error: Some(Err {
                kind: e.kind(),
                line: e.line,
                col: e.col,
                message: &e.message,
                hint: e.hint.as_deref(),
            }),
        },
    };
    Ok(to_js(&out)?.unchecked_into())
}

/// The config keys LXD gives an instance created from the image: `image.<key>` for each image
/// property, and `volatile.base_image` (the fingerprint, when given).
#[wasm_bindgen(js_name = imageConfig)]
pub fn image_config(
    properties: JsStringMap,
    fingerprint: Option<String>,
) -> Result<JsStringMap, JsError> {
    let props: std::collections::BTreeMap<String, String> =
        serde_wasm_bindgen::from_value(properties.into())
            .map_err(|e| JsError::new(&format!("invalid properties: {e}")))?;
    Ok(to_js(&crate::template::image_config(
        &props,
        fingerprint.as_deref(),
    ))?
    .unchecked_into())
}

/**
 * The one place the worker touches the wasm core (`pkg/`, built from src/wasm.rs by
 * `wasm-pack build --target web`). API: www/README-api.md.
 *
 * The module is instantiated once per isolate, lazily, from the compiled `WebAssembly.Module`
 * that the `.wasm` import gives (Workers cannot compile wasm from bytes at run time); each
 * inspection is a fresh `Inspector`.
 *
 * A Rust panic (a bug) traps with a `WebAssembly.RuntimeError`, which can leave the instance's
 * shadow stack and heap inconsistent. wasm-bindgen's glue keeps its instance in module state and
 * offers no way to swap it, so the adapter marks the core poisoned: that request gets a 500, and
 * later inspections in the same isolate get a 503 ("retry") until the runtime replaces the
 * isolate. Everything that does not inspect (URL-import answers, bytes, simplestreams, listing)
 * keeps working.
 */
import wasmModule from "../../pkg/lxdimg_bg.wasm";
import * as glue from "../../pkg/lxdimg.js";

let api = null;
let poisoned = false;

function load() {
  if (poisoned) throw new CoreError("the inspection core crashed earlier in this isolate; retry the upload", 503);
  if (!api) {
    glue.initSync({ module: wasmModule });
    api = glue;
  }
  return api;
}

/** An error of the core itself (a bug, or a trap), as opposed to a problem with the image. */
export class CoreError extends Error {
  constructor(message, status = 500) {
    super(message);
    this.name = "CoreError";
    this.status = status;
  }
}

function guard(fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) {
      poisoned = true;
      console.error("lxdimg: the inspection core trapped; this isolate refuses inspections from now on:", e.message);
      throw new CoreError(`inspection core crashed: ${e.message}`);
    }
    throw e;
  }
}

/**
 * One image inspection: `push(bytes)` as they arrive, `startRootfs()` between the two files of a
 * split image, then `finish()` for the Report (the CLI's `--json` shape). `free()` releases the
 * wasm memory if the inspection is abandoned; `finish()` does it too.
 */
export class Inspection {
  /** @param {{names?: (string|null)[], splitType?: "container"|"virtual-machine"|null, now?: number}} options */
  constructor(options = {}) {
    const core = load();
    this.inner = guard(() => new core.Inspector({
      now: options.now ?? Math.floor(Date.now() / 1000),
      names: options.names ?? [],
      splitType: options.splitType ?? null,
    }));
    this.bytes = 0;
  }

  push(chunk) {
    this.bytes += chunk.byteLength;
    guard(() => this.inner.push(chunk));
  }

  startRootfs() {
    guard(() => this.inner.startRootfs());
  }

  /** Whether the lxd-5.0 verdict is already known (often long before the last byte). */
  get verdictKnown() {
    return guard(() => this.inner.verdictKnown);
  }

  /** `{accepted, error}` once known, else undefined. */
  get verdict() {
    return guard(() => this.inner.verdict);
  }

  /** @returns {object} the Report */
  finish() {
    try {
      return guard(() => this.inner.finish());
    } finally {
      this.free();
    }
  }

  /** The Report from the bytes pushed so far, when reading stops early (no fingerprint). */
  finishEarly() {
    try {
      return guard(() => this.inner.finishEarly());
    } finally {
      this.free();
    }
  }

  free() {
    if (this.inner) {
      try {
        this.inner.free();
      } catch {
        // Already freed, or the instance trapped: nothing to release.
      }
      this.inner = null;
    }
  }
}

/** The core's version (Cargo.toml), for /api/version. */
export function coreVersion() {
  return load().version();
}

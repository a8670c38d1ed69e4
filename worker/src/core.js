/**
 * The one place the worker touches the wasm core (`pkg/`, built from src/wasm.rs by
 * `wasm-pack build --target web`). API: www/README-api.md.
 *
 * The module is instantiated once per isolate from the compiled `WebAssembly.Module` that the
 * `.wasm` import gives (Workers cannot compile wasm from bytes at run time). A Rust panic traps
 * with a `WebAssembly.RuntimeError` and may leave the instance's memory inconsistent: the adapter
 * then marks the core poisoned, the request gets a 500, and the next inspection instantiates a
 * fresh copy of the glue module (see `load`).
 */
import wasmModule from "../../pkg/lxdimg_bg.wasm";
import * as glue from "../../pkg/lxdimg.js";

let api = null;
let poisoned = false;
let generation = 0;

/**
 * The wasm-bindgen glue keeps its instance in module state and `initSync` is a no-op once set, so
 * reinitialising after a trap needs a new instance behind the same glue: `__wbg_init`'s
 * `initSync` accepts a module only the first time. We therefore instantiate through the glue once,
 * and after a trap rebuild the instance by hand with the glue's own import object when the glue
 * exposes it; otherwise the isolate keeps failing fast with 500s until the runtime recycles it.
 */
function load() {
  if (api && !poisoned) return api;
  if (!api) {
    glue.initSync({ module: wasmModule });
    api = glue;
    poisoned = false;
    return api;
  }
  throw new CoreError("the inspection core crashed earlier in this isolate; retry the request", 503);
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
      generation++;
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

/**
 * The one place the worker touches the wasm core (`pkg/`, built from src/wasm.rs by
 * `wasm-pack build --target web`). API: www/README-api.md. Besides inspections, the core is the
 * one definition of the verdict target that gates uploads (`referenceTarget`) and of LXD's
 * architecture names (`canonicalArchitecture`, `personalities`): the worker copies neither.
 *
 * The module is instantiated once per isolate, lazily, from the compiled `WebAssembly.Module`
 * that the `.wasm` import gives (Workers cannot compile wasm from bytes at run time); each
 * inspection is a fresh `Inspector`.
 *
 * A Rust panic (a bug) traps with a `WebAssembly.RuntimeError`, which can leave the instance's
 * shadow stack and heap inconsistent. wasm-bindgen's glue keeps its instance in module state and
 * offers no way to swap it, so the adapter marks the core poisoned: that request gets a 500, and
 * later inspections in the same isolate get a 503 ("retry") until the runtime replaces the
 * isolate. Everything that does not inspect keeps working: bytes, simplestreams and listings
 * never touch the core, and URL-import answers only use its table lookups, which hold no state an
 * inspection could have left half-done (if one of them trapped too, it would be a 500).
 */
import wasmModule from "../../pkg/lxdimg_bg.wasm";
import * as glue from "../../pkg/lxdimg.js";

/** Bytes gathered before a call into the core (see `Inspection.push`). */
export const COALESCE = 1 << 19;

let api = null;
let poisoned = false;

function instance() {
  if (!api) {
    glue.initSync({ module: wasmModule });
    api = glue;
  }
  return api;
}

/** The core for an inspection: refused once an inspection trapped in this isolate. */
function load() {
  if (poisoned) throw new CoreError("the inspection core crashed earlier in this isolate; retry the upload", 503);
  return instance();
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
  /**
   * @param {{names?: (string|null)[], splitType?: "container"|"virtual-machine"|null, now?: number,
   *   maxDecodedBytes?: number|null, maxExpansionRatio?: number|null}} options
   *   (the expansion limits: null or left out for the core's defaults)
   */
  constructor(options = {}) {
    const core = load();
    this.inner = guard(() => new core.Inspector({
      now: options.now ?? Math.floor(Date.now() / 1000),
      names: options.names ?? [],
      splitType: options.splitType ?? null,
      maxDecodedBytes: options.maxDecodedBytes ?? null,
      maxExpansionRatio: options.maxExpansionRatio ?? null,
    }));
    this.bytes = 0;
    this.pending = new Uint8Array(COALESCE);
    this.fill = 0;
  }

  /**
   * Queues bytes for the core. A request body arrives in chunks of a few KiB; each call into
   * wasm costs a copy and a boundary crossing, so chunks are gathered into COALESCE-byte pieces
   * (large chunks go straight through). Returns true when bytes reached the core (the moment to
   * look at the verdict again).
   */
  push(chunk) {
    this.bytes += chunk.byteLength;
    if (this.fill === 0 && chunk.byteLength >= COALESCE) {
      guard(() => this.inner.push(chunk));
      return true;
    }
    let off = 0;
    let flushed = false;
    while (off < chunk.byteLength) {
      const n = Math.min(COALESCE - this.fill, chunk.byteLength - off);
      this.pending.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === COALESCE) {
        this.flush();
        flushed = true;
      }
    }
    return flushed;
  }

  /** Hands queued bytes to the core. */
  flush() {
    if (this.fill > 0) {
      const piece = this.pending.subarray(0, this.fill);
      guard(() => this.inner.push(piece));
      this.fill = 0;
    }
  }

  startRootfs() {
    this.flush();
    guard(() => this.inner.startRootfs());
  }

  /** Whether the reference target's verdict is known from the bytes handed to the core so far. */
  get verdictKnown() {
    return guard(() => this.inner.verdictKnown);
  }

  /** The reference target's `Verdict` once known (its `accepted` and `error` are final), else undefined. */
  get verdict() {
    return guard(() => this.inner.verdict);
  }

  /** @returns {object} the Report */
  finish() {
    try {
      this.flush();
      return guard(() => this.inner.finish());
    } finally {
      this.free();
    }
  }

  /** The Report from the bytes pushed so far, when reading stops early (no fingerprint). */
  finishEarly() {
    try {
      this.flush();
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
    this.pending = null;
  }
}

/** The key of the core's reference target (`"lxd-5.0"`), the default gate of uploads. */
/**
 * Simplestreams JSON for the stored images (both item families, `combined_*` fields, version
 * names): the core's one definition (src/simplestreams.rs), shared with `lxdimg stream`.
 */
export function simplestreamsProducts(images) {
  return guard(() => instance().simplestreamsProducts(images));
}

export function simplestreamsIndex(productsJson, updated) {
  return guard(() => instance().simplestreamsIndex(productsJson, updated));
}

export function referenceTarget() {
  return guard(() => instance().referenceTarget());
}

/** The verdict targets, `[{key, label}]`, in the Report's order (the one list, src/verdict.rs). */
export function targets() {
  return guard(() => instance().targets());
}

/**
 * The canonical architecture for a name, an alias any LXD or Incus version knows, or a numeric ID
 * (LXD ≤ 4.2), in any case, blanks around it ignored; null if it names none.
 */
export function canonicalArchitecture(token) {
  return guard(() => instance().canonicalArchitecture(String(token))) ?? null;
}

/** What a host of this canonical architecture can run, itself first (`x86_64` → `x86_64, i686`); [] if unknown. */
export function personalities(arch) {
  return guard(() => instance().personalities(String(arch)));
}

/** `text` with control characters escaped as the CLI prints them (`\u{1b}`): for HTML the worker writes. */
export function escapeControls(text) {
  return load().escapeControls(String(text));
}

/** The core's version (Cargo.toml), for /api/version. */
export function coreVersion() {
  return load().version();
}

/** The wasm instance's linear memory in bytes (it only grows), or null before first use. */
export function coreMemory() {
  return api && typeof api.memoryBytes === "function" ? api.memoryBytes() : null;
}

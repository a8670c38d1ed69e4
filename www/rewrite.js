// Rewriting a unified image in the browser, saved as a stream (never a Blob of the whole image).
//
// Page side: `saveRewritten(file, edits, suggestedName, options)`, called from a click (the "Fix
// it" button): it asks where to save, starts a Web Worker (worker.js) that runs the core's
// `Rewrite` (src/rewrite/, through pkg/) over the file read with `file.slice()` in pieces, and the
// worker writes each piece of output as it is produced, to one of two sinks:
//   - "picker": the File System Access API (Chromium): `showSaveFilePicker()` on the page, then
//     `createWritable()` in the worker on the handle it is given. The browser writes to a swap
//     file and moves it into place at `close()`; an error aborts it.
//   - "download": elsewhere, a streamed download through the service worker (sw.js): the page
//     hands sw.js one end of a MessageChannel, the worker the other, and a link to
//     `__lxdimg/download/ID` (a plain link) becomes a Response whose body the worker feeds (one
//     chunk per pull, so a slow disk slows the reading of the image instead of filling memory).
// Worker side: `runRewrite(msg, post, wasm)`, called by worker.js for `{type: "rewrite"}`.
//
// Messages, page → worker: {type: "rewrite", id, file, edits, options, sink: {kind: "picker",
//   handle} | {kind: "download", port}}. Worker → page: {type: "rewrite-progress", id, done,
//   total}, {type: "rewrite-done", id, summary, ms, bytes, memory, peakMemory},
//   {type: "error", id, message}.
// Messages on the download port: sw.js → worker {pull: true} | {cancel: true};
//   worker → sw.js {chunk: ArrayBuffer} | {done: true} | {error: message}.

/** Bytes of the image read per `file.slice()`. */
export const READ_PIECE = 1 << 20;
/** Output bytes gathered before a write (fewer, larger writes and messages). */
const WRITE_PIECE = 1 << 20;
const PROGRESS_EVERY_MS = 100;
const DOWNLOAD_PREFIX = "__lxdimg/download/";

// ---------------------------------------------------------------------------------------------
// Page side

/** Which sink this browser offers: "picker", "download", or null (neither). */
export function saveMethod() {
  if (typeof globalThis.showSaveFilePicker === "function") return "picker";
  if ("serviceWorker" in navigator && typeof ReadableStream === "function") return "download";
  return null;
}

let nextId = 1;

/** The service worker that controls this page, waiting briefly for it on a first visit. */
async function controller() {
  if (!("serviceWorker" in navigator)) return null;
  if (navigator.serviceWorker.controller) return navigator.serviceWorker.controller;
  await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(r, 3000))]);
  if (navigator.serviceWorker.controller) return navigator.serviceWorker.controller;
  await new Promise((r) => {
    navigator.serviceWorker.addEventListener("controllerchange", r, { once: true });
    setTimeout(r, 3000);
  });
  return navigator.serviceWorker.controller;
}

/**
 * Rewrites the unified image `file` with `edits` (see `RewriteEdits` in pkg/lxdimg.d.ts) and saves
 * the result as `suggestedName`. Call it from a click handler (the save picker needs one).
 * `options`: {method: "picker" | "download" (default: saveMethod()), format, level (see
 * `RewriteOptions`), onProgress(done, total), makeWorker(): a Worker running worker.js
 * (default: a new one)}.
 * Resolves to {summary (with the new fingerprint), ms, bytes, memory, peakMemory, method};
 * rejects with an Error whose message says what is wrong (nothing is left saved then, except
 * what a cancelled download leaves in the browser's download list).
 */
export async function saveRewritten(file, edits, suggestedName, options = {}) {
  const method = options.method ?? saveMethod();
  if (!method) {
    throw new Error("This browser can save the repaired image neither with a file picker nor as a streamed download; use `lxdimg repair` instead.");
  }
  let sink, transfer = [], handle = null;
  if (method === "picker") {
    // First, while the click still counts as a user gesture.
    handle = await globalThis.showSaveFilePicker({ suggestedName });
    sink = { kind: "picker", handle };
  } else {
    const sw = await controller();
    if (!sw) throw new Error("The page's service worker is not running, so the repaired image cannot be streamed to a download; reload the page and try again, or use `lxdimg repair`.");
    const channel = new MessageChannel();
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    await new Promise((resolve, reject) => {
      const reply = new MessageChannel();
      reply.port1.onmessage = (e) => (e.data && e.data.ok ? resolve() : reject(new Error("the service worker refused the download")));
      sw.postMessage({ type: "lxdimg-download", id, name: suggestedName, port: channel.port1, reply: reply.port2 }, [channel.port1, reply.port2]);
      setTimeout(() => reject(new Error("the service worker did not answer")), 5000);
    });
    // A plain link, not <a download>: Chromium fetches a download-attribute link itself, past the
    // service worker (measured: the download is cancelled); a navigation is answered by sw.js,
    // whose Content-Disposition makes it a download and leaves the page where it is.
    const a = document.createElement("a");
    a.href = new URL(DOWNLOAD_PREFIX + id, document.baseURI).href;
    a.style.display = "none";
    document.body.append(a);
    a.click();
    a.remove();
    sink = { kind: "download", port: channel.port2 };
    transfer = [channel.port2];
  }
  const { makeWorker, onProgress, format, level } = options;
  const worker = makeWorker ? makeWorker() : await defaultWorker();
  const id = nextId++;
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (e) => {
        const m = e.data;
        if (m.id !== id) return;
        if (m.type === "rewrite-progress") onProgress?.(m.done, m.total);
        else if (m.type === "rewrite-done") resolve({ ...m, method });
        else if (m.type === "error") reject(new Error(m.message));
      };
      worker.onerror = (e) => reject(new Error(e.message || "the worker failed"));
      worker.postMessage({ type: "rewrite", id, file, edits, options: { format, level }, sink }, transfer);
    });
  } finally {
    if (!makeWorker) worker.terminate();
  }
}

async function defaultWorker() {
  const { scriptURL } = await import("./trusted.js");
  return new Worker(scriptURL("./worker.js"), { type: "module" });
}

// ---------------------------------------------------------------------------------------------
// Worker side

/** Writes to a FileSystemWritableFileStream. */
class PickerSink {
  constructor(handle) {
    this.handle = handle;
  }
  async open() {
    this.w = await this.handle.createWritable({ keepExistingData: false });
  }
  write(bytes) {
    return this.w.write(bytes);
  }
  close() {
    return this.w.close();
  }
  async fail() {
    try {
      await this.w?.abort();
    } catch {}
  }
}

/** Feeds sw.js's download stream, one chunk per pull. */
class PortSink {
  constructor(port) {
    this.port = port;
    this.credits = 0;
    this.wake = null;
    this.cancelled = false;
    port.onmessage = (e) => {
      if (e.data?.pull) this.credits++;
      if (e.data?.cancel) this.cancelled = true;
      const w = this.wake;
      this.wake = null;
      w?.();
    };
  }
  async open() {}
  async credit() {
    while (this.credits === 0 && !this.cancelled) await new Promise((r) => (this.wake = r));
    if (this.cancelled) throw new Error("the download was cancelled");
    this.credits--;
  }
  async write(bytes) {
    await this.credit();
    const copy = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    this.port.postMessage({ chunk: copy.buffer }, [copy.buffer]);
  }
  async close() {
    await this.credit();
    this.port.postMessage({ done: true });
  }
  async fail(message) {
    this.port.postMessage({ error: message });
  }
}

/** Gathers small outputs into WRITE_PIECE writes. */
class Gather {
  constructor(sink) {
    this.sink = sink;
    this.parts = [];
    this.size = 0;
  }
  async add(bytes) {
    if (!bytes.length) return;
    this.parts.push(bytes);
    this.size += bytes.length;
    if (this.size >= WRITE_PIECE) await this.flush();
  }
  async flush() {
    if (!this.size) return;
    let out;
    if (this.parts.length === 1) out = this.parts[0];
    else {
      out = new Uint8Array(this.size);
      let at = 0;
      for (const p of this.parts) {
        out.set(p, at);
        at += p.length;
      }
    }
    this.parts = [];
    this.size = 0;
    await this.sink.write(out);
  }
}

/**
 * Runs one rewrite in the worker: `msg` as posted by saveRewritten, `post` = postMessage, `wasm`
 * = {Rewrite, memoryBytes} from pkg/ (initialised).
 */
export async function runRewrite(msg, post, wasm) {
  const { id, file, edits, options, sink: s } = msg;
  const sink = s.kind === "picker" ? new PickerSink(s.handle) : new PortSink(s.port);
  const t0 = performance.now();
  let rw = null;
  try {
    await sink.open();
    rw = new wasm.Rewrite(edits, options);
    const out = new Gather(sink);
    const total = file.size;
    let last = t0;
    let peak = wasm.memoryBytes();
    for (let at = 0; at < total; at += READ_PIECE) {
      const piece = new Uint8Array(await file.slice(at, Math.min(at + READ_PIECE, total)).arrayBuffer());
      await out.add(rw.push(piece));
      const t = performance.now();
      if (t - last >= PROGRESS_EVERY_MS) {
        last = t;
        peak = Math.max(peak, wasm.memoryBytes());
        post({ type: "rewrite-progress", id, done: Math.min(at + READ_PIECE, total), total });
      }
    }
    const end = rw.finish();
    rw = null;
    await out.add(end.output);
    await out.flush();
    await sink.close();
    const memory = wasm.memoryBytes();
    post({
      type: "rewrite-done", id, summary: end.summary, ms: performance.now() - t0, bytes: total,
      memory, peakMemory: Math.max(peak, memory),
    });
  } catch (e) {
    const message = e && e.message ? e.message : String(e);
    await sink.fail(message);
    post({ type: "error", id, message: `The image could not be rewritten: ${message}` });
  } finally {
    rw?.free();
  }
}

export { DOWNLOAD_PREFIX }; // sw.js (a classic script) spells the same prefix

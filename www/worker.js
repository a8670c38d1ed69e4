// The Web Worker that runs the lxdimg core (pkg/, WebAssembly) so the page never freezes.
//
// Messages, page → worker:
//   {type: "inspect", id, sources: [{kind: "file", file: File} | {kind: "url", url}], now}
//     One source: a unified image. Two: a split image, in any order (told apart by content).
// Worker → page:
//   {type: "ready", version, targets, reference, firstStart, controls}    the wasm is initialised;
//                                                   firstStart: finding codes after which the
//                                                   instance is created but fails at first start;
//                                                   targets: the verdict targets in the Report's
//                                                   order, [{key, label}]; reference: the key of the
//                                                   early verdict's target; controls: the control
//                                                   characters as a RegExp character class
//   {type: "start", id, names, command, total, split}  total: bytes (null if a URL gives no
//                                                   length); command: `lxc image import` with the
//                                                   names quoted for a shell by the core
//   {type: "progress", id, done, total}             at most every 100 ms
//   {type: "verdict", id, verdict}                  the reference target's verdict, once known
//   {type: "done", id, report, ms, bytes, memory}   the Report (as the CLI's --json), elapsed ms,
//                                                   bytes read, wasm memory size afterwards
//   {type: "error", id, message, key?, params?}     a message to show as is (English), or, with
//                                                   `key`, the page's catalogue key and its params
//                                                   (www/i18n/*.js) so the page shows it in its
//                                                   language; params from the core stay as they are
// Cancel: the page terminates this worker (the only sure way to stop busy wasm) and starts another.

import { makeImage, repairImage } from "./make-worker.js";
import init, { Inspector, Rewrite, rootfsIndex, version, memoryBytes, targets, referenceTarget, firstStartCodes, controlCharacters, shellQuote } from "./pkg/lxdimg.js";
// {type: "rewrite", …}: a unified image rewritten and saved as a stream (messages in rewrite.js).
import { runRewrite } from "./rewrite.js";

const ready = init().then(
  () => postMessage({
    type: "ready", version: version(), targets: targets(), reference: referenceTarget(), firstStart: firstStartCodes(),
    controls: controlCharacters(),
  }),
  (e) => postMessage({ type: "error", id: null, message: `Could not load the WebAssembly module: ${e}`, key: "page.error.wasm", params: { error: String(e) } }),
);

const PROGRESS_EVERY_MS = 100;
const HEAD = 512;

/** An error for the user: English `message`, and the catalogue `key` and `params` for the page. */
class UserError extends Error {
  constructor(message, key, params = {}) {
    super(message);
    this.key = key;
    this.params = params;
  }
}

/** Opens a source: name, size (or null), and a reader whose first bytes are already buffered. */
async function open(src) {
  let name, size, reader;
  if (src.kind === "file") {
    name = src.file.name || "image";
    size = src.file.size;
    reader = src.file.stream().getReader();
  } else {
    let resp;
    try {
      resp = await fetch(src.url, { mode: "cors", credentials: "omit", cache: "no-store" });
    } catch (e) {
      throw new UserError(
        `Could not fetch ${src.url}: the request failed before any answer. Either the server is ` +
          `unreachable, or it does not allow cross-origin requests (CORS: no Access-Control-Allow-Origin ` +
          `header). Download the file and drop it here instead.`,
        "page.error.fetchFailed",
        { url: src.url },
      );
    }
    if (!resp.ok) {
      const status = `${resp.status} ${resp.statusText}`.trim();
      throw new UserError(`Could not fetch ${src.url}: the server answered HTTP ${status}`, "page.error.fetchStatus", { url: src.url, status });
    }
    if (!resp.body) throw new UserError(`Could not fetch ${src.url}: the answer has no body`, "page.error.fetchNoBody", { url: src.url });
    const len = resp.headers.get("content-length");
    const encoded = resp.headers.get("content-encoding");
    size = len !== null && !encoded ? Number(len) : null;
    const path = new URL(resp.url || src.url).pathname;
    name = decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || "image";
    reader = resp.body.getReader();
  }
  // Buffer the first bytes: they tell a metadata tarball from a rootfs.
  const pending = [];
  let have = 0;
  let ended = false;
  while (have < HEAD) {
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    if (value.length) {
      pending.push(value);
      have += value.length;
    }
  }
  const head = new Uint8Array(Math.min(have, HEAD));
  let at = 0;
  for (const c of pending) {
    if (at >= head.length) break;
    const n = Math.min(c.length, head.length - at);
    head.set(c.subarray(0, n), at);
    at += n;
  }
  return { name, size, reader, pending, ended, head };
}

async function* chunks(s) {
  yield* s.pending;
  s.pending = [];
  if (s.ended) return;
  for (;;) {
    const { done, value } = await s.reader.read();
    if (done) return;
    yield value;
  }
}

async function inspect({ id, sources, now }) {
  await ready;
  if (sources.length < 1 || sources.length > 2) {
    throw new UserError("Give one file (a unified image) or two (the metadata and rootfs files of a split image).", "page.error.sources");
  }
  let files = await Promise.all(sources.map(open));
  if (files.length === 2) {
    const [a, b] = files;
    const r = rootfsIndex(a.head, a.size ?? 0, b.head, b.size ?? 0);
    if (r === 0) files = [b, a];
  }
  const names = files.map((f) => f.name);
  const total = files.every((f) => f.size !== null) ? files.reduce((n, f) => n + f.size, 0) : null;
  const command = ["lxc", "image", "import", ...names.map(shellQuote)].join(" ");
  postMessage({ type: "start", id, names, command, total, split: files.length === 2 });

  const insp = new Inspector({ now, names: [names[0], names[1] ?? null] });
  const t0 = performance.now();
  let done = 0;
  let last = t0;
  let verdictSent = false;
  try {
    for (const [i, f] of files.entries()) {
      if (i === 1) insp.startRootfs();
      for await (const chunk of chunks(f)) {
        insp.push(chunk);
        done += chunk.length;
        // Before startRootfs the core reads the first file as a unified image: the verdict of a
        // split image is known only while its rootfs is pushed.
        if (!verdictSent && i === files.length - 1 && insp.verdictKnown) {
          verdictSent = true;
          postMessage({ type: "verdict", id, verdict: insp.verdict });
        }
        const t = performance.now();
        if (t - last >= PROGRESS_EVERY_MS) {
          last = t;
          postMessage({ type: "progress", id, done, total });
        }
      }
    }
    const report = insp.finish();
    const ms = performance.now() - t0;
    postMessage({ type: "done", id, report, ms, bytes: done, memory: memoryBytes() });
  } finally {
    insp.free();
  }
}

onmessage = (e) => {
  const msg = e.data;
  if (msg.type === "make" || msg.type === "repair") {
    // "Make an image" and "Fix it" (make-worker.js).
    ready
      .then(() => (msg.type === "make" ? makeImage : repairImage)(msg, postMessage))
      .catch((err) => {
        const detail = err && err.message ? err.message : String(err);
        postMessage({ type: "error", id: msg.id, message: detail, key: `${msg.type}.error`, params: { error: detail } });
      });
    return;
  }
  if (msg.type === "inspect") {
    inspect(msg).catch((err) => {
      const detail = err && err.message ? err.message : String(err);
      const [message, key, params] = err instanceof UserError
        ? [err.message, err.key, err.params]
        : [`Inspection failed: ${detail}`, "page.error.inspection", { error: detail }];
      postMessage({ type: "error", id: msg.id, message, key, params });
    });
  } else if (msg.type === "rewrite") {
    ready.then(() => runRewrite(msg, postMessage, { Rewrite, memoryBytes }));
  }
};

// Service worker: keeps the page's own files (and the wasm) so the page works offline once loaded.
// Network first, so a new build shows at once; the cache answers when the network cannot.
// Images the page fetches by URL are never cached.
const CACHE = "lxdimg-v1";
const ASSETS = [
  "./",
  "index.html",
  "style.css",
  "favicon.svg",
  "main.js",
  "dom.js",
  "publish.js",
  "worker.js",
  "i18n.js",
  "lxd-errors.js",
  "render.js",
  "i18n/catalogue.js",
  "i18n/en.js",
  "i18n/zh-CN.js",
  "pkg/lxdimg.js",
  "pkg/lxdimg_bg.wasm",
  "make.js",
  "make-worker.js",
  "trusted.js",
  "rewrite.js",
];
const URLS = new Set(ASSETS.map((a) => new URL(a, self.registration.scope).href));

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Streamed downloads of a rewritten image (www/rewrite.js): the page registers a stream by id with
// one end of a MessageChannel whose other end the Web Worker writes; the <a download> that follows
// is answered with it. One chunk is asked of the worker per pull, so memory holds a few chunks.
const DOWNLOAD_PREFIX = "__lxdimg/download/"; // as in rewrite.js
const downloads = new Map();

self.addEventListener("message", (e) => {
  const m = e.data;
  if (!m || m.type !== "lxdimg-download" || !m.port) return;
  const port = m.port;
  // Answers to pulls, and an error the worker may send at any time.
  const queue = [];
  let next = null;
  port.onmessage = (ev) => {
    const r = next;
    next = null;
    if (r) r(ev.data);
    else queue.push(ev.data);
  };
  const body = new ReadableStream(
    {
      pull(c) {
        return new Promise((resolve) => {
          const take = (d) => {
            if (d && d.chunk) c.enqueue(new Uint8Array(d.chunk));
            else if (d && d.done) c.close();
            else c.error(new Error((d && d.error) || "the rewrite stopped"));
            resolve();
          };
          if (queue.length) return take(queue.shift());
          next = take;
          port.postMessage({ pull: true });
        });
      },
      cancel() {
        port.postMessage({ cancel: true });
      },
    },
    { highWaterMark: 2 },
  );
  const name = String(m.name || "image").replace(/[\\/\x00-\x1f\x7f"]/g, "_");
  downloads.set(m.id, { body, name });
  // Unclaimed after a minute: dropped (the page's <a download> follows at once).
  setTimeout(() => downloads.delete(m.id), 60000);
  m.reply?.postMessage({ ok: true });
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  const prefix = new URL(DOWNLOAD_PREFIX, self.registration.scope).href;
  if (url.href.startsWith(prefix)) {
    const d = downloads.get(url.href.slice(prefix.length));
    if (!d) return;
    downloads.delete(url.href.slice(prefix.length));
    e.respondWith(
      new Response(d.body, {
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(d.name)}`,
          "X-Content-Type-Options": "nosniff",
        },
      }),
    );
    return;
  }
  url.search = "";
  if (e.request.method !== "GET" || !URLS.has(url.href)) return;
  e.respondWith(
    fetch(e.request)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone();
          caches.open(CACHE).then((c) => c.put(url.href, copy));
        }
        return resp;
      })
      .catch(() => caches.match(url.href).then((r) => r || Response.error())),
  );
});

// Service worker: keeps the page's own files (and the wasm) so the page works offline once loaded.
// Network first, so a new build shows at once; the cache answers when the network cannot.
// Images the page fetches by URL are never cached.
const CACHE = "lxdimg-v1";
const ASSETS = ["./", "index.html", "style.css", "favicon.svg", "main.js", "worker.js", "make.js", "make-worker.js", "i18n.js", "lxd-errors.js", "i18n/catalogue.js", "i18n/en.js", "i18n/zh-CN.js", "pkg/lxdimg.js", "pkg/lxdimg_bg.wasm"];
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

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
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

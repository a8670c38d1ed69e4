// The page's Content-Security-Policy and other security headers, defined once. Both servers send
// them with every answer: www/serve.mjs (`make run-www`, the e2e test) imports this module, and
// the edge worker (`make run`, deployments) imports it for the pages it writes itself and serves
// the static files with www/_headers, generated from this module (the worker's unit test fails
// when that file is stale; `UPDATE_HEADERS=1 make test-worker-unit` rewrites it).
//
// What the page needs, and nothing more:
//   script-src 'self' 'wasm-unsafe-eval'   its own modules (main.js, worker.js, sw.js, pkg/) and
//                                          WebAssembly compilation; no inline script, no eval
//   style-src 'self', img-src 'self'       style.css and favicon.svg; no inline style
//   connect-src 'self' http: https:        pkg/*.wasm, and image URLs the user types (any server
//                                          that allows CORS)
//   worker-src 'self'                      worker.js (Web Worker) and sw.js (service worker)
//   require-trusted-types-for 'script'     no string reaches an HTML/script sink; the only script
//   trusted-types lxdimg                   URLs are the page's own workers (main.js's policy)
// Everything else (objects, frames, fonts, media, manifests, <base>, form posts, being framed) is
// refused.

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self' http: https:",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types lxdimg",
].join("; ");

/** The headers every answer of the page's servers carries. */
export const SECURITY_HEADERS = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
};

/** www/_headers: the same headers for Cloudflare's static assets (every path). */
export function headersFile() {
  const lines = Object.entries(SECURITY_HEADERS).map(([k, v]) => `  ${k}: ${v}`);
  return `# Generated from www/csp.js (UPDATE_HEADERS=1 make test-worker-unit); do not edit.\n/*\n${lines.join("\n")}\n`;
}

#!/usr/bin/env node
// A small static file server for the page (no dependencies): `node www/serve.mjs [--port 8080]
// [--host 127.0.0.1] [--root DIR] [--mount /prefix=DIR]... [--cors] [--quiet]`.
// By default it serves www/ at / and pkg/ (wasm-pack's output) at /pkg/. Every answer carries the
// page's security headers (www/csp.js: Content-Security-Policy, nosniff, …), as the worker sends them.
import { createServer } from "node:http";
import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SECURITY_HEADERS } from "./csp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".wasm": "application/wasm", ".json": "application/json", ".ts": "text/plain",
  ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain; charset=utf-8",
};

export function serve({ port = 8080, host = "127.0.0.1", root = here, mounts = { "/pkg/": path.join(here, "..", "pkg") }, cors = false, quiet = true } = {}) {
  const table = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    let rel = decodeURIComponent(url.pathname);
    let base = root;
    for (const [prefix, dir] of table) {
      if (rel.startsWith(prefix)) {
        base = dir;
        rel = "/" + rel.slice(prefix.length);
        break;
      }
    }
    let file = path.join(base, path.normalize(rel).replace(/^(\.\.[/\\])+/, ""));
    if (!file.startsWith(path.resolve(base))) file = path.join(base, "404");
    const headers = { ...SECURITY_HEADERS, "Cache-Control": "no-cache" };
    if (cors) headers["Access-Control-Allow-Origin"] = "*";
    try {
      let st = await fs.stat(file);
      if (st.isDirectory()) {
        file = path.join(file, "index.html");
        st = await fs.stat(file);
      }
      headers["Content-Type"] = TYPES[path.extname(file)] ?? "application/octet-stream";
      headers["Content-Length"] = st.size;
      res.writeHead(200, headers);
      if (req.method === "HEAD") return res.end();
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" });
      res.end("not found\n");
    }
    if (!quiet) console.log(req.method, req.url);
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const opts = { mounts: { "/pkg/": path.join(here, "..", "pkg") }, quiet: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--port") opts.port = Number(args[++i]);
    else if (a === "--host") opts.host = args[++i];
    else if (a === "--root") opts.root = path.resolve(args[++i]);
    else if (a === "--mount") {
      const [p, d] = args[++i].split("=");
      opts.mounts[p.endsWith("/") ? p : p + "/"] = path.resolve(d);
    } else if (a === "--cors") opts.cors = true;
    else if (a === "--verbose") opts.quiet = false;
    else throw new Error(`unknown argument ${a}`);
  }
  const server = await serve(opts);
  const { address, port } = server.address();
  console.log(`lxdimg page: http://${address}:${port}/  (Ctrl-C to stop)`);
}

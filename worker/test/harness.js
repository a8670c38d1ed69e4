/**
 * Test harness: the worker as `wrangler` bundles it (`.build/`, made by `make -f worker/worker.mk
 * worker-build` or on demand here), run in workerd through Miniflare with a local R2 bucket and
 * D1 database (migrations applied), reachable both by `dispatchFetch` and over real HTTP.
 */
import { Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(WORKER, "..");
export const IMAGES = path.join(WORKER, "test/out/images");
export const TOKEN = "test-token-0123456789";
export const BUILD = path.join(WORKER, ".build");

function newest(dir) {
  let t = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, f.name);
    t = Math.max(t, f.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Bundles src/ (and pkg/) with wrangler unless .build is newer than both. */
export function build() {
  const out = path.join(BUILD, "index.js");
  const pkgWasm = path.join(ROOT, "pkg/lxdimg_bg.wasm");
  if (!existsSync(pkgWasm)) throw new Error("pkg/ is missing: run `make worker-pkg` (wasm-pack build --target web)");
  const srcTime = Math.max(newest(path.join(WORKER, "src")), statSync(pkgWasm).mtimeMs, statSync(path.join(ROOT, "pkg/lxdimg.js")).mtimeMs);
  if (existsSync(out) && statSync(out).mtimeMs > srcTime) return;
  execFileSync(path.join(WORKER, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", BUILD], {
    cwd: WORKER,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** The images the tests upload (built by make-images.sh). */
export function images() {
  if (!existsSync(path.join(IMAGES, "truncated.tar.gz"))) {
    execFileSync("bash", [path.join(WORKER, "test/make-images.sh"), IMAGES], { stdio: ["ignore", "ignore", "inherit"] });
  }
  return (name) => readFileSync(path.join(IMAGES, name));
}

export function sha256(...bufs) {
  const h = createHash("sha256");
  for (const b of bufs) h.update(b);
  return h.digest("hex");
}

/** The native CLI's report for a file (null if the CLI is not built). */
export function cliReport(...files) {
  const cli = path.join(ROOT, "target/release/lxdimg");
  if (!existsSync(cli)) return null;
  try {
    return JSON.parse(execFileSync(cli, ["inspect", "--json", ...files.map((f) => path.join(IMAGES, f))], { encoding: "utf8" }));
  } catch (e) {
    if (e.status === 1) return JSON.parse(e.stdout);
    throw e;
  }
}

/** The SQL statements of the migrations, in order. */
export function migrations() {
  const dir = path.join(WORKER, "migrations");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((f) =>
      readFileSync(path.join(dir, f), "utf8")
        .replace(/--[^\n]*/g, "")
        .split(/;\s*(?:\n|$)/)
        .map((s) => s.trim())
        .filter(Boolean),
    );
}

/** Starts the worker; returns `{mf, url, fetch, bucket, db, close}`. */
export async function start(bindings = {}, { direct = false } = {}) {
  build();
  const wasm = readdirSync(BUILD).filter((f) => f.endsWith(".wasm"));
  const mf = new Miniflare({
    modules: [
      { type: "ESModule", path: path.join(BUILD, "index.js") },
      ...wasm.map((w) => ({ type: "CompiledWasm", path: path.join(BUILD, w) })),
    ],
    modulesRoot: BUILD,
    compatibilityDate: "2026-04-01",
    r2Buckets: ["IMAGES"],
    d1Databases: ["DB"],
    bindings: { UPLOAD_TOKEN: TOKEN, MAX_UPLOAD_BYTES: String(64 << 20), PUBLIC_URL: "", ...bindings },
    host: "127.0.0.1",
    port: 0,
    // `direct`: also expose the worker on its own socket, without Miniflare's entry worker (which
    // re-pipes every request body through JS in 4 KiB chunks): what the benchmark measures.
    ...(direct ? { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] } : {}),
  });
  const url = await mf.ready;
  const directUrl = direct ? (await mf.unsafeGetDirectURL()).href.replace(/\/$/, "") : null;
  const db = await mf.getD1Database("DB");
  await db.batch(migrations().map((s) => db.prepare(s)));
  const bucket = await mf.getR2Bucket("IMAGES");
  const base = url.href.replace(/\/$/, "");
  return {
    mf,
    url: base,
    directUrl,
    db,
    bucket,
    fetch: (p, init) => mf.dispatchFetch(base + p, init),
    async objects() {
      const keys = [];
      let cursor;
      do {
        const page = await bucket.list({ cursor });
        keys.push(...page.objects.map((o) => o.key));
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return keys.sort();
    },
    async rows(table) {
      return (await db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).first()).n;
    },
    close: () => mf.dispose(),
  };
}

/** A multipart/form-data body in the shape `lxc image import META ROOTFS` sends. */
export function multipart(parts, boundary = "lxdimgtestboundary0123") {
  const chunks = [];
  for (const p of parts) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      p.data,
      Buffer.from("\r\n"),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export const auth = { authorization: `Bearer ${TOKEN}` };

/**
 * Test harness: the worker as `wrangler` bundles it (`.build/`, made by `make -f worker/worker.mk
 * worker-build` or on demand here), run in workerd through Miniflare with a local R2 bucket and
 * D1 database (migrations applied), reachable both by `dispatchFetch` and over real HTTP.
 */
import { Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
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
  // The bundle also holds what src/ imports from www/: the page's catalogues and its CSP.
  const srcTime = Math.max(newest(path.join(WORKER, "src")), newest(path.join(ROOT, "www/i18n")), statSync(path.join(ROOT, "www/csp.js")).mtimeMs,
    statSync(pkgWasm).mtimeMs, statSync(path.join(ROOT, "pkg/lxdimg.js")).mtimeMs);
  if (existsSync(out) && statSync(out).mtimeMs > srcTime) return;
  execFileSync(path.join(WORKER, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", BUILD], {
    cwd: WORKER,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** The images the tests upload (built by make-images.sh, which makes only what is missing). */
let imagesMade = false;
export function images() {
  if (!imagesMade) {
    execFileSync("bash", [path.join(WORKER, "test/make-images.sh"), IMAGES], { stdio: ["ignore", "ignore", "inherit"] });
    imagesMade = true;
  }
  return (name) => readFileSync(path.join(IMAGES, name));
}

/** The workerd processes below this Node process (Miniflare's runtime), by PID. */
export function workerdPids() {
  const parent = new Map();
  const comm = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      comm.set(Number(d), stat.slice(stat.indexOf("(") + 1, close));
      parent.set(Number(d), Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  const below = (pid) => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  return [...comm.keys()].filter((pid) => comm.get(pid) === "workerd" && below(pid));
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) of processes, in milliseconds (clock-tick resolution, usually 10 ms). */
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      // gone
    }
  }
  return (ticks * 1000) / CLK_TCK;
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
    durableObjects: { UPLOAD_SESSIONS: "UploadSession" },
    d1Databases: ["DB"],
    bindings: { UPLOAD_TOKEN: TOKEN, MAX_UPLOAD_BYTES: String(64 << 20), PUBLIC_URL: "", ...bindings },
    host: "127.0.0.1",
    port: 0,
    // `direct`: also expose the worker on its own socket, without Miniflare's entry worker (which
    // re-pipes every request body through JS in 4 KiB chunks): what the benchmark measures.
    ...(direct ? { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] } : {}),
  });
  const pidsBefore = new Set(workerdPids());
  const url = await mf.ready;
  const workerd = workerdPids().filter((p) => !pidsBefore.has(p));
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
    workerd,
    /** CPU milliseconds this instance's workerd has used so far. */
    cpuMs: () => cpuMs(workerd),
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
    /** What the bucket lists and the index holds: `{objects, images, files, aliases}`, sorted. */
    async state() {
      const q = async (sql) => (await db.prepare(sql).all()).results;
      return {
        objects: await this.objects(),
        images: await q("SELECT fingerprint, upload_id, format, type, architecture, size FROM images ORDER BY fingerprint"),
        files: await q("SELECT fingerprint, role, name, size, sha256, r2_key FROM files ORDER BY fingerprint, role"),
        aliases: await q("SELECT name, architecture, fingerprint FROM aliases ORDER BY name, architecture"),
      };
    },
    /**
     * Lists the bucket, queries the index and checks that they agree: every object is a file row
     * of the upload that owns its image (no orphan, no row without its object), keys are
     * `uploads/<uuid>/<role>` only, each object has the row's size and SHA-256 (a unified file's
     * is the fingerprint), each image has exactly its files, every alias names a stored image of
     * its architecture. Returns the state.
     */
    async consistent() {
      const st = await this.state();
      const key = /^uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/(unified|metadata|rootfs)$/;
      for (const k of st.objects) assert.match(k, key, `R2 key ${JSON.stringify(k)}`);
      assert.deepEqual(st.objects, st.files.map((f) => f.r2_key).sort(), "R2 objects = files rows");
      const images = new Map(st.images.map((i) => [i.fingerprint, i]));
      for (const f of st.files) {
        const img = images.get(f.fingerprint);
        assert.ok(img, `file row ${f.r2_key} without its image`);
        const [, id, role] = key.exec(f.r2_key);
        assert.equal(id, img.upload_id, `${f.r2_key} belongs to the winning upload`);
        assert.equal(role, f.role);
        const obj = await bucket.get(f.r2_key);
        const bytes = Buffer.from(await obj.arrayBuffer());
        assert.equal(bytes.length, f.size, `${f.r2_key} size`);
        assert.equal(sha256(bytes), f.sha256, `${f.r2_key} sha256`);
        if (role === "unified") assert.equal(f.sha256, f.fingerprint);
      }
      for (const img of st.images) {
        const roles = st.files.filter((f) => f.fingerprint === img.fingerprint).map((f) => f.role).sort();
        assert.deepEqual(roles, img.format === "unified" ? ["unified"] : ["metadata", "rootfs"], `files of ${img.fingerprint}`);
      }
      for (const a of st.aliases) {
        const img = images.get(a.fingerprint);
        assert.ok(img, `alias ${a.name} names a stored image`);
        assert.equal(a.architecture, img.architecture);
      }
      return st;
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

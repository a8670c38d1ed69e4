// The page rewrites a unified image and saves it as a stream (www/rewrite.js → worker.js → the
// core's Rewrite), in headless Chromium (playwright-core, Debian's /usr/bin/chromium):
//   - both sinks: the service-worker streamed download, and the File System Access picker (its
//     dialog answered by a stub that returns a file of the origin-private file system, which
//     Playwright can read back); the saved file's SHA-256 equals the core's new fingerprint and
//     the CLI's `lxdimg rewrite` output for the same edits, in gzip, xz and zstd;
//   - a truncated image: saveRewritten rejects with the core's message, the download fails;
//   - a ~200 MB image: throughput and peak wasm memory (bounded) printed, the output checked.
// `make test-rewrite-page` (in test-www) runs it after building pkg/ and the CLI.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const cli = process.env.LXDIMG ?? path.join(repo, "target/release/lxdimg");
const shots = path.join(repo, "tests/out/screenshots");
mkdirSync(shots, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-rewrite-page-"));
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26, ...opts });
const MTIME = 1704067200;
const TAR = ["--owner=0", "--group=0", "--numeric-owner", "--sort=name", `--mtime=@${MTIME}`];

// ---- fixtures ----------------------------------------------------------------------------------
const GOOD = `architecture: amd64
creation_date: 1704067200
properties:
  description: lxdimg rewrite test
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
`;
const EXTRA = "{{ instance.name }} (rewritten)\n";
writeFileSync(path.join(tmp, "good.yaml"), GOOD);
writeFileSync(path.join(tmp, "extra.tpl"), EXTRA);

/** A unified image refused by LXD (unknown architecture) with a broken duplicate metadata.yaml. */
function brokenTar(name, bulkBytes) {
  const d = path.join(tmp, `tree-${name}`);
  mkdirSync(path.join(d, "templates"), { recursive: true });
  mkdirSync(path.join(d, "rootfs/etc"), { recursive: true });
  mkdirSync(path.join(d, "dup"), { recursive: true });
  writeFileSync(path.join(d, "metadata.yaml"), GOOD.replace("amd64", "amd65"));
  writeFileSync(path.join(d, "dup/metadata.yaml"), "architecture: [broken\n");
  writeFileSync(path.join(d, "templates/hostname.tpl"), "{{ instance.name }}\n");
  writeFileSync(path.join(d, "rootfs/etc/os-release"), "ID=debian\nVERSION_ID=12\n");
  // Bulk: pseudo-random bytes from a fixed key (deterministic, incompressible).
  sh("sh", ["-c", `openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 0 -in /dev/zero 2>/dev/null | head -c ${bulkBytes} > "$0"`,
    path.join(d, "rootfs/bulk.bin")]);
  const t = path.join(tmp, `${name}.tar`);
  sh("tar", [...TAR, "-C", d, "-cf", t, "metadata.yaml", "templates", "rootfs"]);
  sh("tar", ["--owner=0", "--group=0", "--numeric-owner", `--mtime=@${MTIME}`, "-C", path.join(d, "dup"), "-rf", t, "metadata.yaml"]);
  rmSync(d, { recursive: true });
  return t;
}
const small = brokenTar("small", 3 << 20);
const images = {
  gz: path.join(tmp, "broken.tar.gz"),
  xz: path.join(tmp, "broken.tar.xz"),
  zst: path.join(tmp, "broken.tar.zst"),
};
sh("sh", ["-c", `gzip -6 -n -c "$0" > "$1" && xz -T1 -6 -c "$0" > "$2" && zstd -q -3 -c "$0" > "$3"`, small, images.gz, images.xz, images.zst]);
const truncated = path.join(tmp, "truncated.tar.gz");
writeFileSync(truncated, readFileSync(images.gz).subarray(0, 200_000));
const big = path.join(tmp, "big.tar.gz");
sh("sh", ["-c", `gzip -1 -n -c "$0" > "$1"`, brokenTar("big", Number(process.env.REWRITE_BIG_MB ?? 200) * 1e6), big]);

const EDITS = {
  replace: [{ name: "metadata.yaml", occurrence: 0, content: GOOD }],
  drop: [{ name: "metadata.yaml", occurrence: 1 }],
  add: [{ name: "templates/extra.tpl", content: EXTRA, mtime: MTIME }],
};
/** The CLI's rewrite of the same file with the same edits: its fingerprint. */
function cliRewrite(file) {
  const out = path.join(tmp, `cli-${path.basename(file)}`);
  const s = JSON.parse(sh(cli, ["rewrite", file, "--replace", `metadata.yaml#0=${path.join(tmp, "good.yaml")}`,
    "--drop", "metadata.yaml#1", "--add", `templates/extra.tpl=${path.join(tmp, "extra.tpl")}`,
    "--mtime", String(MTIME), "--json", "--out", out]).toString());
  rmSync(out);
  return s.fingerprint;
}
async function sha256File(f) {
  const h = createHash("sha256");
  for await (const c of createReadStream(f)) h.update(c);
  return h.digest("hex");
}

// ---- page --------------------------------------------------------------------------------------
const server = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg") } });
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--enable-precise-memory-info"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
const p = await context.newPage();
const errors = [];
p.on("pageerror", (e) => errors.push(String(e)));
p.on("crash", () => errors.push("the page crashed"));
p.on("close", () => console.log("page closed"));
if (process.env.DEBUG) p.on("console", (m) => console.log("console:", m.type(), m.text()));
await p.goto(base);
await p.waitForFunction(() => document.getElementById("version").textContent !== "");
// The service worker controls the page once installed (sw.js claims its clients).
await p.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 }).catch(async () => {
  await p.reload();
  await p.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 });
});

/** Puts `file` in a page-side File (through a file input, as a person picking it would). */
async function pick(file) {
  await p.evaluate(() => {
    if (!document.getElementById("h-rewrite-input")) {
      const i = document.createElement("input");
      i.type = "file";
      i.id = "h-rewrite-input";
      i.hidden = true;
      document.body.append(i);
    }
  });
  await p.setInputFiles("#h-rewrite-input", file);
}

/** saveRewritten in the page; returns its result or {error}. */
function save(name, method, edits = EDITS) {
  return p.evaluate(async ({ name, method, edits }) => {
    const { saveRewritten } = await import("./rewrite.js");
    const file = document.getElementById("h-rewrite-input").files[0];
    const heap0 = performance.memory?.usedJSHeapSize ?? null;
    let heapPeak = heap0;
    const onProgress = () => (heapPeak = Math.max(heapPeak ?? 0, performance.memory?.usedJSHeapSize ?? 0));
    try {
      const r = await saveRewritten(file, edits, name, { method, onProgress });
      return { ...r, heap0, heapPeak };
    } catch (e) {
      return { error: e.message };
    }
  }, { name, method, edits });
}

async function viaDownload(file) {
  await pick(file);
  const name = `fixed-${path.basename(file)}`;
  const [dl, r] = await Promise.all([p.waitForEvent("download", { timeout: 300_000 }), save(name, "download")]);
  assert.ok(!r.error, r.error);
  const saved = await dl.path();
  assert.ok(saved, `download failed: ${await dl.failure()}`);
  assert.equal(dl.suggestedFilename(), name);
  return { r, saved, sha: await sha256File(saved) };
}

// The picker: a stub dialog answering with a file of the origin-private file system.
await p.evaluate(() => {
  window.showSaveFilePicker = async ({ suggestedName }) =>
    (await navigator.storage.getDirectory()).getFileHandle(suggestedName, { create: true });
});
async function viaPicker(file) {
  await pick(file);
  const name = `picked-${path.basename(file)}`;
  const r = await save(name, "picker");
  assert.ok(!r.error, r.error);
  const sha = await p.evaluate(async (name) => {
    const f = await (await (await navigator.storage.getDirectory()).getFileHandle(name)).getFile();
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
    return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
  }, name);
  return { r, sha };
}

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL ${name}\n${e.stack ?? e}`);
    await p.screenshot({ path: path.join(shots, `FAIL-rewrite-${name.replace(/\W+/g, "-")}.png`) }).catch(() => {});
  }
}

for (const [codec, file] of Object.entries(images)) {
  const want = cliRewrite(file);
  await test(`${codec}: streamed download = core's fingerprint = CLI`, async () => {
    const { r, sha, saved } = await viaDownload(file);
    assert.equal(r.method, "download");
    assert.equal(r.summary.fingerprint, sha);
    assert.equal(sha, want);
    assert.deepEqual([r.summary.replaced, r.summary.dropped, r.summary.added], [1, 1, 1]);
    // The saved image passes the CLI's inspection (LXD 5.0's verdict: accepted).
    sh(cli, ["inspect", saved]);
  });
  await test(`${codec}: File System Access picker = core's fingerprint = CLI`, async () => {
    const { r, sha } = await viaPicker(file);
    assert.equal(r.method, "picker");
    assert.equal(r.summary.fingerprint, sha);
    assert.equal(sha, want);
  });
}

await test("a truncated image: a clear error, the download fails", async () => {
  await pick(truncated);
  const dl = p.waitForEvent("download", { timeout: 60_000 });
  const r = await save("truncated-fixed.tar.gz", "download");
  assert.match(r.error ?? "", /could not be rewritten: .*(ends too early|cannot be decoded)/);
  const failure = await (await dl).failure();
  assert.ok(failure, "the download must not complete");
  const r2 = await save("truncated-picked.tar.gz", "picker");
  assert.match(r2.error ?? "", /ends too early|cannot be decoded/);
});

await test("a ~200 MB image: bounded wasm memory, output checked", async () => {
  const size = statSync(big).size;
  const want = cliRewrite(big);
  const { r, sha } = await viaDownload(big);
  assert.equal(sha, want);
  assert.equal(r.summary.fingerprint, sha);
  const mib = (n) => (n / 1048576).toFixed(1);
  console.log(`     ${(size / 1e6).toFixed(0)} MB .tar.gz rewritten in ${(r.ms / 1000).toFixed(2)} s = ${(size / 1e6 / (r.ms / 1000)).toFixed(1)} MB/s; ` +
    `peak wasm memory ${mib(r.peakMemory)} MiB; page JS heap ${r.heap0 === null ? "n/a" : `${mib(r.heap0)} → peak ${mib(r.heapPeak)} MiB`}`);
  // The image never sits in memory: the wasm memory stays far below the image's size.
  assert.ok(r.peakMemory < 96 * 1048576, `peak wasm memory ${mib(r.peakMemory)} MiB`);
  if (r.heapPeak !== null) assert.ok(r.heapPeak - r.heap0 < 64 * 1048576, "page heap grew by the image");
});

await test("no page errors", async () => assert.deepEqual(errors, []));

await browser.close();
server.close();
rmSync(tmp, { recursive: true, force: true });
const failed = results.filter(([, e]) => e);
console.log(`rewrite page: ${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);

// "Publish to this server" (www/publish.js) in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium), against the edge worker under `wrangler dev` with a small per-request cap
// (MAX_REQUEST_BYTES 6 000 000, PART_BYTES 5 MiB), so a ~26 MB image goes in 6 parts.
//
//   1. the page served by www/serve.mjs (no worker): an accepted image gets no panel;
//   2. served by the worker: drop the image, it is inspected and accepted, the panel appears;
//      Publish without a token says so, with a wrong one shows the 401; with the token (remembered for the tab) the upload starts;
//      after 2 parts the remaining part requests are held (Playwright routes) and the page is
//      reloaded mid-upload;
//   3. the token is still in the field (remembered), the same file dropped again: the panel says
//      the upload was interrupted; Publish resumes it: fewer part requests than parts (exactly the
//      missing ones), then the `lxc image import` and `lxc remote add` commands;
//   4. the stored image downloaded from the worker: its SHA-256 is the file's (the fingerprint);
//   5. the page in Chinese: the panel's strings come from the zh-CN catalogue;
//   6. a tab closed mid-upload (its sessionStorage gone): in a new tab the same file is published
//      again, the worker resumes its open session by fingerprint, only the missing parts go.
// Screenshots: tests/browser/out/publish-*.png.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shots = path.join(here, "out");
mkdirSync(shots, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-publish-"));

// ---- the image: metadata, a template, 26 MB of random bytes (gzip cannot shrink them) ----------
const dir = path.join(tmp, "image");
for (const d of ["templates", "rootfs/etc", "rootfs/usr/lib"]) mkdirSync(path.join(dir, d), { recursive: true });
writeFileSync(path.join(dir, "metadata.yaml"), `architecture: x86_64
creation_date: 1704067200
properties:
  description: lxdimg publish test
  os: lxdimgtest
  release: one
  variant: default
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
`);
writeFileSync(path.join(dir, "templates/hostname.tpl"), "{{ instance.name }}\n");
writeFileSync(path.join(dir, "rootfs/etc/hostname"), "publish\n");
writeFileSync(path.join(dir, "rootfs/usr/lib/big.bin"), randomBytes(26_000_000));
const image = path.join(tmp, "publish-test.tar.gz");
execFileSync("bash", ["-c", `tar --owner=0 --group=0 --numeric-owner --sort=name -C '${dir}' -cf - metadata.yaml templates rootfs | gzip -1 -n > '${image}'`]);
// A second image (other random bytes) for the resume in a new tab.
writeFileSync(path.join(dir, "rootfs/usr/lib/big.bin"), randomBytes(26_000_000));
const image2 = path.join(tmp, "publish-test-2.tar.gz");
execFileSync("bash", ["-c", `tar --owner=0 --group=0 --numeric-owner --sort=name -C '${dir}' -cf - metadata.yaml templates rootfs | gzip -1 -n > '${image2}'`]);
const FP2 = createHash("sha256").update(readFileSync(image2)).digest("hex");
const bytes = readFileSync(image);
const FP = createHash("sha256").update(bytes).digest("hex");
const PART = 5 * 1024 * 1024;
const PARTS = Math.ceil(bytes.length / PART);
console.log(`image: ${bytes.length} bytes, ${PARTS} parts, fingerprint ${FP}`);
assert.ok(PARTS >= 4);

// ---- the worker ----------------------------------------------------------------------------------
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const WORKER = path.join(repo, "worker");
const WRANGLER = path.join(WORKER, "node_modules/.bin/wrangler");
const TOKEN = `publish-page-${randomBytes(6).toString("hex")}`;
const state = path.join(tmp, "wrangler-state");
const wenv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" };
execFileSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { cwd: WORKER, env: wenv, stdio: ["ignore", "ignore", "inherit"] });
const workerPort = await freePort();
const inspectorPort = await freePort();
const wrangler = spawn(WRANGLER, ["dev", "--ip", "127.0.0.1", "--port", String(workerPort), "--inspector-port", String(inspectorPort),
  "--persist-to", state, "--var", `UPLOAD_TOKEN:${TOKEN}`, "--var", "MAX_REQUEST_BYTES:6000000", "--var", `PART_BYTES:${PART}`,
  "--show-interactive-dev-session=false", "--log-level", "warn"],
{ cwd: WORKER, env: wenv, stdio: ["ignore", "pipe", "pipe"], detached: true });
let wranglerLog = "";
wrangler.stdout.on("data", (d) => (wranglerLog += d));
wrangler.stderr.on("data", (d) => (wranglerLog += d));
const base = `http://127.0.0.1:${workerPort}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/api/version`)).ok) break;
  } catch {}
  if (i > 600 || wrangler.exitCode !== null) throw new Error(`wrangler dev did not start:\n${wranglerLog}`);
  await new Promise((r) => setTimeout(r, 100));
}
const www = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg") } });
const wwwBase = `http://127.0.0.1:${www.address().port}/`;

let browser;
function cleanup() {
  try {
    process.kill(-wrangler.pid, "SIGTERM");
  } catch {}
  www.close();
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1100, height: 1000 }, locale: "en-US" });
let p = await context.newPage();
const pageErrors = [];
p.on("pageerror", (e) => pageErrors.push(String(e)));
p.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));

let failures = 0;
async function test(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}\n${e.stack ?? e}`);
    await p.screenshot({ path: path.join(shots, `publish-failure-${failures}.png`), fullPage: true }).catch(() => {});
  }
}

/** Drops the file on the page: a real DataTransfer holding a disk-backed File (name, size and
 * lastModified from the file, as a drop from the desktop gives), dispatched as the browser does. */
async function drop(file) {
  await p.evaluate(() => {
    document.getElementById("drop-src")?.remove();
    const i = document.createElement("input");
    i.type = "file";
    i.id = "drop-src";
    i.hidden = true;
    document.body.append(i);
  });
  await p.setInputFiles("#drop-src", file);
  await p.evaluate(() => {
    const src = document.getElementById("drop-src");
    const dt = new DataTransfer();
    for (const f of src.files) dt.items.add(f);
    src.remove();
    const zone = document.getElementById("drop");
    for (const type of ["dragenter", "dragover", "drop"]) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });
}
const waitState = (s) => p.waitForFunction((s) => document.body.dataset.state === s, s, { timeout: 120_000 });
const text = (sel) => p.locator(sel).innerText();
const PART_URL = /\/api\/uploads\/[0-9a-f-]{36}\/(unified|metadata|rootfs|rootfs\.img)\/\d+$/;

await test("served without the worker (www/serve.mjs): no publish panel", async () => {
  await p.goto(wwwBase);
  await drop(image);
  await waitState("done");
  assert.match(await text("#verdict-banner"), /will accept this image/);
  await p.waitForTimeout(300);
  assert.equal(await p.locator("#publish").isHidden(), true);
});

let firstRun = 0;
await test("served by the worker: drop, inspect, publish, reload mid-upload", async () => {
  await p.goto(`${base}/`);
  await drop(image);
  await waitState("done");
  assert.equal(await text("#fp"), FP);
  await p.locator("#publish-form").waitFor({ state: "visible", timeout: 10_000 });
  assert.match(await text("#publish-title"), /^Publish to this server$/);
  await p.screenshot({ path: path.join(shots, "publish-panel.png"), fullPage: true });

  await p.click("#publish-go");
  assert.match(await text("#publish-status"), /Type the server's upload token first/);
  await p.fill("#publish-token", "not-the-token");
  await p.click("#publish-go");
  await p.waitForFunction(() => globalThis.lxdimgPublish?.status === "error", null, { timeout: 30_000 });
  assert.match(await text("#publish-status"), /HTTP 401/);
  await p.fill("#publish-token", "");

  // Two part requests pass; the rest are held until the reload throws them away.
  let pass = 2;
  const held = [];
  await p.route(PART_URL, (route) => {
    if (route.request().method() === "PUT" && pass-- > 0) return route.continue();
    held.push(route);
  });
  const puts = [];
  const onRequest = (r) => r.method() === "PUT" && PART_URL.test(r.url()) && puts.push(r.url());
  p.on("request", onRequest);
  await p.fill("#publish-token", TOKEN);
  await p.check("#publish-remember");
  await p.fill("#publish-aliases", "page/test, page-test");
  await p.click("#publish-go");
  await p.waitForFunction(() => globalThis.lxdimgPublish?.sent === 2, null, { timeout: 60_000 });
  await p.waitForFunction(() => /2 of \d+ parts stored/.test(document.getElementById("publish-status").textContent), null, { timeout: 10_000 });
  assert.equal(await p.locator("#publish-bar").isVisible(), true);
  const bar = await p.evaluate(() => [document.getElementById("publish-bar").value, document.getElementById("publish-bar").max]);
  assert.equal(bar[0], 2 * PART);
  assert.equal(bar[1], bytes.length);
  await p.screenshot({ path: path.join(shots, "publish-midway.png"), fullPage: true });
  firstRun = puts.length;
  p.off("request", onRequest);
  // Reload while the held requests are still held (unrouting first would let them through).
  await p.reload();
  await Promise.all(held.map((r) => r.abort().catch(() => {})));
  await p.unroute(PART_URL);
  // The server holds exactly the two parts that went through.
  const id = await p.evaluate(() => Object.entries(sessionStorage).find(([k]) => k.startsWith("lxdimg.publish.session:"))?.[1]);
  assert.match(id ?? "", /^[0-9a-f-]{36}$/, "the session id is kept in sessionStorage");
  const status = await (await fetch(`${base}/api/uploads/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch((e) => {
    throw new Error(`${e.message}: ${e.cause?.message ?? e.cause}`);
  })).json();
  assert.equal(status.status, "open");
  assert.equal(status.files[0].stored.length, 2);
});

await test("after the reload: drop the same file again, resume, see the commands", async () => {
  await p.waitForFunction(() => document.body.dataset.state === "idle");
  await drop(image);
  await waitState("done");
  await p.locator("#publish-form").waitFor({ state: "visible", timeout: 10_000 });
  assert.equal(await p.inputValue("#publish-token"), TOKEN, "the token was remembered for the tab");
  await p.waitForFunction(() => /holds 2 of its \d+ parts/.test(document.getElementById("publish-resume")?.textContent ?? ""), null, { timeout: 10_000 });
  await p.screenshot({ path: path.join(shots, "publish-resume.png"), fullPage: true });
  const puts = [];
  p.on("request", (r) => r.method() === "PUT" && PART_URL.test(r.url()) && puts.push(r.url()));
  await p.click("#publish-go");
  await p.waitForFunction(() => ["done", "error", "rejected"].includes(globalThis.lxdimgPublish?.status), null, { timeout: 120_000 });
  assert.equal(await p.evaluate(() => globalThis.lxdimgPublish.status), "done", await text("#publish-status"));
  console.log(`  part requests: ${firstRun} before the reload (2 passed), ${puts.length} after it, ${PARTS} parts`);
  assert.equal(puts.length, PARTS - 2, "only the missing parts are sent");
  assert.ok(puts.length < PARTS);
  assert.equal(await p.evaluate(() => globalThis.lxdimgPublish.resumedStored), 2);
  assert.match(await text("#publish-status"), new RegExp(`Published: ${FP}`));
  assert.equal(await text("#publish-import"), `lxc image import ${base}/page/test --alias page/test`);
  assert.equal(await text("#publish-remote"), `lxc remote add 127-0-0-1 ${base} --protocol simplestreams --public`);
  const left = await p.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("lxdimg.publish.session:")).length);
  assert.equal(left, 0, "a finished session is forgotten");
  await p.screenshot({ path: path.join(shots, "publish-done.png"), fullPage: true });
});

await test("the stored image downloads with the file's SHA-256", async () => {
  const resp = await fetch(`${base}/images/${FP}/unified`);
  assert.equal(resp.status, 200);
  const got = createHash("sha256").update(Buffer.from(await resp.arrayBuffer())).digest("hex");
  assert.equal(got, FP);
  const head = await fetch(`${base}/page-test`, { method: "HEAD", headers: { "Lxd-Server-Architectures": "x86_64" } });
  assert.equal(head.headers.get("lxd-image-hash"), FP);
});

await test("published again: already on the server, nothing sent", async () => {
  const puts = [];
  p.on("request", (r) => r.method() === "PUT" && puts.push(r.url()));
  await p.click("#publish-go");
  await p.waitForFunction(() => globalThis.lxdimgPublish?.status === "done" && globalThis.lxdimgPublish.result?.created === false, null, { timeout: 30_000 });
  assert.equal(puts.length, 0);
  assert.match(await text("#publish-status"), /Already on the server/);
});

await test("in Chinese: the panel's strings from the zh-CN catalogue", async () => {
  await p.click('button[data-set-lang="zh-CN"]');
  await p.locator("#publish-title").waitFor();
  assert.equal(await text("#publish-title"), "发布到此服务器");
  assert.equal(await text("#publish-go"), "发布");
  await p.screenshot({ path: path.join(shots, "publish-zh.png"), fullPage: true });
  await p.click('button[data-set-lang="en"]');
});

await test("a new tab (no session id kept): the worker resumes the open session by fingerprint", async () => {
  // Tab 1: publish image 2, two parts pass, then the tab is closed (its sessionStorage with it).
  const ctx1 = await browser.newContext({ viewport: { width: 1100, height: 1000 }, locale: "en-US" });
  const main = p;
  p = await ctx1.newPage();
  try {
    await p.goto(`${base}/`);
    await drop(image2);
    await waitState("done");
    await p.locator("#publish-form").waitFor({ state: "visible", timeout: 10_000 });
    let pass = 2;
    await p.route(PART_URL, (route) => (route.request().method() === "PUT" && pass-- > 0 ? route.continue() : undefined));
    await p.fill("#publish-token", TOKEN);
    await p.click("#publish-go");
    await p.waitForFunction(() => globalThis.lxdimgPublish?.sent === 2, null, { timeout: 60_000 });
    await ctx1.close();
    // Tab 2, another context: nothing in sessionStorage; Publish creates the session with the
    // fingerprint and the worker answers "resumed" with the two stored parts.
    const ctx2 = await browser.newContext({ viewport: { width: 1100, height: 1000 }, locale: "en-US" });
    p = await ctx2.newPage();
    await p.goto(`${base}/`);
    await drop(image2);
    await waitState("done");
    await p.locator("#publish-form").waitFor({ state: "visible", timeout: 10_000 });
    assert.equal(await p.locator("#publish-resume").count(), 0, "this tab knows of no interrupted upload");
    const puts = [];
    p.on("request", (r) => r.method() === "PUT" && PART_URL.test(r.url()) && puts.push(r.url()));
    await p.fill("#publish-token", TOKEN);
    await p.click("#publish-go");
    await p.waitForFunction(() => ["done", "error", "rejected"].includes(globalThis.lxdimgPublish?.status), null, { timeout: 120_000 });
    assert.equal(await p.evaluate(() => globalThis.lxdimgPublish.status), "done", await text("#publish-status"));
    assert.equal(await p.evaluate(() => globalThis.lxdimgPublish.resumedStored), 2);
    assert.equal(puts.length, PARTS - 2);
    assert.match(await text("#publish-status"), new RegExp(`Published: ${FP2}`));
    const got = createHash("sha256").update(Buffer.from(await (await fetch(`${base}/images/${FP2}/unified`)).arrayBuffer())).digest("hex");
    assert.equal(got, FP2);
    await ctx2.close();
  } finally {
    p = main;
  }
});

await test("no page errors", async () => {
  // The reload cut requests short; failed fetches of held parts are not page errors.
  assert.deepEqual(pageErrors.filter((e) => !/Failed to load resource|net::ERR/.test(e)), []);
});

await browser.close();
if (failures) console.log(`wrangler dev's log:\n${wranglerLog.slice(-4000)}`);
console.log(failures ? `${failures} failed` : "all passed");
process.exit(failures ? 1 : 0);

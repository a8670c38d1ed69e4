// End-to-end test of the page in real headless Chromium (playwright-core, Debian's /usr/bin/chromium).
// `make test-e2e` runs it after building pkg/ and the CLI. Images are made at test time (tar, xz,
// mksquashfs) in a temp dir; screenshots go to tests/out/screenshots/ (git-ignored).
//
// What a person does, what a person sees: a real drop (a DataTransfer dispatched on the drop zone),
// a split pair dropped together (rootfs first: told apart by content), the file picker, a URL
// fetched from another local server (and the CORS / HTTP errors), a rejected image, an image some
// targets lxdimg cannot judge, Cancel, the template text on click, offline reload, a phone-width
// screen. The verdict table's rows are the core's `targets()`. The page's report must equal the
// CLI's `--json` for the same file.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import * as core from "../../pkg/lxdimg.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shots = path.join(repo, "tests/out/screenshots");
const cli = path.join(repo, "target/release/lxdimg");
mkdirSync(shots, { recursive: true });
core.initSync({ module: readFileSync(path.join(repo, "pkg/lxdimg_bg.wasm")) });
const TARGETS = core.targets();

// ---- fixtures ----------------------------------------------------------------------------------
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-e2e-"));
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });

function tree(dir, { metadata = true, rootfs = true, templates = true, meta } = {}) {
  mkdirSync(dir, { recursive: true });
  if (metadata) {
    writeFileSync(path.join(dir, "metadata.yaml"), meta ?? `architecture: amd64
creation_date: 1704067200
expiry_date: 0
properties:
  description: Debian bookworm amd64 (e2e)
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy, rename]
    create_only: true
    template: hosts.tpl
    properties:
      default: localhost
`);
  }
  if (templates) {
    mkdirSync(path.join(dir, "templates"), { recursive: true });
    writeFileSync(path.join(dir, "templates/hostname.tpl"), "{{ instance.name }}\n");
    writeFileSync(path.join(dir, "templates/hosts.tpl"), "127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n");
  }
  if (rootfs) {
    for (const d of ["rootfs/etc", "rootfs/usr/lib", "rootfs/bin"]) mkdirSync(path.join(dir, d), { recursive: true });
    writeFileSync(path.join(dir, "rootfs/usr/lib/os-release"),
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n');
    symlinkSync("../usr/lib/os-release", path.join(dir, "rootfs/etc/os-release"));
    writeFileSync(path.join(dir, "rootfs/bin/filler"), Buffer.alloc(300_000, "lxdimg "));
  }
  return dir;
}
const TAR = ["--owner=0", "--group=0", "--numeric-owner", "--sort=name", "--mtime=2024-01-01"];

const unifiedDir = tree(path.join(tmp, "unified"));
const unified = path.join(tmp, "debian-bookworm.tar.xz");
sh("tar", [...TAR, "-C", unifiedDir, "-cJf", unified, "metadata.yaml", "templates", "rootfs"]);

const splitDir = tree(path.join(tmp, "split"));
const splitMeta = path.join(tmp, "meta.tar.xz");
sh("tar", [...TAR, "-C", splitDir, "-cJf", splitMeta, "metadata.yaml", "templates"]);
const splitRootfs = path.join(tmp, "rootfs.squashfs");
sh("mksquashfs", [path.join(splitDir, "rootfs"), splitRootfs, "-noappend", "-all-root", "-no-progress", "-quiet", "-comp", "xz"]);

const badDir = tree(path.join(tmp, "bad"), { metadata: false });
const rejected = path.join(tmp, "no-metadata.tar.gz");
sh("tar", [...TAR, "-C", badDir, "-czf", rejected, "templates", "rootfs"]);

// An lz4 "tarball": LXD cannot detect it (refused), Incus reads lz4 but lxdimg does not (cannot judge).
const lz4 = path.join(tmp, "image.tar.lz4");
writeFileSync(lz4, Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]), Buffer.alloc(4096, "lxdimg ")]));

// A big plain tarball for Cancel (served slowly).
const bigDir = path.join(tmp, "big");
tree(bigDir);
writeFileSync(path.join(bigDir, "rootfs/bin/big"), Buffer.alloc(64 << 20, 1));
const big = path.join(tmp, "big.tar");
sh("tar", [...TAR, "-C", bigDir, "-cf", big, "metadata.yaml", "templates", "rootfs"]);

const sha = (...files) => {
  const h = createHash("sha256");
  for (const f of files) h.update(readFileSync(f));
  return h.digest("hex");
};
const cliJson = (...files) => JSON.parse(sh(cli, ["inspect", "--json", ...files], { stdio: ["ignore", "pipe", "ignore"] }).toString());
// The CLI exits 1 for a refused image but still prints the report.
const cliJsonAny = (...files) => {
  try {
    return cliJson(...files);
  } catch (e) {
    return JSON.parse(e.stdout.toString());
  }
};

// ---- servers -----------------------------------------------------------------------------------
const page = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg"), "/fixtures/": tmp } });
const base = `http://127.0.0.1:${page.address().port}/`;

// Another origin, as a real image server would be: /cors/ allows cross-origin reads, /nocors/ does
// not, /slow/ trickles the file (for Cancel), anything else is a 404.
let slowAborted = false;
const other = createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const [, kind, name] = url.pathname.split("/");
  const file = path.join(tmp, path.basename(name ?? ""));
  let size;
  try {
    size = statSync(file).size;
  } catch {
    res.writeHead(404, { "Access-Control-Allow-Origin": "*" });
    return res.end("no such image\n");
  }
  const headers = { "Content-Length": size, "Content-Type": "application/octet-stream" };
  if (kind !== "nocors") headers["Access-Control-Allow-Origin"] = "*";
  if (kind === "cors" || kind === "nocors") {
    res.writeHead(200, headers);
    return createReadStream(file).pipe(res);
  }
  if (kind === "slow") {
    res.writeHead(200, headers);
    const data = readFileSync(file);
    let at = 0;
    const timer = setInterval(() => {
      if (at >= data.length) {
        clearInterval(timer);
        return res.end();
      }
      res.write(data.subarray(at, at + (256 << 10)));
      at += 256 << 10;
    }, 50);
    res.on("close", () => {
      clearInterval(timer);
      if (at < data.length) slowAborted = true;
    });
    return;
  }
  res.writeHead(404, { "Access-Control-Allow-Origin": "*" });
  res.end();
});
await new Promise((r) => other.listen(0, "127.0.0.1", r));
const otherBase = `http://127.0.0.1:${other.address().port}`;

// ---- browser -----------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const p = await context.newPage();
const consoleErrors = [];
p.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
p.on("pageerror", (e) => consoleErrors.push(String(e)));
await p.goto(base);
await p.waitForFunction(() => document.getElementById("version").textContent !== "");

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
    await p.screenshot({ path: path.join(shots, `FAIL-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
  }
}

const state = () => p.evaluate(() => document.body.dataset.state);
const waitState = (s, timeout = 60_000) => p.waitForFunction((s) => document.body.dataset.state === s, s, { timeout });
const text = (sel) => p.locator(sel).innerText();
const shot = (name, opts = {}) => p.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true, ...opts });

/** Drops files on the drop zone: a real DataTransfer with File objects, dispatched as the browser does. */
async function drop(...files) {
  const urls = files.map((f) => `/fixtures/${path.basename(f)}`);
  await p.evaluate(async (urls) => {
    const dt = new DataTransfer();
    for (const u of urls) {
      const blob = await (await fetch(u)).blob();
      dt.items.add(new File([blob], u.split("/").pop(), { type: "application/octet-stream" }));
    }
    const zone = document.getElementById("drop");
    for (const type of ["dragenter", "dragover", "drop"]) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, urls);
}

/** The report minus what legitimately differs between page and CLI runs. */
const comparable = (r) => r;

await test("drop a unified image", async () => {
  await drop(unified);
  await waitState("done");
  assert.equal(await text("#fp"), sha(unified));
  assert.equal(await text("#fp-short"), sha(unified).slice(0, 12));
  assert.match(await text("#verdict-banner"), /LXD 5\.0 will accept this image/);
  assert.match(await text("#init-line"), /lxc init creates an instance from it/);
  assert.equal(await text("#import-cmd"), "lxc image import debian-bookworm.tar.xz");
  const rows = p.locator("#verdicts tbody tr");
  assert.deepEqual(await rows.locator("th").allInnerTexts(), TARGETS.map((t) => t.label), "one row per target, in the core's order");
  assert.match(await rows.nth(TARGETS.length - 1).innerText(), /Incus 7\s+✓ accepted/);
  const tpl = p.locator("#templates tbody tr:not(.tpl-text)");
  assert.equal(await tpl.count(), 2);
  assert.match(await tpl.nth(0).innerText(), /\/etc\/hostname\s+create, copy\s+hostname\.tpl\s+✓ yes\s+no/);
  assert.match(await tpl.nth(1).innerText(), /\/etc\/hosts\s+create, copy, rename\s+hosts\.tpl\s+✓ yes\s+yes\s+default=localhost/);
  assert.match(await text("#info"), /Architecture: x86_64\nType: container/);
  assert.match(await text("#info"), /Created: 2024\/01\/01 00:00 UTC/);
  assert.match(await text("#info"), /description: Debian bookworm amd64 \(e2e\)/);
  assert.match(await text("#rootfs-summary"), /Debian GNU\/Linux 12 \(bookworm\)/);
  const page = await p.evaluate(() => window.lxdimg.lastReport);
  assert.deepEqual(comparable(page), comparable(cliJson(unified)), "the page's report equals the CLI's --json");
  await shot("1-unified-result");
});

await test("template text on click (and keyboard)", async () => {
  const btn = p.getByRole("button", { name: "Show the text of hosts.tpl" });
  await btn.click();
  const pre = p.getByLabel("Text of hosts.tpl", { exact: true });
  await pre.waitFor({ state: "visible" });
  assert.equal(await pre.innerText(), "127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n");
  assert.equal(await btn.getAttribute("aria-expanded"), "true");
  const other = p.getByRole("button", { name: "Show the text of hostname.tpl" });
  await other.focus();
  await p.keyboard.press("Enter");
  await p.getByLabel("Text of hostname.tpl", { exact: true }).waitFor({ state: "visible" });
  await p.locator("#templates").screenshot({ path: path.join(shots, "2-template-text.png") });
  await btn.click();
  await pre.waitFor({ state: "hidden" });
});

await test("copy buttons and JSON download", async () => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await p.getByRole("button", { name: "Copy the fingerprint" }).click();
  assert.equal(await p.evaluate(() => navigator.clipboard.readText()), sha(unified));
  await p.getByRole("button", { name: "Copy the import command" }).click();
  assert.equal(await p.evaluate(() => navigator.clipboard.readText()), "lxc image import debian-bookworm.tar.xz");
  assert.match(await text("#copied"), /Copied/);
  const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Download report (JSON)" }).click()]);
  assert.equal(download.suggestedFilename(), "debian-bookworm.tar.xz.lxdimg.json");
  const saved = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(saved.fingerprint, sha(unified));
  assert.deepEqual(saved, cliJson(unified));
});

await test("drop a split pair (rootfs first)", async () => {
  await drop(splitRootfs, splitMeta);
  await waitState("done");
  assert.equal(await text("#fp"), sha(splitMeta, splitRootfs), "fingerprint = SHA-256(metadata ‖ rootfs)");
  assert.match(await text("#verdict-banner"), /LXD 5\.0 will accept this image/);
  assert.match(await text("#verdict-banner"), /split image · container · x86_64/);
  assert.equal(await text("#import-cmd"), "lxc image import meta.tar.xz rootfs.squashfs");
  const files = p.locator("#files tbody tr");
  assert.match(await files.nth(0).innerText(), /^metadata\s+meta\.tar\.xz\s+xz/);
  assert.match(await files.nth(1).innerText(), /^rootfs\s+rootfs\.squashfs\s+squashfs/);
  assert.match(await text("#rootfs-summary"), /squashfs 4\.0, xz/);
  assert.deepEqual(await p.evaluate(() => window.lxdimg.lastReport), cliJson(splitMeta, splitRootfs));
  await shot("3-split-result");
});

await test("choose a file with the picker", async () => {
  await p.setInputFiles("#picker", unified);
  await waitState("done");
  assert.equal(await text("#fp"), sha(unified));
});

await test("a rejected image shows LXD's error", async () => {
  await p.setInputFiles("#picker", rejected);
  await waitState("done");
  const want = cliJsonAny(rejected).verdicts["lxd-5.0"].error;
  assert.equal(want, "Metadata tarball is missing metadata.yaml");
  assert.match(await text("#verdict-banner"), /LXD 5\.0 will refuse this image: “?Error: Metadata tarball is missing metadata\.yaml/);
  assert.match(await text("#verdicts tbody tr:first-child"), /✗ refused\s+Error: Metadata tarball is missing metadata\.yaml/);
  assert.match(await text("#import-note"), /will fail/);
  assert.match(await text("#findings"), /No other findings|Errors \(\d+\)/);
  assert.deepEqual(await p.evaluate(() => window.lxdimg.lastReport), cliJsonAny(rejected));
  await shot("4-rejected");
});

await test("targets lxdimg cannot judge say so, apart from refusals", async () => {
  await p.setInputFiles("#picker", lz4);
  await waitState("done");
  const report = cliJsonAny(lz4);
  assert.deepEqual(await p.evaluate(() => window.lxdimg.lastReport), report);
  assert.match(await text("#verdict-banner"), /LXD 5\.0 will refuse this image: “?Error: Unsupported compression/);
  const rows = p.locator("#verdicts tbody tr");
  let notJudged = 0;
  for (const [i, { key, label }] of TARGETS.entries()) {
    const v = report.verdicts[key];
    const row = await rows.nth(i).innerText();
    if (v.accepted === null) {
      notJudged++;
      assert.equal(v.error, null);
      assert.ok(row.startsWith(label), row);
      assert.match(row, /\? cannot judge/);
      assert.ok(row.includes(`lxdimg cannot judge: ${v.reason}`), row);
      assert.match(row, /— \(import not judged\)/);
      assert.doesNotMatch(row, /refused|Error:/);
    } else {
      assert.match(row, /✗ refused\s+Error: Unsupported compression/);
    }
  }
  assert.ok(notJudged > 0, "the Incus targets cannot be judged for lz4");
  await shot("4b-not-judged");
});

await test("fetch a URL from another server (CORS allowed)", async () => {
  await p.fill("#url", `${otherBase}/cors/debian-bookworm.tar.xz`);
  await p.getByRole("button", { name: "Fetch and check" }).click();
  await waitState("done");
  assert.equal(await text("#fp"), sha(unified));
  assert.equal(await text("#import-cmd"), "lxc image import debian-bookworm.tar.xz");
});

await test("fetch errors are plain: CORS, HTTP 404", async () => {
  await p.fill("#url", `${otherBase}/nocors/debian-bookworm.tar.xz`);
  await p.getByRole("button", { name: "Fetch and check" }).click();
  await waitState("error");
  assert.match(await text("#error"), /does not allow cross-origin requests \(CORS/);
  await shot("5-cors-error", { fullPage: false });
  await p.fill("#url", `${otherBase}/cors/missing.tar.xz`);
  await p.getByRole("button", { name: "Fetch and check" }).click();
  await waitState("error");
  assert.match(await text("#error"), /HTTP 404/);
  await p.fill("#url", "");
});

await test("Cancel stops reading", async () => {
  slowAborted = false;
  await p.fill("#url", `${otherBase}/slow/big.tar`);
  await p.getByRole("button", { name: "Fetch and check" }).click();
  await p.waitForFunction(() => /of .* · .*\/s · about .* left/.test(document.getElementById("progress-text").textContent), null, { timeout: 20_000 });
  // The verdict shows long before the end.
  await p.locator("#early-verdict").waitFor({ state: "visible", timeout: 20_000 });
  assert.match(await text("#early-verdict"), /LXD 5\.0 will accept this image/);
  await shot("6-progress-early-verdict", { fullPage: false });
  await p.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await state(), "cancelled");
  assert.match(await text("#early"), /Cancelled/);
  assert.equal(await p.locator("#progress").isVisible(), false);
  for (let i = 0; i < 50 && !slowAborted; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(slowAborted, "the download was aborted");
  await shot("7-cancelled", { fullPage: false });
  // The page still works afterwards.
  await p.fill("#url", "");
  await drop(unified);
  await waitState("done");
  assert.equal(await text("#fp"), sha(unified));
});

await test("too many files, a phone-width screen", async () => {
  await drop(unified, splitMeta, splitRootfs);
  await waitState("error");
  assert.match(await text("#error"), /3 files given/);
  await p.setViewportSize({ width: 375, height: 800 });
  await drop(unified);
  await waitState("done");
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no sideways scrolling at 375 px (overflow ${overflow} px)`);
  await shot("8-phone");
  await p.setViewportSize({ width: 1200, height: 900 });
});

await test("every control has an accessible name", async () => {
  const unnamed = await p.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("button, input, a[href], [tabindex]")) {
      if (el.closest("[hidden]") || el.getClientRects().length === 0) continue;
      const name = el.getAttribute("aria-label") || el.labels?.[0]?.textContent || el.textContent ||
        (el.getAttribute("aria-labelledby") && document.getElementById(el.getAttribute("aria-labelledby"))?.textContent);
      if (!name || !name.trim()) out.push(el.outerHTML.slice(0, 80));
    }
    return out;
  });
  assert.deepEqual(unnamed, []);
  // The keyboard reaches the picker and the URL box, in that order, from the top of the page.
  await p.reload();
  await p.waitForFunction(() => document.getElementById("version").textContent !== "");
  const seen = [];
  for (let i = 0; i < 6; i++) {
    await p.keyboard.press("Tab");
    seen.push(await p.evaluate(() => document.activeElement.id || document.activeElement.tagName));
  }
  assert.ok(seen.includes("picker") && seen.includes("url"), `tab order: ${seen}`);
});

await test("works offline once loaded (service worker)", async () => {
  await p.evaluate(() => navigator.serviceWorker.ready);
  await p.reload();
  await p.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 10_000 });
  // Let the service worker cache every asset once while controlled.
  await p.waitForFunction(() => document.getElementById("version").textContent !== "");
  await context.setOffline(true);
  try {
    await p.reload();
    await p.waitForFunction(() => document.getElementById("version").textContent !== "", null, { timeout: 10_000 });
    await p.setInputFiles("#picker", unified);
    await waitState("done");
    assert.equal(await text("#fp"), sha(unified));
  } finally {
    await context.setOffline(false);
  }
});

await test("no errors in the console", async () => {
  const unexpected = consoleErrors.filter((e) => !/Failed to load resource|net::ERR_|CORS policy|Access-Control-Allow-Origin/.test(e));
  assert.deepEqual(unexpected, []);
});

await browser.close();
page.close();
other.close();
rmSync(tmp, { recursive: true, force: true });
const failed = results.filter(([, e]) => e);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${path.relative(repo, shots)}/`);
process.exit(failed.length ? 1 : 0);

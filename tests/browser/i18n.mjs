// The page in English and Simplified Chinese, in headless Chromium (`make test-i18n-browser`, part
// of `make test-www`): Debian's /usr/bin/chromium through playwright-core (nothing downloaded);
// Chinese glyphs need fonts-noto-cjk (the make target installs it; the test fails when they render
// as boxes). Screenshots go to tests/out/screenshots/i18n-*.png (git-ignored).
//
//   - the page opens in Chinese for a zh-CN browser and in English for an en-US one, with nothing
//     left in the other language; <html lang> follows;
//   - the switch in the header changes the language and the choice survives a reload (and beats
//     the browser's language);
//   - an inspected image's findings show their title and explanation in Chinese, the core's
//     messages and LXD's error text word for word; switching back re-renders without reading the
//     file again (the Report object is the same, the template text opened stays open);
//   - the layout holds in both languages, at desktop and phone width (no horizontal overflow);
//   - the worker's image page (wrangler dev) in Chinese for Accept-Language: zh-CN, in English
//     otherwise, switched with its ?lang= links, Vary: Accept-Language.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import { CATALOGUES } from "../../www/i18n/catalogue.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shots = path.join(repo, "tests/out/screenshots");
mkdirSync(shots, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-i18n-"));
const EN = CATALOGUES.en;
const ZH = CATALOGUES["zh-CN"];

// ---- fixtures ----------------------------------------------------------------------------------
const TAR = ["--owner=0", "--group=0", "--numeric-owner", "--sort=name", "--mtime=2024-01-01"];
function image(name, meta) {
  const dir = path.join(tmp, name);
  for (const d of ["templates", "rootfs/etc", "rootfs/usr/lib", "rootfs/bin"]) mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, "metadata.yaml"), meta);
  writeFileSync(path.join(dir, "templates/hostname.tpl"), "{{ instance.name }}\n");
  writeFileSync(path.join(dir, "templates/leftover.tpl"), "unused\n");
  writeFileSync(path.join(dir, "rootfs/usr/lib/os-release"), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n');
  symlinkSync("../usr/lib/os-release", path.join(dir, "rootfs/etc/os-release"));
  writeFileSync(path.join(dir, "rootfs/bin/filler"), Buffer.alloc(100_000, "lxdimg "));
  const out = path.join(tmp, `${name}.tar.xz`);
  execFileSync("tar", [...TAR, "-C", dir, "-cJf", out, "metadata.yaml", "templates", "rootfs"]);
  return out;
}
// Accepted, with a warning (no release property, os differs from os-release) and a note (an
// unused template file).
const accepted = image("accepted", `architecture: x86_64
creation_date: 1704067200
properties:
  description: i18n test image
  os: ubuntu
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
`);
// Refused by every LXD: no creation_date (LXD's own words: "Missing creation date"); a template
// rule with a missing file and an unknown trigger too.
const refused = image("refused", `architecture: x86_64
properties:
  description: i18n refused image
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, reboot]
    template: hostname.tpl
  etc/motd:
    when: [create]
    template: motd.tpl
`);

// ---- servers -----------------------------------------------------------------------------------
const page = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg"), "/fixtures/": tmp } });
const base = `http://127.0.0.1:${page.address().port}/`;

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const WORKER = path.join(repo, "worker");
const WRANGLER = path.join(WORKER, "node_modules/.bin/wrangler");
const TOKEN = "i18n-test-token-0123456789";
const wstate = path.join(tmp, "wrangler-state");
const wenv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" };
execFileSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", wstate], { cwd: WORKER, env: wenv, stdio: ["ignore", "ignore", "inherit"] });
const workerPort = await freePort();
const inspectorPort = await freePort();
const wrangler = spawn(WRANGLER, ["dev", "--ip", "127.0.0.1", "--port", String(workerPort), "--inspector-port", String(inspectorPort),
  "--persist-to", wstate, "--var", `UPLOAD_TOKEN:${TOKEN}`, "--show-interactive-dev-session=false", "--log-level", "warn"],
{ cwd: WORKER, env: wenv, stdio: ["ignore", "pipe", "pipe"], detached: true });
let wranglerLog = "";
wrangler.stdout.on("data", (d) => (wranglerLog += d));
wrangler.stderr.on("data", (d) => (wranglerLog += d));
function stopWrangler() {
  try {
    process.kill(-wrangler.pid, "SIGTERM");
  } catch {}
}
process.on("exit", stopWrangler);
const workerBase = `http://127.0.0.1:${workerPort}`;
const workerUp = (async () => {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${workerBase}/api/version`)).ok) return;
    } catch {}
    if (i > 600 || wrangler.exitCode !== null) throw new Error(`wrangler dev did not start:\n${wranglerLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
})();

// ---- browser -----------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync"],
});

const results = [];
let current = null; // the page of the running test, for a screenshot when it fails
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL ${name}\n${e.stack ?? e}`);
    await current?.screenshot({ path: path.join(shots, `i18n-FAIL-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
  }
}

/** A fresh browser profile with this locale (navigator.languages and Accept-Language follow). */
async function open(locale, { width = 1280, height = 900, url = base } = {}) {
  const context = await browser.newContext({ locale, viewport: { width, height } });
  const p = await context.newPage();
  const errors = [];
  // A failed load of the page's own files is reported by its URL below; the browser's favicon.ico
  // request and the page's probes (fetch: e.g. /api/version, absent under www/serve.mjs) are not
  // the page's files.
  p.on("console", (m) => m.type() === "error" && !/^Failed to load resource/.test(m.text()) && errors.push(m.text()));
  p.on("response", (r) => {
    const own = ["document", "script", "stylesheet", "image", "font"].includes(r.request().resourceType());
    if (r.status() >= 400 && own && !/\/favicon\.ico$/.test(r.url())) errors.push(`${r.status()} ${r.url()}`);
  });
  p.on("console", (m) => m.type() === "warning" && /i18n/.test(m.text()) && errors.push(m.text()));
  p.on("pageerror", (e) => errors.push(String(e)));
  current = p;
  await p.goto(url);
  if (url === base) await ready(p);
  return { context, p, errors };
}
const ready = (p) => p.waitForFunction(() => document.getElementById("version").textContent !== "");
const shot = (p, name, fullPage = true) => p.screenshot({ path: path.join(shots, `i18n-${name}.png`), fullPage });
const htmlLang = (p) => p.evaluate(() => document.documentElement.lang);
const pressed = (p) => p.evaluate(() => [...document.querySelectorAll("[data-set-lang]")].filter((b) => b.getAttribute("aria-pressed") === "true").map((b) => b.dataset.setLang));

async function drop(p, file) {
  await p.evaluate(async (u) => {
    const dt = new DataTransfer();
    const blob = await (await fetch(u)).blob();
    dt.items.add(new File([blob], u.split("/").pop(), { type: "application/octet-stream" }));
    const zone = document.getElementById("drop");
    for (const type of ["dragenter", "dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, `/fixtures/${path.basename(file)}`);
  await p.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 60_000 });
  assert.equal(await p.evaluate(() => document.body.dataset.state), "done", await p.locator("#error").innerText().catch(() => ""));
}

/**
 * The words of the other language left in what a reader sees: visible text outside what stays as
 * written (code, command lines, LXD's words, the core's messages and target names, the image's
 * own strings, the language switch), as ASCII words of 3+ letters, minus names every language
 * writes the same way: products, formats, units, and LXD's own identifiers (metadata.yaml and its
 * fields, template triggers, lxc subcommands), which the Chinese text names as they are.
 */
const NAMES = new Set([
  "lxdimg", "LXD", "Incus", "URL", "URLs", "CORS", "JSON", "SHA", "WebAssembly", "KiB", "MiB", "GiB", "UTC", "HTTP", "https", "http",
  "rootfs", "img", "tar", "ustar", "squashfs", "unsquashfs", "sqfs2tar", "qcow2", "inode", "gzip", "bzip2", "lzma", "zstd", "POSIX", "GNU",
  "metadata", "yaml", "YAML", "creation", "expiry", "date", "properties", "description", "release", "templates", "template", "when",
  "create", "copy", "start", "rename", "path", "etc", "null", "container", "virtual", "machine", "lxc", "init", "launch", "image",
  "import", "list", "info", "simplestreams",
  // The file input's own button, drawn by the browser in its own language.
  "Choose", "Files", "chosen", "file", "No",
]);
async function foreignWords(p) {
  const words = await p.evaluate(() => {
    const skip = "code, pre, q, input, .finding-message, .from-image, .lang-switch, #progress-name, #files tbody, #templates tbody, #info, #version, #verdicts tbody th, [hidden], script, style, title";
    const out = [];
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest(skip) || !el.getClientRects().length) continue;
      out.push(...(n.textContent.match(/[A-Za-z]{3,}/g) ?? []));
    }
    return out;
  });
  return [...new Set(words.filter((w) => !NAMES.has(w)))];
}

/** Whether Chinese renders as glyphs: two different characters must not draw the same pixels. */
async function cjkGlyphs(p) {
  return p.evaluate(() => {
    const draw = (ch) => {
      const c = document.createElement("canvas");
      c.width = c.height = 40;
      const g = c.getContext("2d");
      g.font = `32px ${getComputedStyle(document.body).fontFamily}`;
      g.fillText(ch, 2, 34);
      return Array.from(g.getImageData(0, 0, 40, 40).data).join(",");
    };
    const a = draw("镜");
    return a !== draw("像") && a !== draw("\u{10FFFD}");
  });
}

const noOverflow = (p) => p.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1);

await test("a zh-CN browser gets the page in Chinese, nothing left in English", async () => {
  const { context, p, errors } = await open("zh-CN");
  try {
    assert.equal(await htmlLang(p), "zh-CN");
    assert.deepEqual(await pressed(p), ["zh-CN"]);
    assert.equal(await p.title(), ZH["page.title"]);
    assert.equal(await p.locator("h1 .sub").innerText(), ZH["page.header.sub"]);
    assert.equal(await p.locator("#drop-title").innerText(), ZH["page.drop.title"]);
    assert.equal(await p.locator("meta[name=description]").getAttribute("content"), ZH["page.description"]);
    // A sentence with <code> parts keeps them, in the translation's order.
    assert.equal(await p.locator('#drop p[data-i18n="page.drop.help"] code').count(), 4);
    assert.match(await p.locator('#drop p[data-i18n="page.drop.help"]').innerText(), /^把统一格式镜像（\.tar\.xz、\.tar\.gz 等）/);
    assert.match(await p.locator("footer").innerText(), /^lxdimg \d+\.\d+\.\d+ · 加载后可离线使用 · 与 lxdimg 命令行工具/);
    assert.deepEqual(await foreignWords(p), []);
    assert.ok(await cjkGlyphs(p), "Chinese renders as boxes: install fonts-noto-cjk (make i18n-fonts)");
    assert.ok(await noOverflow(p), "horizontal overflow");
    await shot(p, "zh-CN-start");
    await p.setViewportSize({ width: 390, height: 800 });
    assert.ok(await noOverflow(p), "horizontal overflow at phone width");
    await shot(p, "zh-CN-start-phone", false);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test("an en-US browser gets the page in English", async () => {
  const { context, p, errors } = await open("en-US");
  try {
    assert.equal(await htmlLang(p), "en");
    assert.deepEqual(await pressed(p), ["en"]);
    assert.equal(await p.title(), EN["page.title"]);
    assert.equal(await p.locator("h1 .sub").innerText(), EN["page.header.sub"]);
    assert.doesNotMatch(await p.evaluate(() => document.body.innerText.replace("简体中文", "")), /\p{Script=Han}/u);
    await shot(p, "en-start");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test("switch to Chinese and back; the choice survives a reload and beats the browser's language", async () => {
  const { context, p, errors } = await open("en-US");
  try {
    await p.getByRole("button", { name: "简体中文" }).click();
    assert.equal(await htmlLang(p), "zh-CN");
    assert.deepEqual(await pressed(p), ["zh-CN"]);
    assert.equal(await p.locator("#result-title").textContent(), ZH["page.result.title"]);
    assert.equal(await p.locator("button.copy").first().getAttribute("aria-label"), ZH["page.copy.fingerprint"]);
    await p.reload();
    await ready(p);
    assert.equal(await htmlLang(p), "zh-CN", "the choice is remembered");
    assert.equal(await p.locator("h1 .sub").innerText(), ZH["page.header.sub"]);
    await p.getByRole("button", { name: "English" }).click();
    assert.equal(await htmlLang(p), "en");
    assert.equal(await p.locator("h1 .sub").innerText(), EN["page.header.sub"]);
    assert.equal(await p.locator("#url-form button[type=submit]").innerText(), EN["page.url.submit"]);
    await p.reload();
    await ready(p);
    assert.equal(await htmlLang(p), "en");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
  // A Chinese browser whose user chose English keeps English.
  const zh = await open("zh-CN");
  try {
    assert.equal(await htmlLang(zh.p), "zh-CN");
    await zh.p.getByRole("button", { name: "English" }).click();
    await zh.p.reload();
    await ready(zh.p);
    assert.equal(await htmlLang(zh.p), "en");
    assert.equal(await zh.p.locator("h1 .sub").innerText(), EN["page.header.sub"]);
  } finally {
    await zh.context.close();
  }
});

await test("an inspected image's findings in Chinese; the core's and LXD's words unchanged; back to English without re-reading", async () => {
  const { context, p, errors } = await open("zh-CN");
  try {
    await drop(p, refused);
    const report = await p.evaluate(() => window.lxdimg.lastReport);
    const lxdError = report.verdicts["lxd-5.0"].error;
    assert.equal(lxdError, "Missing creation date");
    const banner = await p.locator("#verdict-banner").innerText();
    // LXD's own words, word for word, inside the Chinese sentence, and explained in Chinese.
    assert.ok(banner.includes(`LXD 5.0 会拒绝这个镜像：“Error: ${lxdError}”`) || banner.includes(`LXD 5.0 会拒绝这个镜像：Error: ${lxdError}`), banner);
    assert.ok(banner.includes(ZH["page.verdict.refuseExplain"].replace("{explain}", ZH["lxderror.noCreationDate"])), banner);
    const row = await p.locator("#verdicts tbody tr").first().innerText();
    assert.ok(row.includes(`Error: ${lxdError}`) && row.includes(ZH["lxderror.noCreationDate"]) && row.includes("✗ 拒绝"), row);
    // Every finding: the Chinese title and explanation, the core's message as it printed it.
    assert.ok(report.findings.length >= 3, JSON.stringify(report.findings.map((f) => f.code)));
    const items = p.locator("#findings li[data-code]");
    assert.equal(await items.count(), report.findings.length);
    for (let i = 0; i < report.findings.length; i++) {
      const f = report.findings[i];
      const li = p.locator(`#findings li[data-code="${f.code}"]`).filter({ hasText: f.message }).first();
      assert.equal(await li.locator(".finding-title").innerText(), ZH[`finding.${f.code}.title`], f.code);
      assert.equal(await li.locator(".finding-explain").innerText(), ZH[`finding.${f.code}.explain`], f.code);
      assert.ok((await li.locator(".finding-message").innerText()).includes(`${f.code} ${f.message}`), f.code);
    }
    assert.match(await p.locator("#findings h3").first().innerText(), /^错误（\d+）$/);
    assert.deepEqual(await foreignWords(p), []);
    // Open a template's text: it stays open across the switch.
    await p.locator("#templates tbody button").first().click();
    assert.equal(await p.locator("#templates tbody button").first().innerText(), ZH["page.templates.hide"]);
    await shot(p, "zh-CN-refused");
    await p.locator("#verdict-banner").screenshot({ path: path.join(shots, "i18n-zh-CN-banner.png") });
    await p.setViewportSize({ width: 390, height: 800 });
    assert.ok(await noOverflow(p), "horizontal overflow at phone width in Chinese");
    await shot(p, "zh-CN-refused-phone");
    // Close-ups for a person to look at: the verdict table and the findings, at phone width.
    await p.locator("#result > .table-wrap").first().screenshot({ path: path.join(shots, "i18n-zh-CN-verdicts-phone.png") });
    await p.locator("#findings").screenshot({ path: path.join(shots, "i18n-zh-CN-findings-phone.png") });
    await p.setViewportSize({ width: 1280, height: 900 });

    // Back to English: the same Report object, no new reading, the same DOM state.
    await p.evaluate(() => (window.__before = window.lxdimg.lastReport));
    await p.getByRole("button", { name: "English" }).click();
    assert.ok(await p.evaluate(() => window.__before === window.lxdimg.lastReport), "the report was not re-read");
    assert.equal(await p.evaluate(() => document.body.dataset.state), "done");
    assert.equal(await p.locator("#progress").isHidden(), true);
    const enBanner = await p.locator("#verdict-banner").innerText();
    assert.ok(enBanner.includes(`LXD 5.0 will refuse this image: “Error: ${lxdError}”`) || enBanner.includes(`will refuse this image: Error: ${lxdError}`), enBanner);
    for (const f of report.findings) {
      const li = p.locator(`#findings li[data-code="${f.code}"]`).filter({ hasText: f.message }).first();
      assert.equal(await li.locator(".finding-title").innerText(), EN[`finding.${f.code}.title`], f.code);
    }
    assert.match(await p.locator("#findings h3").first().innerText(), /^Errors \(\d+\)$/);
    assert.equal(await p.locator("#templates tbody button").first().innerText(), EN["page.templates.hide"]);
    assert.equal(await p.locator("#templates tr.tpl-text").first().isVisible(), true);
    assert.doesNotMatch(await p.evaluate(() => document.body.innerText.replace("简体中文", "")), /\p{Script=Han}/u);
    await shot(p, "en-refused");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test("an accepted image in Chinese, desktop and phone width", async () => {
  const { context, p, errors } = await open("zh-CN", { width: 390, height: 800 });
  try {
    await drop(p, accepted);
    const report = await p.evaluate(() => window.lxdimg.lastReport);
    assert.equal(report.verdicts["lxd-5.0"].accepted, true);
    assert.ok((await p.locator("#verdict-banner").innerText()).includes("LXD 5.0 会接受这个镜像。"));
    assert.ok((await p.locator("#verdict-banner").innerText()).includes(`${ZH["page.summary.unified"]} · ${ZH["page.summary.container"]} · x86_64`));
    assert.ok((await p.locator("#import-note").innerText()) === ZH["page.import.ok"]);
    assert.match(await p.locator("#timing").innerText(), /^[\d.]+ 秒内读取了 /);
    const codes = report.findings.map((f) => f.code);
    for (const c of ["property-missing", "template-file-unused"]) assert.ok(codes.includes(c), `${c} in ${codes}`);
    assert.deepEqual(await foreignWords(p), []);
    assert.ok(await noOverflow(p), "horizontal overflow at phone width");
    await shot(p, "zh-CN-accepted-phone");
    await p.setViewportSize({ width: 1280, height: 900 });
    await shot(p, "zh-CN-accepted");
    // An error in Chinese, re-rendered in English by the switch.
    await p.locator("#url").fill("");
    await p.locator("#url-form button[type=submit]").click();
    assert.equal(await p.locator("#error").innerText(), ZH["page.error.noUrl"]);
    await p.getByRole("button", { name: "English" }).click();
    assert.equal(await p.locator("#error").innerText(), EN["page.error.noUrl"]);
    // An error the Web Worker sends (a key and params): shown in the page's language.
    const missing = `${base}fixtures/no-such-image.tar.xz`;
    await p.getByRole("button", { name: "简体中文" }).click();
    await p.locator("#url").fill(missing);
    await p.locator("#url-form button[type=submit]").click();
    await p.waitForFunction(() => document.body.dataset.state === "error");
    const status = "404 Not Found";
    assert.equal(await p.locator("#error").innerText(), ZH["page.error.fetchStatus"].replace("{url}", missing).replace("{status}", status));
    await p.getByRole("button", { name: "English" }).click();
    assert.equal(await p.locator("#error").innerText(), `Could not fetch ${missing}: the server answered HTTP ${status}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test("the worker's image page: Chinese for Accept-Language zh-CN, English otherwise, ?lang= links, Vary", async () => {
  await workerUp;
  const up = await fetch(`${workerBase}/api/images?alias=i18n-test`, {
    method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: readFileSync(accepted),
  });
  assert.equal(up.status, 201, `upload: ${up.status} ${await up.clone().text()}`);
  const { fingerprint } = await up.json();

  const zh = await open("zh-CN", { url: `${workerBase}/i18n-test` });
  try {
    const resp = await zh.p.goto(`${workerBase}/i18n-test`);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()["vary"], /Accept-Language/);
    assert.equal(resp.headers()["content-language"], "zh-CN");
    assert.match(await resp.request().headerValue("accept-language"), /^zh-CN/);
    assert.equal(await htmlLang(zh.p), "zh-CN");
    assert.equal(await zh.p.locator("h1").innerText(), "镜像“i18n-test”");
    const body = await zh.p.evaluate(() => document.body.innerText);
    assert.ok(body.includes(`指纹 ${fingerprint}`), body);
    assert.ok(body.includes("别名：i18n-test。"), body);
    assert.ok(body.includes(ZH["worker.image.intro"]), body);
    assert.ok(body.includes(`lxc image import ${workerBase}/i18n-test --alias i18n-test`), body);
    assert.ok(await cjkGlyphs(zh.p), "Chinese renders as boxes on the image page");
    await shot(zh.p, "worker-zh-CN");
    // Its switch: a plain link to ?lang=en.
    await zh.p.getByRole("link", { name: "English" }).click();
    await zh.p.waitForURL(/\?lang=en$/);
    assert.equal(await htmlLang(zh.p), "en");
    assert.equal(await zh.p.locator("h1").innerText(), "Image “i18n-test”");
    assert.ok((await zh.p.evaluate(() => document.body.innerText)).includes(EN["worker.image.intro"]));
    await shot(zh.p, "worker-en");
    await zh.p.getByRole("link", { name: "简体中文" }).click();
    await zh.p.waitForURL(/\?lang=zh-CN$/);
    assert.equal(await htmlLang(zh.p), "zh-CN");
    assert.deepEqual(zh.errors, []);
  } finally {
    await zh.context.close();
  }
  const en = await open("en-US", { url: `${workerBase}/${fingerprint}` });
  try {
    assert.equal(await htmlLang(en.p), "en");
    assert.equal(await en.p.locator("h1").innerText(), `Image ${fingerprint.slice(0, 12)}`);
  } finally {
    await en.context.close();
  }
});

await browser.close();
page.close();
stopWrangler();
rmSync(tmp, { recursive: true, force: true });
const failed = results.filter(([, e]) => e);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${path.relative(repo, shots)}/i18n-*.png`);
process.exit(failed.length ? 1 : 0);

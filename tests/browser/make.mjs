// "Make an image" and "Fix it" on the page, in real headless Chromium (playwright-core, Debian's
// /usr/bin/chromium): a rootfs tarball chosen on the page → the metadata tarball downloaded, its
// fingerprint with the rootfs checked against the CLI's `lxdimg fingerprint` and the pair accepted
// by `lxdimg inspect --strict`; a split image LXD refuses (no creation date; an architecture in
// capitals) → fixed on the page, the repaired metadata tarball downloaded and checked the same way.
// Screenshots: tests/out/screenshots/make-*.png.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shots = path.join(repo, "tests/out/screenshots");
const cli = path.join(repo, "target/release/lxdimg");
mkdirSync(shots, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-make-"));
const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

// A small real rootfs (the host's dash, ls, cat and their libraries; os-release), as a .tar.xz.
sh("bash", ["-c", `source '${repo}/scripts/test-image-lib.sh' && make_rootfs '${tmp}/rootfs' && "\${TAR[@]}" -cJf '${tmp}/rootfs.tar.xz' -C '${tmp}/rootfs' .`]);
const rootfs = path.join(tmp, "rootfs.tar.xz");
const hostArch = sh(cli, ["make", rootfs, "--out", tmp, "--template-set", "none"]).match(/^Architecture: (\S+)/m)[1];

// A split image LXD refuses: no creation_date, architecture in capitals, relative template path.
mkdirSync(path.join(tmp, "broken/templates"), { recursive: true });
writeFileSync(path.join(tmp, "broken/metadata.yaml"), "architecture: AMD64\nproperties:\n  os: x\ntemplates:\n  etc/hostname:\n    when: [create]\n    template: hostname.tpl\n");
writeFileSync(path.join(tmp, "broken/templates/hostname.tpl"), "{{ instance.name }}\n");
sh("tar", ["-cJf", path.join(tmp, "broken.tar.xz"), "-C", path.join(tmp, "broken"), "metadata.yaml", "templates"]);

// A unified image LXD refuses (no creation_date, architecture in capitals), .tar.gz.
sh("bash", ["-c", `cd '${tmp}/broken' && tar -cf '${tmp}/unified.tar' metadata.yaml templates && tar -rf '${tmp}/unified.tar' -C '${tmp}' rootfs && gzip -n '${tmp}/unified.tar'`]);

const page = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg") } });
const base = `http://127.0.0.1:${page.address().port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
let failed = 0;
const check = async (name, fn) => {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e.stack ?? e).split("\n").join("\n  ")}`);
  }
};
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  const p = await context.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(String(e)));
  // A failed load is reported by its URL; the page's probe of /api/version (is it served by an
  // lxdimg server?) answers 404 from this static server, as it should.
  p.on("console", (m) => m.type() === "error" && !/^Failed to load resource/.test(m.text()) && errors.push(m.text()));
  p.on("response", (r) => r.status() >= 400 && !/\/api\/version$/.test(r.url()) && errors.push(`HTTP ${r.status()} ${r.url()}`));
  await p.goto(base);
  await p.waitForSelector("#make-go");

  await check("make: a rootfs on the page → metadata tarball; fingerprint = the CLI's", async () => {
    await p.setInputFiles("#make-rootfs", rootfs);
    await p.click("#make-go");
    await p.waitForSelector("#make-fp", { timeout: 60_000 });
    const fp = (await p.textContent("#make-fp")).trim();
    const yaml = await p.textContent("#make-yaml");
    assert.match(yaml, new RegExp(`^architecture: "${hostArch}"$`, "m"));
    assert.match(yaml, /^  "os": "lxdimgtest"$/m);
    assert.match(await p.textContent("#make-out"), new RegExp(`ELF header of /(usr/)?bin/dash`));
    const [dl] = await Promise.all([p.waitForEvent("download"), p.click("#make-out a.download")]);
    assert.equal(dl.suggestedFilename(), "rootfs.metadata.tar.xz");
    const saved = path.join(tmp, "page-made.tar.xz");
    await dl.saveAs(saved);
    assert.equal(sh(cli, ["fingerprint", saved, rootfs]).trim(), fp);
    sh(cli, ["inspect", "--strict", saved, rootfs]); // exit 0: accepted, no error finding
    assert.match(await p.textContent("#make-cmd"), /^lxc image import rootfs\.metadata\.tar\.xz rootfs\.tar\.xz --alias lxdimgtest\/1$/);
    await p.screenshot({ path: path.join(shots, "make-made.png"), fullPage: true });
  });

  await check("repair: a refused split image → fixes, diff, repaired tarball the CLI accepts", async () => {
    let refused = false;
    try {
      sh(cli, ["inspect", path.join(tmp, "broken.tar.xz"), rootfs]);
    } catch {
      refused = true;
    }
    assert.ok(refused, "the broken image is refused by the CLI");
    await p.setInputFiles("#fix-image", [rootfs, path.join(tmp, "broken.tar.xz")]); // any order
    await p.click("#fix-go");
    await p.waitForSelector("#fix-fp", { timeout: 60_000 });
    const fixes = await p.textContent("#fix-list");
    for (const c of ["refused", "template-path-not-absolute", "property-missing"]) assert.ok(fixes.includes(c), `${c} in ${fixes}`);
    const diff = await p.textContent("#fix-diff");
    assert.match(diff, /^-architecture: AMD64$/m);
    assert.match(diff, /^\+architecture: "x86_64"$/m);
    assert.match(diff, /^\+creation_date: \d+$/m);
    const fp = (await p.textContent("#fix-fp")).trim();
    const [dl] = await Promise.all([p.waitForEvent("download"), p.click("#fix-out a.download")]);
    assert.equal(dl.suggestedFilename(), "broken.repaired.tar.xz");
    const saved = path.join(tmp, "page-repaired.tar.xz");
    await dl.saveAs(saved);
    assert.equal(sh(cli, ["fingerprint", saved, rootfs]).trim(), fp);
    sh(cli, ["inspect", "--strict", saved, rootfs]);
    await p.screenshot({ path: path.join(shots, "make-repaired.png"), fullPage: true });
  });

  await check("Fix it from the report: the refused pair dropped on the page goes to the repair, same fixes", async () => {
    await p.setInputFiles("#picker", [path.join(tmp, "broken.tar.xz"), rootfs]);
    await p.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 60_000 });
    await p.click("#fix-offer");
    await p.waitForSelector("#fix-fp", { timeout: 60_000 });
    const fixes = await p.textContent("#fix-list");
    for (const c of ["refused", "template-path-not-absolute", "property-missing"]) assert.ok(fixes.includes(c), `${c} in ${fixes}`);
  });

  await check("repair: a refused unified image → checked rewrite, saved as a stream with the checked fingerprint", async () => {
    // The save picker: a stub answering with a file of the origin-private file system.
    await p.evaluate(() => {
      window.showSaveFilePicker = async ({ suggestedName }) =>
        (await navigator.storage.getDirectory()).getFileHandle(suggestedName, { create: true });
    });
    await p.setInputFiles("#fix-image", path.join(tmp, "unified.tar.gz"));
    await p.click("#fix-go");
    await p.waitForSelector("#fix-save", { timeout: 60_000 });
    const fp = (await p.textContent("#fix-fp")).trim();
    await p.click("#fix-save");
    await p.waitForFunction(() => document.getElementById("fix-saved").textContent !== "", null, { timeout: 60_000 });
    const saved = await p.textContent("#fix-saved");
    assert.ok(saved.includes(fp), saved);
    const b64 = await p.evaluate(async () => {
      const f = await (await (await navigator.storage.getDirectory()).getFileHandle("unified.repaired.tar.gz")).getFile();
      const bytes = new Uint8Array(await f.arrayBuffer());
      let s = "";
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(s);
    });
    const out = path.join(tmp, "page-unified.tar.gz");
    writeFileSync(out, Buffer.from(b64, "base64"));
    assert.equal(sh(cli, ["fingerprint", out]).trim(), fp);
    sh(cli, ["inspect", "--strict", out]);
    await p.screenshot({ path: path.join(shots, "make-repaired-unified.png"), fullPage: true });
  });

  await check("make: in Chinese, the section's strings come from the zh-CN catalogue", async () => {
    await p.evaluate(async () => (await import("./i18n.js")).setLang("zh-CN"));
    await p.waitForFunction(() => document.querySelector("#make-go").textContent === "制作镜像");
    await p.screenshot({ path: path.join(shots, "make-zh.png"), fullPage: true });
    await p.evaluate(async () => (await import("./i18n.js")).setLang("en"));
    await p.waitForFunction(() => document.querySelector("#make-go").textContent === "Make the image");
  });

  // MAKE_PAGE_ROOTFS=FILE…: the page's throughput and WebAssembly memory making images from
  // larger rootfs files (printed, not asserted).
  for (const f of (process.env.MAKE_PAGE_ROOTFS ?? "").split(/\s+/).filter(Boolean)) {
    await check(`make on the page: ${path.basename(f)}`, async () => {
      await p.reload();
      await p.waitForSelector("#make-go");
      await p.setInputFiles("#make-rootfs", f);
      const t0 = Date.now();
      await p.click("#make-go");
      await p.waitForSelector("#make-fp", { timeout: 600_000 });
      const s = (Date.now() - t0) / 1000;
      const size = statSync(f).size;
      console.log(`  ${path.basename(f)}: ${(size / 1e6).toFixed(0)} MB in ${s.toFixed(1)} s = ${(size / 1e6 / s).toFixed(1)} MB/s of rootfs; ${await p.textContent("#make-out .hint")}`);
      assert.match(await p.textContent("#make-fp"), /^[0-9a-f]{64}$/);
    });
  }

  await check("no page errors", async () => assert.deepEqual(errors, []));
} finally {
  await browser.close();
  page.close();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(failed ? `make.mjs: ${failed} failed` : "make.mjs: all passed");
process.exit(failed ? 1 : 0);

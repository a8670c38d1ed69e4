// The template preview (www/render.js) in headless Chromium (`make test-render-browser`, part of
// `make test-www`): Debian's /usr/bin/chromium through playwright-core (nothing downloaded).
//
//   - an image with templates (hostname, cloud-init user-data, a start template, a broken one) is
//     dropped on the page; each template rule fired at `create` is rendered beside its text, the
//     broken one shows LXD's error with the file line and column, and the inspection's findings
//     name it (template-syntax);
//   - editing the instance name re-renders the hostname; a user.user-data value reaches the
//     cloud-init seed; switching the type to a virtual machine changes instance.type; the
//     `start` trigger shows the other template;
//   - the rendered texts are the core's: compared with `lxdimg render --json` of the same file
//     and context;
//   - the preview re-renders in Chinese after a language switch and keeps the edits.
// Screenshots: tests/out/screenshots/render-*.png (git-ignored).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
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
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-render-"));
const LXDIMG = process.env.LXDIMG ?? path.join(repo, "target/release/lxdimg");
const EN = CATALOGUES.en;
const ZH = CATALOGUES["zh-CN"];

// ---- the image -----------------------------------------------------------------------------------
const dir = path.join(tmp, "img");
for (const d of ["templates", "rootfs/etc"]) mkdirSync(path.join(dir, d), { recursive: true });
writeFileSync(path.join(dir, "metadata.yaml"), `architecture: x86_64
creation_date: 1704067200
properties:
  description: render test image
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /var/lib/cloud/seed/nocloud-net/user-data:
    when: [create, copy]
    template: cloud-init-user.tpl
    properties:
      default: |
        #cloud-config
        {}
  /etc/motd:
    when: [start]
    template: motd.tpl
  /etc/broken:
    when: [create]
    template: broken.tpl
`);
writeFileSync(path.join(dir, "templates/hostname.tpl"), "{{ container.name }}\n");
writeFileSync(path.join(dir, "templates/cloud-init-user.tpl"), '{{ config_get("user.user-data", properties.default) }}\n');
writeFileSync(path.join(dir, "templates/motd.tpl"), '{{ instance.type }} {{ config_get("image.os", "") }} <{{ container.name }}>\n');
writeFileSync(path.join(dir, "templates/broken.tpl"), "ok\n{% if container.name %}\n{% endfor %}\n");
writeFileSync(path.join(dir, "rootfs/etc/os-release"), "ID=debian\nVERSION_ID=12\n");
const image = path.join(tmp, "render.tar.xz");
execFileSync("tar", ["--owner=0", "--group=0", "--numeric-owner", "--sort=name", "--mtime=2024-01-01", "-C", dir, "-cJf", image, "metadata.yaml", "templates", "rootfs"]);

/** `lxdimg render --json` of the image: {path: output} (the CLI's rendering, same core). */
function cli(args) {
  let out;
  try {
    out = execFileSync(LXDIMG, ["render", ...args, "--json", image], { encoding: "utf8" });
  } catch (e) {
    out = e.stdout; // exit 1: a template failed (broken.tpl); the JSON is still printed
  }
  return Object.fromEntries(JSON.parse(out).map((r) => [r.path, r.output ?? r.error.message]));
}

// ---- page and browser --------------------------------------------------------------------------------
const server = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg") } });
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync"],
});
const context = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 } });
const p = await context.newPage();
const errors = [];
// A failed load is reported by its URL (below); the page's probe of /api/version (is it served by
// an lxdimg server?) answers 404 from this static server, as it should.
p.on("console", (m) => m.type() === "error" && !/^Failed to load resource/.test(m.text()) && errors.push(m.text()));
p.on("pageerror", (e) => errors.push(String(e)));
p.on("response", (r) => r.status() >= 400 && !/favicon\.ico$|\/api\/version$/.test(r.url()) && errors.push(`${r.status()} ${r.url()}`));

let failed = 0;
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n${e.stack ?? e}`);
    await p.screenshot({ path: path.join(shots, `render-FAIL-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
  }
}

const output = (target) => p.locator(`pre.render-output[data-path="${target}"]`);
const text = async (target) => (await output(target).textContent()) ?? "";

await test("the dropped image's templates are rendered beside their text", async () => {
  await p.goto(base);
  await p.waitForFunction(() => document.getElementById("version").textContent !== "");
  await p.setInputFiles("#picker", image);
  await p.waitForSelector("#result:not([hidden])", { timeout: 60_000 });
  await p.waitForSelector("#template-preview:not([hidden]) pre.render-output", { timeout: 30_000 });
  assert.equal(await p.locator("#render-title").textContent(), EN["render.title"]);
  assert.equal(await text("/etc/hostname"), "c1\n");
  // The rule's default ends with a line break (a YAML `|` block) and the template adds one.
  assert.equal(await text("/var/lib/cloud/seed/nocloud-net/user-data"), "#cloud-config\n{}\n\n");
  // The start template is not applied at create; the broken one shows LXD's error and position.
  assert.equal(await output("/etc/motd").count(), 0);
  const broken = p.locator(".render-card", { hasText: "/etc/broken" });
  assert.match(await broken.textContent(), /templates\/broken\.tpl, line 3, column 4:/);
  assert.match(await broken.locator("pre.render-message").textContent(), /^Failed to render template: \[Error \(where: parser\) in <string> \| Line 3 Col 4 near 'endfor'\] Tag 'endfor' not found/);
  assert.match(await p.locator("#findings").textContent(), /template-syntax|Template LXD cannot parse/);
  await p.screenshot({ path: path.join(shots, "render-preview.png"), fullPage: true });
});

await test("editing the name re-renders the hostname", async () => {
  await p.fill("#render-name", "web-42");
  await p.waitForFunction(() => document.querySelector('pre.render-output[data-path="/etc/hostname"]')?.textContent === "web-42\n");
  await p.locator(".render-value").first().fill("#cloud-config\npackages: [htop]");
  await p.waitForFunction(() => document.querySelector('pre.render-output[data-path="/var/lib/cloud/seed/nocloud-net/user-data"]')?.textContent === "#cloud-config\npackages: [htop]\n");
  const ours = cli(["--name", "web-42", "--config", "user.user-data=#cloud-config\npackages: [htop]"]);
  assert.equal(await text("/etc/hostname"), ours["/etc/hostname"]);
  assert.equal(await text("/var/lib/cloud/seed/nocloud-net/user-data"), ours["/var/lib/cloud/seed/nocloud-net/user-data"]);
  await p.screenshot({ path: path.join(shots, "render-edited.png"), fullPage: true });
});

await test("the start trigger and a virtual machine", async () => {
  await p.selectOption("#render-trigger", "start");
  await p.selectOption("#render-type", "virtual-machine");
  await p.waitForFunction(() => document.querySelector('pre.render-output[data-path="/etc/motd"]')?.textContent === "virtual-machine debian <web-42>\n");
  assert.equal(await output("/etc/hostname").count(), 0);
  assert.match(await p.locator("#render-results").textContent(), /Not applied at start: .*\/etc\/hostname/);
  const ours = cli(["--name", "web-42", "--trigger", "start", "--type", "virtual-machine"]);
  assert.equal(await text("/etc/motd"), ours["/etc/motd"]);
  await p.selectOption("#render-trigger", "create");
  await p.selectOption("#render-type", "container");
});

await test("a language switch keeps the edits", async () => {
  await p.click('button[data-set-lang="zh-CN"]');
  await p.waitForFunction((title) => document.getElementById("render-title")?.textContent === title, ZH["render.title"]);
  assert.equal(await p.inputValue("#render-name"), "web-42");
  assert.equal(await text("/etc/hostname"), "web-42\n");
  await p.screenshot({ path: path.join(shots, "render-zh.png"), fullPage: true });
  await p.click('button[data-set-lang="en"]');
  await p.waitForFunction((title) => document.getElementById("render-title")?.textContent === title, EN["render.title"]);
});

await test("no page errors", async () => {
  assert.deepEqual(errors, []);
});

await browser.close();
server.close();
if (failed) {
  console.log(`${failed} failed`);
  process.exit(1);
}
console.log("render: all passed");

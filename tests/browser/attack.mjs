// The page under attack (`make test-attack`, part of `make test`): an image whose every text field
// carries script and markup payloads and control characters is dropped on the page, as served by
// both of `make run`'s servers — www/serve.mjs and the edge worker under `wrangler dev` (static
// assets through www/_headers) — and the worker's own page for a browser (`/{alias}`) shows the
// uploaded image. Each must carry the Content-Security-Policy of www/csp.js, and:
//   - nothing executes: no dialog, no global set by a payload, no element or handler made from one;
//   - no CSP violation and no Trusted Types error while the page loads and renders the image; the
//     only violations are the ones a canary provokes afterwards (eval, an HTML sink, an inline
//     script), which proves the policy is enforced and the listener hears it;
//   - the text is shown literally, with control characters as the CLI prints them (`\u{1b}`).
// Headless Debian Chromium (/usr/bin/chromium; nothing is downloaded). Screenshots go to
// tests/out/screenshots/attack-*.png.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import { CONTENT_SECURITY_POLICY } from "../../www/csp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shots = path.join(repo, "tests/out/screenshots");
mkdirSync(shots, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), "lxdimg-attack-"));

// ---- the payloads ------------------------------------------------------------------------------
// Every payload sets window.__pwned and opens a dialog if it ever runs; `tag` says which field.
const CONTROLS = "\u001b[31m\u0007\u202e\u009b2J";
const payload = (tag) =>
  [
    `<img src=x onerror="window.__pwned='${tag}';alert('${tag}')">`,
    `<script>window.__pwned='${tag}';alert('${tag}')</script>`,
    `javascript:alert('${tag}')`,
    `<svg/onload=alert('${tag}')>`,
    `"><iframe srcdoc="<script>parent.alert('${tag}')</script>">`,
    `<a href="javascript:alert('${tag}')">x</a>`,
    `{{constructor.constructor('alert(1)')()}}`,
    CONTROLS,
  ].join(" ");
// File names cannot hold "/": the same without it.
const slashless = (tag) => `<img src=x onerror=alert('${tag}')> <svg onload=alert('${tag}')> javascript:alert('${tag}') ${CONTROLS}`;

const P = {
  description: payload("description"),
  os: payload("os"),
  release: payload("release"),
  key: payload("property-key"),
  value: payload("property-value"),
  tpath: `/etc/${payload("template-path")}`,
  when: payload("when"),
  tname: `${slashless("template-name")}.tpl`,
  tpropKey: payload("template-property-key"),
  tpropValue: payload("template-property-value"),
  ttext: `127.0.0.1 ${payload("template-text")}\n\t${payload("template-text-2")}\n`,
  entry: `${slashless("entry")}.tpl`,
  prettyName: payload("os-release").replaceAll('"', "'"),
  file: `${slashless("file-name")}.tar.xz`,
  // The worker refuses control characters in upload names (400); markup is stored as text.
  uploadFile: `<img src=x onerror=alert('upload-name')> <svg onload=alert('upload-name')> javascript:alert('upload-name').tar.xz`,
};

// JSON strings are YAML double-quoted scalars (`\u001b` included), so the YAML carries every
// control character the way a real image would have to (raw ones are a YAML error); JSON leaves
// DEL and C1 raw, YAML wants them escaped too.
const q = (s) => JSON.stringify(s).replace(/[\u007f-\u009f]/gu, (c) => `\\u${c.codePointAt(0).toString(16).padStart(4, "0")}`);
const metadata = `architecture: amd64
creation_date: 1704067200
properties:
  description: ${q(P.description)}
  os: ${q(P.os)}
  release: ${q(P.release)}
  ${q(P.key)}: ${q(P.value)}
templates:
  ${q(P.tpath)}:
    when: [create, ${q(P.when)}]
    template: ${q(P.tname)}
    properties:
      ${q(P.tpropKey)}: ${q(P.tpropValue)}
`;
// The same payloads in a refused image: an architecture LXD does not know.
const refusedMetadata = metadata.replace("architecture: amd64", `architecture: ${q(payload("architecture"))}`);

// Tar members with arbitrary names (Python's tarfile: GNU tar refuses none of them either).
function image(meta, out) {
  const spec = {
    out,
    members: [
      ["metadata.yaml", meta],
      ["templates/", null],
      [`templates/${P.tname}`, P.ttext],
      [`templates/${P.entry}`, "unused\n"],
      ["rootfs/", null],
      ["rootfs/etc/", null],
      ["rootfs/etc/os-release", `PRETTY_NAME="${P.prettyName}"\nID=debian\nVERSION_ID=12\n`],
    ],
  };
  execFileSync("python3", ["-c", `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
with tarfile.open(spec["out"], "w:xz", format=tarfile.GNU_FORMAT) as t:
    for name, text in spec["members"]:
        info = tarfile.TarInfo(name.rstrip("/"))
        info.mtime = 1704067200
        if text is None:
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            t.addfile(info)
        else:
            data = text.encode()
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
`], { input: JSON.stringify(spec) });
  return readFileSync(out);
}
const attackBytes = image(metadata, path.join(tmp, "attack.tar.xz"));
const refusedBytes = image(refusedMetadata, path.join(tmp, "refused.tar.xz"));

/** A string as the page shows it: control characters as the CLI prints them. */
const ESC = { "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0" };
const vis = (s, keep = "") =>
  s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, (c) =>
    keep.includes(c) ? c : ESC[c] ?? `\\u{${c.codePointAt(0).toString(16)}}`);

// ---- servers -----------------------------------------------------------------------------------
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const www = await serve({ port: 0, mounts: { "/pkg/": path.join(repo, "pkg") } });
const wwwBase = `http://127.0.0.1:${www.address().port}`;

// The worker as `make run` runs it: wrangler dev, its own state directory, a test token.
const WORKER = path.join(repo, "worker");
const WRANGLER = path.join(WORKER, "node_modules/.bin/wrangler");
const TOKEN = "attack-test-token-0123456789";
const state = path.join(tmp, "wrangler-state");
const wenv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" };
execFileSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { cwd: WORKER, env: wenv, stdio: ["ignore", "ignore", "inherit"] });
const workerPort = await freePort();
const inspectorPort = await freePort();
const wrangler = spawn(WRANGLER, ["dev", "--ip", "127.0.0.1", "--port", String(workerPort), "--inspector-port", String(inspectorPort),
  "--persist-to", state, "--var", `UPLOAD_TOKEN:${TOKEN}`, "--show-interactive-dev-session=false", "--log-level", "warn"],
{ cwd: WORKER, env: wenv, stdio: ["ignore", "pipe", "pipe"], detached: true });
let wranglerLog = "";
wrangler.stdout.on("data", (d) => (wranglerLog += d));
wrangler.stderr.on("data", (d) => (wranglerLog += d));
const workerBase = `http://127.0.0.1:${workerPort}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${workerBase}/api/version`)).ok) break;
  } catch {}
  if (i > 600 || wrangler.exitCode !== null) throw new Error(`wrangler dev did not start:\n${wranglerLog}`);
  await new Promise((r) => setTimeout(r, 100));
}
function stopWrangler() {
  try {
    process.kill(-wrangler.pid, "SIGTERM");
  } catch {}
}
process.on("exit", stopWrangler);

// A file name with control characters is refused by the worker; the attack image is then uploaded
// under a file name that is a markup payload.
const refused = await fetch(`${workerBase}/api/images?alias=attack&filename=${encodeURIComponent(P.file)}`, {
  method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: attackBytes,
});
assert.equal(refused.status, 400, `upload with control characters in the name: ${refused.status} ${await refused.clone().text()}`);
assert.match(await refused.text(), /control characters are not allowed/);
const up = await fetch(`${workerBase}/api/images?alias=attack&filename=${encodeURIComponent(P.uploadFile)}`, {
  method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: attackBytes,
});
assert.equal(up.status, 201, `upload: ${up.status} ${await up.clone().text()}`);

// ---- browser -----------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync"],
});

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
  }
}

/**
 * A fresh page that records what an attack would leave: dialogs, CSP violations (in the page, as
 * events; in its workers, as console errors), console errors and uncaught exceptions.
 */
async function watchedPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  const seen = { dialogs: [], console: [], errors: [] };
  p.on("dialog", (d) => {
    seen.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  p.on("console", (m) => m.type() === "error" && seen.console.push(m.text()));
  p.on("pageerror", (e) => seen.errors.push(String(e)));
  p.on("worker", (w) => w.on("console", (m) => m.type() === "error" && seen.console.push(`worker: ${m.text()}`)));
  await p.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }));
  });
  return { context, p, seen };
}

/** What would show that a payload ran or became markup. */
async function traces(p) {
  return p.evaluate(() => ({
    pwned: window.__pwned ?? null,
    violations: window.__violations,
    elements: [...document.querySelectorAll("img, iframe, svg, object, embed, frame, script:not([src])")].map((e) => e.outerHTML.slice(0, 80)),
    handlers: [...document.querySelectorAll("*")].flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName} ${a.name}`)),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")).filter((h) => !/^#|^\/(?!\/)|^https?:/.test(h)),
  }));
}

function assertClean(t, seen, where) {
  assert.equal(t.pwned, null, `${where}: a payload ran (window.__pwned = ${t.pwned})`);
  assert.deepEqual(seen.dialogs, [], `${where}: dialogs`);
  assert.deepEqual(t.violations, [], `${where}: CSP violations`);
  assert.deepEqual(t.elements, [], `${where}: elements made from payloads`);
  assert.deepEqual(t.handlers, [], `${where}: event-handler attributes`);
  assert.deepEqual(t.links, [], `${where}: script links`);
  assert.deepEqual(seen.errors, [], `${where}: uncaught errors`);
  const bad = seen.console.filter((m) => /Content Security Policy|Trusted Type|Refused to/i.test(m));
  assert.deepEqual(bad, [], `${where}: CSP or Trusted Types errors in the console`);
}

/**
 * Provokes what an injection would need — an HTML sink, an inline script, a string timer, an
 * inline event handler, a `javascript:` URL — and checks that each was blocked and reported.
 * (Not `eval`: Playwright's own `evaluate` is exempt from CSP, and so is code it evals.)
 */
async function canary(p, where) {
  const r = await p.evaluate(async () => {
    const out = {};
    const attempt = (name, f) => {
      try {
        f();
        out[name] = "no error";
      } catch (e) {
        out[name] = e.name;
      }
    };
    attempt("html", () => (document.createElement("div").innerHTML = "<b>markup</b>"));
    attempt("inline", () => {
      const s = document.createElement("script");
      s.textContent = "window.__canary = 'inline'";
      document.head.append(s);
    });
    attempt("timer", () => setTimeout("window.__canary = 'timer'", 0));
    attempt("handler", () => document.createElement("button").setAttribute("onclick", "window.__canary = 'handler'"));
    attempt("url", () => {
      const a = document.createElement("a");
      a.href = "javascript:window.__canary = 'url'";
      document.body.append(a);
      a.click();
      a.remove();
    });
    await new Promise((r) => setTimeout(r, 200));
    out.ran = window.__canary ?? null;
    out.violations = window.__violations.map((v) => v.directive);
    return out;
  });
  assert.equal(r.ran, null, `${where}: the canary's ${r.ran} ran`);
  assert.equal(r.html, "TypeError", `${where}: an HTML sink without TrustedHTML throws`);
  assert.equal(r.handler, "TypeError", `${where}: an inline handler without TrustedScript throws`);
  const tt = r.violations.filter((d) => d === "require-trusted-types-for").length;
  const script = r.violations.filter((d) => /^script-src/.test(d)).length;
  assert.ok(tt >= 4, `${where}: Trusted Types violations reported (${r.violations})`);
  assert.ok(script >= 1, `${where}: the javascript: URL reported (${r.violations})`);
}

/** Waits until the page has rendered the Report; fails at once on an uncaught error instead. */
async function rendered(p, seen) {
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    if (seen.errors.length) throw new Error(`the page threw while rendering: ${seen.errors.join("; ")}`);
    const state = await p.evaluate(() => document.body.dataset.state);
    if (state === "done") return;
    if (state === "error") throw new Error(`the page shows an error: ${await p.locator("#error").innerText()}`);
    await p.waitForTimeout(50);
  }
  throw new Error("the page did not finish within 60 s");
}

/** Drops files on the page as a person does: a DataTransfer with File objects (bytes from here). */
async function drop(p, files) {
  await p.evaluate(async (files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: "application/octet-stream" }));
    const zone = document.getElementById("drop");
    for (const type of ["dragenter", "dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files.map((f) => ({ name: f.name, bytes: [...f.bytes] })));
}

async function attackPage(base, label) {
  const { context, p, seen } = await watchedPage();
  try {
    const resp = await p.goto(`${base}/`);
    assert.equal(resp.headers()["content-security-policy"], CONTENT_SECURITY_POLICY, `${label}: the page's CSP header`);
    for (const asset of ["main.js", "worker.js", "sw.js", "pkg/lxdimg.js", "pkg/lxdimg_bg.wasm", "style.css"]) {
      const r = await fetch(`${base}/${asset}`);
      assert.equal(r.status, 200, `${label}: /${asset}`);
      assert.equal(r.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY, `${label}: CSP of /${asset}`);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", `${label}: nosniff on /${asset}`);
    }
    await p.waitForFunction(() => document.getElementById("version").textContent !== "");

    // The accepted image: everything rendered.
    await drop(p, [{ name: P.file, bytes: attackBytes }]);
    await rendered(p, seen);
    // Open every template text, so that it is rendered too.
    for (const b of await p.locator("#templates button").all()) await b.click();
    await p.waitForTimeout(300);
    assertClean(await traces(p), seen, label);

    const text = (sel) => p.locator(sel).innerText();
    assert.match(await text("#verdict-banner"), /LXD 5\.0 will accept this image/);
    const info = await text("#info");
    for (const line of [
      `    description: ${vis(P.description)}`,
      `    os: ${vis(P.os)}`,
      `    release: ${vis(P.release)}`,
      `    ${vis(P.key)}: ${vis(P.value)}`,
      `Rootfs os-release: ${vis(P.prettyName)}`,
    ]) assert.ok(info.split("\n").includes(line), `${label}: info shows ${JSON.stringify(line)} literally:\n${info}`);
    const row = await p.locator("#templates tbody tr:not(.tpl-text)").first().innerText();
    for (const s of [vis(P.tpath), vis(P.when), vis(P.tname), `${vis(P.tpropKey)}=${vis(P.tpropValue)}`]) {
      assert.ok(row.includes(s), `${label}: template row shows ${JSON.stringify(s)}:\n${row}`);
    }
    const pre = await p.locator("#templates tr.tpl-text pre").first().innerText();
    assert.equal(pre, vis(P.ttext, "\n\t"), `${label}: template text, line breaks and tabs kept`);
    const findings = await text("#findings");
    assert.ok(findings.includes(`templates/${vis(P.entry)} is not used`), `${label}: an entry name in a finding:\n${findings}`);
    assert.ok(findings.includes(`entry templates/${vis(P.entry)}`), `${label}: an entry name in a finding's place`);
    assert.match(findings, /control-characters properties\.description holds control characters/);
    assert.ok((await text("#files tbody")).includes(vis(P.file)), `${label}: the file name`);
    assert.ok((await text("#progress-name")).includes(vis(P.file)));
    // The command is quoted by the core: bash's $'…' for the control characters, nothing raw.
    const cmd = await text("#import-cmd");
    assert.ok(cmd.startsWith("lxc image import $'<img src=x onerror=alert(\\'file-name\\')>"), cmd);
    assert.doesNotMatch(cmd, /[\u0000-\u001f\u007f-\u009f\u202e]/u);
    // No raw control character anywhere on the page; each shown as a marked escape.
    const body = await p.evaluate(() => document.body.innerText);
    assert.doesNotMatch(body, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/u, `${label}: a raw control character is shown`);
    const marks = await p.locator("#result .ctl").allInnerTexts();
    assert.ok(marks.includes("\\u{1b}") && marks.includes("\\u{7}") && marks.includes("\\u{202e}") && marks.includes("\\u{9b}"), `${label}: marked escapes ${marks.slice(0, 8)}`);
    await p.screenshot({ path: path.join(shots, `attack-${label}.png`), fullPage: true });
    await p.locator("#info").screenshot({ path: path.join(shots, `attack-${label}-info.png`) });

    // The refused image: LXD's error and the architecture.
    await drop(p, [{ name: "refused.tar.xz", bytes: refusedBytes }]);
    await rendered(p, seen);
    assertClean(await traces(p), seen, `${label} (refused image)`);
    assert.match(await text("#verdict-banner"), /LXD 5\.0 will refuse this image/);
    assert.ok((await text("#info")).includes(`Architecture: ${vis(payload("architecture"))} (not known to LXD)`));

    // Nothing above was a violation; now the policy must refuse what an injection would need.
    await canary(p, label);
    assert.deepEqual(seen.dialogs, []);
  } finally {
    await context.close();
  }
}

await test("the page served by www/serve.mjs (make run-www)", () => attackPage(wwwBase, "serve"));
await test("the page served by the edge worker (wrangler dev, make run)", () => attackPage(workerBase, "worker"));

await test("the worker's page for a browser at /{alias} shows the uploaded image as text", async () => {
  const { context, p, seen } = await watchedPage();
  try {
    const resp = await p.goto(`${workerBase}/attack`);
    assert.equal(resp.status(), 200);
    assert.equal(resp.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
    assertClean(await traces(p), seen, "image page");
    const body = await p.evaluate(() => document.body.innerText);
    for (const s of [`${vis(P.description)}`, `${vis(P.key)}: ${vis(P.value)}`, vis(P.uploadFile)]) {
      assert.ok(body.includes(s), `image page shows ${JSON.stringify(s)}:\n${body}`);
    }
    assert.doesNotMatch(body, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/u);
    // Its stylesheet is a file of the page (no inline style under the CSP).
    assert.equal(await p.evaluate(() => getComputedStyle(document.querySelector("pre")).overflowX), "auto");
    await p.screenshot({ path: path.join(shots, "attack-image-page.png"), fullPage: true });
    await canary(p, "image page");
  } finally {
    await context.close();
  }
});

await browser.close();
www.close();
stopWrangler();
rmSync(tmp, { recursive: true, force: true });
const failed = results.filter(([, e]) => e);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${path.relative(repo, shots)}/attack-*.png`);
process.exit(failed.length ? 1 : 0);

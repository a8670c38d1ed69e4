// The page's catalogues (www/i18n/en.js, www/i18n/zh-CN.js) against each other and against the
// code that uses them: `make test-i18n` (node --test, no browser, well under a second).
//
//   - both catalogues have the same keys, the same {placeholders} per key, no empty string, every
//     key under the `// --- area ---` block of its prefix;
//   - every key the page and the worker name (t("…"), tNodes("…"), data-i18n, data-i18n-attr, the
//     lxderror table) is in the catalogues; a key built at run time (`page.findings.${sev}`) has
//     its prefix in them;
//   - every finding code of src/codes.rs has finding.CODE.title and finding.CODE.explain in both,
//     and no finding key names a code that does not exist;
//   - the language choice (navigator.languages, Accept-Language) and the formatting (placeholders
//     filled as text, fallback to English).
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CATALOGUES, LANGS, acceptLanguages, format, formatParts, knownLang, pickLang, placeholders } from "../../www/i18n/catalogue.js";
import { LXD_ERROR_KEYS, lxdErrorKey } from "../../www/lxd-errors.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (rel) => readFileSync(path.join(repo, rel), "utf8");
const langs = LANGS.map((l) => l.code);
const en = CATALOGUES.en;

/** The areas a key may start with (the common brief's prefixes, plus lxderror). */
const AREAS = ["page", "finding", "lxderror", "worker", "publish", "make", "repair", "render"];
const KEY_RE = new RegExp(`^(${AREAS.join("|")})\\.[A-Za-z0-9_.-]+$`);

test("every language has a catalogue, and each catalogue is a flat map of non-empty strings", () => {
  assert.deepEqual(Object.keys(CATALOGUES).sort(), [...langs].sort());
  for (const code of langs) {
    const cat = CATALOGUES[code];
    assert.ok(Object.keys(cat).length > 100, `${code}: ${Object.keys(cat).length} keys`);
    for (const [k, v] of Object.entries(cat)) {
      assert.match(k, KEY_RE, `${code}: key ${k} is not area.name with a known area (${AREAS.join(", ")})`);
      assert.equal(typeof v, "string", `${code}: ${k} is not a string`);
      assert.notEqual(v.trim(), "", `${code}: ${k} is empty`);
      assert.doesNotMatch(v, /<[A-Za-z/!]/, `${code}: ${k} holds markup; catalogue strings are text (use a {placeholder} for a <code>)`);
      const open = (v.match(/\{/g) ?? []).length;
      const close = (v.match(/\}/g) ?? []).length;
      assert.equal(open, close, `${code}: ${k} has unbalanced braces`);
      assert.equal(placeholders(v).length, open, `${code}: ${k}: a brace that is not a {name} placeholder`);
    }
  }
});

test("both catalogues have the same keys and the same placeholders per key", () => {
  for (const code of langs) {
    if (code === "en") continue;
    const cat = CATALOGUES[code];
    const missing = Object.keys(en).filter((k) => !(k in cat));
    const extra = Object.keys(cat).filter((k) => !(k in en));
    assert.deepEqual(missing, [], `${code} lacks keys`);
    assert.deepEqual(extra, [], `${code} has keys English lacks`);
    for (const k of Object.keys(en)) {
      assert.deepEqual(placeholders(cat[k]).sort(), placeholders(en[k]).sort(), `${code}: ${k} placeholders differ from English`);
    }
  }
});

test("the Chinese catalogue is Chinese: every string that is not only code or names has Han characters", () => {
  const cat = CATALOGUES["zh-CN"];
  // Strings may be the same in both languages by nature (symbols, units, names, example aliases),
  // but not an English phrase.
  const same = Object.keys(en).filter((k) => cat[k] === en[k]);
  for (const k of same) {
    const v = en[k].replace(/\{[A-Za-z0-9_]+\}/g, "");
    const phrase = (v.match(/[A-Za-z]{2,}/g) ?? []).length >= 3 && /\b(the|an?|is|are|of|to|and|or|not|no|for|with|this|that|in|on|be|it)\b/i.test(v);
    assert.ok(!phrase, `zh-CN: ${k} is the English text: ${JSON.stringify(en[k])}`);
  }
  for (const [k, v] of Object.entries(cat)) {
    const words = v.replace(/\{[A-Za-z0-9_]+\}/g, "").match(/[A-Za-z]{4,}/g) ?? [];
    if (words.length >= 6) assert.match(v, /\p{Script=Han}/u, `zh-CN: ${k} looks untranslated: ${v}`);
  }
});

/** A catalogue file's `// --- area ---` blocks: each key is in the block of its own area. */
function blocks(file) {
  const src = read(file);
  const seen = [];
  let area = null;
  for (const [i, line] of src.split("\n").entries()) {
    const head = /^\s*\/\/ --- ([a-z]+) ---\s*$/.exec(line);
    if (head) {
      assert.ok(!seen.includes(head[1]), `${file}:${i + 1}: a second "${head[1]}" block`);
      seen.push(head[1]);
      area = head[1];
      continue;
    }
    const key = /^\s*"([^"]+)":/.exec(line);
    if (key) {
      assert.ok(area, `${file}:${i + 1}: ${key[1]} comes before any // --- area --- block`);
      assert.equal(key[1].split(".")[0], area, `${file}:${i + 1}: ${key[1]} is in the "${area}" block`);
    }
  }
  return seen;
}

test("each key sits in the block of its area, in both files", () => {
  const enBlocks = blocks("www/i18n/en.js");
  for (const code of langs) {
    const b = blocks(`www/i18n/${code}.js`);
    assert.deepEqual([...b].sort(), [...enBlocks].sort(), `www/i18n/${code}.js has other blocks than en.js`);
  }
});

/** The keys a source file names: literal keys, and the static prefixes of keys built at run time. */
function keysIn(file) {
  // Comments name keys as examples (`finding.CODE.title`): only code counts.
  const src = file.endsWith(".js") ? read(file).replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "") : read(file);
  const literal = new Set();
  const prefixes = new Set();
  const area = AREAS.join("|");
  // Any string literal that is a key: t("…"), tNodes("…"), { key: "…" }, tables.
  for (const m of src.matchAll(new RegExp(`(["'\`])((?:${area})\\.[A-Za-z0-9_.-]+)\\1`, "g"))) {
    if (/\.(m?js|css|html|wasm|json|svg)$/.test(m[2])) continue; // "worker.js" is a file
    literal.add(m[2]);
  }
  for (const m of src.matchAll(new RegExp(`\`((?:${area})\\.[A-Za-z0-9_.-]*)\\$\\{`, "g"))) prefixes.add(m[1]);
  // The page's markup.
  if (file.endsWith(".html")) {
    for (const m of src.matchAll(/data-i18n="([^"]+)"/g)) literal.add(m[1]);
    for (const m of src.matchAll(/data-i18n-attr="([^"]+)"/g)) {
      for (const pair of m[1].split(";")) literal.add(pair.split(":")[1].trim());
    }
  }
  return { literal, prefixes };
}

function sources() {
  const list = [];
  for (const [dir, re] of [["www", /\.(js|mjs|html)$/], ["worker/src", /\.js$/]]) {
    for (const f of readdirSync(path.join(repo, dir))) if (re.test(f)) list.push(`${dir}/${f}`);
  }
  return list;
}

test("every key used in www/*.js, www/*.html and worker/src/*.js is in the catalogues", () => {
  let used = 0;
  for (const file of sources()) {
    const { literal, prefixes } = keysIn(file);
    used += literal.size;
    for (const k of literal) assert.ok(k in en, `${file} uses ${k}, which is in no catalogue`);
    for (const p of prefixes) {
      if (p === "finding.") continue; // finding.${code}.title/.explain: the codes test below
      assert.ok(Object.keys(en).some((k) => k.startsWith(p)), `${file} builds keys ${p}…, and no catalogue key starts so`);
    }
  }
  assert.ok(used > 100, `only ${used} keys found in the sources: the scan is broken`);
  for (const k of LXD_ERROR_KEYS) assert.ok(k in en, `www/lxd-errors.js gives ${k}, which is in no catalogue`);
});

test("the page's markup names keys only through data-i18n, and marks every visible sentence", () => {
  const html = read("www/index.html");
  const body = html.slice(html.indexOf("<body>"));
  // Text between tags, outside <code> and the language switch (each language's own name).
  const stripped = body
    .replace(/<code[^>]*>[^<]*<\/code>/g, "")
    .replace(/<div class="lang-switch"[\s\S]*?<\/div>/, "");
  const tagged = [...stripped.matchAll(/<([a-z0-9]+)([^>]*)>([^<]*)/g)];
  for (const [, tag, attrs, text] of tagged) {
    if (!/[A-Za-z]{2,}/.test(text) || /^\s*lxdimg\s*$/.test(text)) continue; // the product's name
    // The text right after a start tag belongs to that element; it must be translated by it, or
    // by the element it is a part of (a sentence with a <strong> in it continues after it).
    const ok = /data-i18n=/.test(attrs) || /data-i18n-part=/.test(attrs);
    assert.ok(ok || tag === "script", `index.html: untranslated text in <${tag}${attrs}>: ${JSON.stringify(text.trim())}`);
  }
  for (const m of body.matchAll(/\s(placeholder|title|aria-label|alt)="([^"]*[A-Za-z]{3,}[^"]*)"/g)) {
    if (m[1] === "placeholder" && /^https?:/.test(m[2])) continue; // an example address
    const start = body.lastIndexOf("<", m.index);
    const el = body.slice(start, body.indexOf(">", m.index));
    assert.match(el, new RegExp(`data-i18n-attr="[^"]*${m[1]}:`), `index.html: ${m[1]}="${m[2]}" is not translated`);
  }
});

test("every finding code of src/codes.rs has a title and an explanation in every language", () => {
  const codes = [...read("src/codes.rs").matchAll(/^\s*[A-Z][A-Za-z0-9]* = "([a-z0-9-]+)", (Error|Warning|Info);/gm)].map((m) => m[1]);
  assert.ok(codes.length >= 40, `only ${codes.length} codes parsed from src/codes.rs`);
  for (const code of langs) {
    for (const c of codes) {
      for (const part of ["title", "explain"]) {
        const k = `finding.${c}.${part}`;
        assert.ok(k in CATALOGUES[code], `${code}: no ${k}`);
      }
    }
  }
  for (const k of Object.keys(en).filter((k) => k.startsWith("finding."))) {
    const m = /^finding\.([a-z0-9-]+)\.(title|explain)$/.exec(k);
    assert.ok(m, `${k}: finding keys are finding.CODE.title or finding.CODE.explain`);
    assert.ok(codes.includes(m[1]), `${k}: src/codes.rs has no code ${m[1]}`);
  }
});

test("the language: the user's order, any Chinese → zh-CN, English otherwise", () => {
  const cases = [
    [["zh-CN"], "zh-CN"], [["zh"], "zh-CN"], [["zh-TW", "en"], "zh-CN"], [["zh-Hans-CN"], "zh-CN"], [["ZH_cn"], "zh-CN"],
    [["en-US", "zh-CN"], "en"], [["fr-FR", "zh-CN", "en"], "zh-CN"], [["fr", "de"], "en"], [[], "en"], [undefined, "en"],
    [["", "*", "zh"], "zh-CN"], [["eng"], "en"], [["zhx"], "en"],
  ];
  for (const [list, want] of cases) assert.equal(pickLang(list), want, JSON.stringify(list));
  assert.equal(knownLang("zh-CN"), "zh-CN");
  assert.equal(knownLang("EN"), "en");
  assert.equal(knownLang("xx"), null);
  assert.equal(knownLang(null), null);
});

test("Accept-Language: by quality, then by order; q=0 and junk dropped", () => {
  assert.deepEqual(acceptLanguages("zh-CN,zh;q=0.9,en;q=0.8"), ["zh-CN", "zh", "en"]);
  assert.deepEqual(acceptLanguages("fr;q=0.9, zh-CN, en;q=0.5"), ["zh-CN", "fr", "en"]);
  assert.deepEqual(acceptLanguages("en;q=0, zh;q=0.1"), ["zh"]);
  assert.deepEqual(acceptLanguages("de;q=abc, en"), ["en"]);
  assert.deepEqual(acceptLanguages(""), []);
  assert.deepEqual(acceptLanguages(null), []);
  assert.deepEqual(acceptLanguages("x".repeat(5000)), []);
  assert.equal(pickLang(acceptLanguages("de-DE, de;q=0.9, zh;q=0.8, en;q=0.7")), "zh-CN");
  assert.equal(pickLang(acceptLanguages("*")), "en");
});

test("formatting: placeholders filled as text, in any order; English and then the key as fallbacks", () => {
  assert.equal(format("en", "page.verdict.accept", { target: "LXD 5.0" }), "LXD 5.0 will accept this image.");
  assert.equal(format("zh-CN", "page.verdict.accept", { target: "LXD 5.0" }), "LXD 5.0 会接受这个镜像。");
  // Markup in a param stays text (the page puts the result in textContent; the worker escapes).
  assert.equal(format("en", "page.error.notUrl", { url: "<b>x</b>{url}" }), "Not a URL: <b>x</b>{url}");
  // A param without a placeholder is ignored; a placeholder without a param stays visible.
  assert.equal(format("en", "page.progress.title", {}), "Reading {name}");
  assert.equal(format("xx", "page.cancel"), "Cancel");
  assert.equal(format("en", "page.no-such-key"), "page.no-such-key");
  // Parts keep non-string params (DOM nodes on the page) as they are, in the translation's order.
  const node = { node: true };
  assert.deepEqual(formatParts("en", "page.init.ok", { init: node }), [node, " creates an instance from it (starting it is not checked here)."]);
  const zh = formatParts("zh-CN", "page.timing.readVerdict", { bytes: "B", seconds: "S", rate: "", target: "T", offset: "O" });
  assert.equal(zh.join(""), "S 秒内读取了 B；读到 O 时已得知 T 的判定。");
});

test("LXD's error texts get an explanation key; others none", () => {
  const cases = [
    ["Metadata tarball is missing metadata.yaml", "lxderror.noMetadata"],
    ["Missing creation date", "lxderror.noCreationDate"],
    ["Unsupported compression", "lxderror.unsupportedCompression"],
    ["Architecture isn't supported: sparc", "lxderror.architecture"],
    ["Architecture is not supported: \"sparc\"", "lxderror.architecture"],
    ["EOF", "lxderror.eof"],
    ["yaml: line 3: mapping values are not allowed in this context", "lxderror.yaml"],
    ["Failed creating instance from image: Unpack failed: Failed to run: unsquashfs", "lxderror.unpackFailed"],
    ["Failed creating instance from image: EOF", "lxderror.eof"],
    ["Failed creating instance record: Requested architecture isn't supported by this host [lxdimg: x]", "lxderror.hostArch"],
    ["xz: data is truncated or corrupt", "lxderror.corrupt"],
    ["something nobody wrote", null],
    [null, null],
  ];
  for (const [text, key] of cases) assert.equal(lxdErrorKey(text), key, String(text));
});

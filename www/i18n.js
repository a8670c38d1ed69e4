// The page's translations: English and Simplified Chinese (www/i18n/en.js, www/i18n/zh-CN.js).
//
//   t(key, params)     the string for the current language, `{name}` placeholders replaced by
//                      String(params.name) — text, never HTML (put it in textContent)
//   tNodes(key, params) the same as a DocumentFragment; a param that is a DOM Node (a <code>, an
//                      image string made visible by main.js's shown()) is inserted as that node
//   lang()             'en' or 'zh-CN'
//   setLang(code)      switch (remembered in localStorage), <html lang> updated, applyI18n(document),
//                      then a `langchange` event on document (detail: {lang}) so dynamic parts
//                      re-render from the data they already have (nothing is re-read)
//   applyI18n(root)    every element with data-i18n="key" gets textContent = t(key); with
//                      data-i18n-attr="placeholder:key;title:key" those attributes. When the string
//                      has placeholders, children marked data-i18n-part="name" are kept and put at
//                      {name} (so a sentence can hold a <code> without any HTML in a catalogue)
//
// The language: the user's choice (localStorage) if any, else the first of navigator.languages
// that is English or Chinese (any zh → zh-CN), else English. Buttons with data-set-lang="code"
// anywhere in the page switch; their aria-pressed follows the language.
//
// Static imports only: the Content-Security-Policy (www/csp.js) allows no eval and no inline
// script, and nothing here reaches an HTML sink (Trusted Types).
import { LANGS, CATALOGUES, DEFAULT_LANG, knownLang, pickLang, format, formatParts } from "./i18n/catalogue.js";

export { LANGS };

const STORAGE_KEY = "lxdimg.lang";
const hasDom = typeof document !== "undefined";

function stored() {
  try {
    return knownLang(globalThis.localStorage?.getItem(STORAGE_KEY));
  } catch {
    return null; // storage disabled (private mode, sandboxed frame)
  }
}

function browserLangs() {
  const n = globalThis.navigator;
  if (!n) return [];
  return n.languages?.length ? [...n.languages] : n.language ? [n.language] : [];
}

let current = stored() ?? pickLang(browserLangs());

/** The current language: 'en' or 'zh-CN'. */
export function lang() {
  return current;
}

/** Whether the user chose the language (on this browser), rather than it being guessed. */
export function langChosen() {
  return stored() !== null;
}

/** The string for `key` in the current language; `{name}` replaced by `String(params.name)`. */
export function t(key, params = {}) {
  if (!Object.prototype.hasOwnProperty.call(CATALOGUES[DEFAULT_LANG], key)) {
    console.warn(`i18n: no catalogue key ${key}`);
  }
  return format(current, key, params);
}

/** The string for `key` as a DocumentFragment; Node params inserted as nodes, others as text. */
export function tNodes(key, params = {}) {
  const frag = document.createDocumentFragment();
  for (const part of formatParts(current, key, params)) {
    if (part === null || part === undefined || part === false) continue;
    frag.append(part instanceof Node ? part : String(part));
  }
  return frag;
}

/** Translates `root` (an element or the document) and the elements under it. */
export function applyI18n(root = document) {
  if (!root) return;
  const self = root.nodeType === 1 ? [root] : [];
  const els = [...self.filter((e) => e.matches("[data-i18n], [data-i18n-attr]")), ...root.querySelectorAll("[data-i18n], [data-i18n-attr]")];
  for (const el of els) {
    const key = el.getAttribute("data-i18n");
    if (key) {
      const parts = {};
      for (const c of el.querySelectorAll(":scope > [data-i18n-part]")) parts[c.getAttribute("data-i18n-part")] = c;
      if (Object.keys(parts).length) {
        const frag = tNodes(key, parts);
        // A part the string does not place (a catalogue missing a {placeholder}) is kept at the
        // end rather than dropped: other code may hold it by id.
        for (const node of Object.values(parts)) if (!frag.contains(node)) frag.append(" ", node);
        el.replaceChildren(frag);
      }
      else el.textContent = t(key);
    }
    const attrs = el.getAttribute("data-i18n-attr");
    if (attrs) {
      for (const pair of attrs.split(";")) {
        const [name, k] = pair.split(":").map((s) => s.trim());
        if (name && k) el.setAttribute(name, t(k));
      }
    }
  }
  if (root === document || root === document.documentElement) syncSwitches();
}

function syncSwitches() {
  for (const b of document.querySelectorAll("[data-set-lang]")) {
    b.setAttribute("aria-pressed", String(knownLang(b.getAttribute("data-set-lang")) === current));
  }
}

/** Switches the page to `code` ('en' or 'zh-CN'), remembers it, and announces `langchange`. */
export function setLang(code) {
  const k = knownLang(code);
  if (!k) throw new RangeError(`unknown language ${code}; known: ${LANGS.map((l) => l.code).join(", ")}`);
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, k);
  } catch {
    // not remembered, still switched
  }
  const changed = k !== current;
  current = k;
  if (!hasDom) return;
  document.documentElement.lang = k;
  applyI18n(document);
  if (changed) document.dispatchEvent(new CustomEvent("langchange", { detail: { lang: k } }));
}

if (hasDom) {
  document.documentElement.lang = current;
  const start = () => {
    applyI18n(document);
    document.addEventListener("click", (e) => {
      const b = e.target instanceof Element ? e.target.closest("[data-set-lang]") : null;
      if (b) setLang(b.getAttribute("data-set-lang"));
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
}

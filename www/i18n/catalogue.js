// The page's languages and their catalogues, without the DOM: imported by www/i18n.js (the page),
// by the edge worker for the HTML pages it writes (worker/src/answer.js), and by the catalogue
// test (tests/i18n/catalogues.mjs). One catalogue per language, `export default { 'area.key': … }`.
import en from "./en.js";
import zhCN from "./zh-CN.js";

/** The languages, in the order the switch shows them; `name` is each in its own language. */
export const LANGS = [
  { code: "en", name: "English" },
  { code: "zh-CN", name: "简体中文" },
];

export const CATALOGUES = { en, "zh-CN": zhCN };

export const DEFAULT_LANG = "en";

/** `code` if it is one of LANGS (case-insensitive, `zh`/`zh-Hans…` → zh-CN), else null. */
export function knownLang(code) {
  if (typeof code !== "string") return null;
  const c = code.trim().toLowerCase();
  if (c === "" || c === "*") return null;
  if (c === "zh" || c.startsWith("zh-") || c.startsWith("zh_")) return "zh-CN";
  if (c === "en" || c.startsWith("en-") || c.startsWith("en_")) return "en";
  return null;
}

/**
 * The language for a list of preferred languages, most preferred first (`navigator.languages`, or
 * Accept-Language parsed by `acceptLanguages`): the first one that is English or any Chinese
 * (every `zh…` gets Simplified Chinese, the only Chinese catalogue); English when none is.
 */
export function pickLang(preferred) {
  for (const p of preferred ?? []) {
    const k = knownLang(p);
    if (k) return k;
  }
  return DEFAULT_LANG;
}

/** An Accept-Language header's tags, by quality (highest first; q=0 dropped). */
export function acceptLanguages(header) {
  if (typeof header !== "string" || header.length > 4096) return [];
  return header
    .split(",")
    .map((part, i) => {
      const [tag, ...params] = part.trim().split(";");
      let q = 1;
      for (const p of params) {
        if (!/^\s*q\s*=/i.test(p)) continue;
        // RFC 9110 qvalue: 0 to 1 with up to three decimals; anything else drops the tag.
        const m = /^\s*q\s*=\s*(0(\.[0-9]{0,3})?|1(\.0{0,3})?)\s*$/i.exec(p);
        q = m ? Number(m[1]) : 0;
      }
      return { tag: tag.trim(), q: Number.isFinite(q) ? q : 0, i };
    })
    .filter((x) => x.tag !== "" && x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i)
    .map((x) => x.tag);
}

/** The placeholders `{name}` of a catalogue string, in order. */
export function placeholders(s) {
  return [...String(s).matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
}

/**
 * The string for `key` in `lang` (falling back to English, then to the key itself), split at its
 * placeholders: an array of strings and `params` values, in order. A placeholder without a param
 * stays as written.
 */
export function formatParts(lang, key, params = {}) {
  const cat = CATALOGUES[lang] ?? CATALOGUES[DEFAULT_LANG];
  const s = cat[key] ?? CATALOGUES[DEFAULT_LANG][key] ?? key;
  const out = [];
  let at = 0;
  for (const m of s.matchAll(/\{([A-Za-z0-9_]+)\}/g)) {
    if (!Object.prototype.hasOwnProperty.call(params, m[1])) continue;
    out.push(s.slice(at, m.index), params[m[1]]);
    at = m.index + m[0].length;
  }
  out.push(s.slice(at));
  return out.filter((x) => x !== "");
}

/** The string for `key` in `lang` with `{name}` placeholders replaced by `String(params.name)`. */
export function format(lang, key, params = {}) {
  return formatParts(lang, key, params).map((x) => (x === null || x === undefined ? "" : String(x))).join("");
}

/** Whether `key` exists in the English catalogue (the reference). */
export function hasKey(key) {
  return Object.prototype.hasOwnProperty.call(CATALOGUES[DEFAULT_LANG], key);
}

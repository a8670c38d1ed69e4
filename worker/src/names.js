/** Alias, file name and fingerprint syntax, and the URL space the worker keeps for itself. */
import { HttpError } from "./http.js";

/** First path segments that are routes, never aliases. */
export const RESERVED = new Set(["api", "streams", "images", "files", ".well-known", "favicon.ico", "robots.txt"]);

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
export const FINGERPRINT = /^[0-9a-f]{64}$/;

/** Longest alias (characters). */
export const MAX_ALIAS = 200;
/** Most aliases one upload may set (each is a row and a check against the page's files). */
export const MAX_ALIASES = 32;
/** Longest file name, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_FILENAME_BYTES = 255;

/**
 * A name from a request, quoted for an error message: JSON string syntax (control characters
 * escaped, never raw), cut to 80 characters with the full length said.
 */
export function quote(name) {
  if (name === null || name === undefined) return "null";
  const s = String(name);
  return s.length > 80 ? `${JSON.stringify(s.slice(0, 80))}… (${s.length} characters)` : JSON.stringify(s);
}

/**
 * Aliases are path-like names (`debian`, `debian/12`, `debian/12/cloud`): segments of letters,
 * digits and `._+~-`, starting with a letter or digit (so no `.`/`..` segment, no empty one, no
 * control character); no commas or spaces (simplestreams splits aliases on commas without
 * trimming, facts §6.5); at most MAX_ALIAS characters; not a fingerprint.
 */
export function aliasProblem(name) {
  if (typeof name !== "string" || name.length === 0) return "empty";
  if (name.length > MAX_ALIAS) return `longer than ${MAX_ALIAS} characters`;
  const segs = name.split("/");
  for (const s of segs) {
    if (!SEGMENT.test(s)) return "use letters, digits and . _ + ~ - in /-separated parts, each starting with a letter or digit";
  }
  if (RESERVED.has(segs[0].toLowerCase())) return `"${segs[0]}" is reserved for the worker's own paths`;
  if (/^[0-9a-fA-F]{64}$/.test(name)) return "looks like a fingerprint";
  return null;
}

export function validateAlias(name) {
  const why = aliasProblem(name);
  if (why) throw new HttpError(400, `Invalid alias ${quote(name)}: ${why}`);
}

/** The aliases of an upload, deduplicated and checked (400 for a bad one or too many). */
export function validateAliases(names) {
  const aliases = [...new Set(names)];
  if (aliases.length > MAX_ALIASES) throw new HttpError(400, `Too many aliases (${aliases.length}); at most ${MAX_ALIASES} per upload`);
  for (const a of aliases) validateAlias(a);
  return aliases;
}

/**
 * A file name as the client gives it (`filename=`, `X-LXD-filename`, a multipart part's
 * `filename`): only ever stored and shown, never part of a storage key. Null for none or empty;
 * a 400 for a name that is not one file name: `/`, `.`/`..`, a control character (C0, DEL, C1),
 * or more than MAX_FILENAME_BYTES bytes.
 */
export function validateFilename(name, where) {
  if (name === null || name === undefined || name === "") return null;
  const bad = (why) => new HttpError(400, `Invalid file name ${quote(name)} (${where}): ${why}`);
  const bytes = new TextEncoder().encode(name).byteLength;
  if (bytes > MAX_FILENAME_BYTES) throw bad(`${bytes} bytes; at most ${MAX_FILENAME_BYTES}`);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw bad("control characters are not allowed");
  if (name.includes("/")) throw bad("a file name, not a path: no /");
  if (name === "." || name === "..") throw bad("not a file name");
  return name;
}

/** An alias must not be shadowed by a static file of the page (assets are matched first). */
export async function checkAliasFree(name, env, request) {
  if (!env.ASSETS) return;
  const origin = new URL(request.url).origin;
  const r = await env.ASSETS.fetch(new Request(`${origin}/${name}`, { method: "HEAD", redirect: "manual" }));
  if (r.status !== 404) throw new HttpError(409, `Alias ${JSON.stringify(name)} collides with a file of the page (/${name})`);
}

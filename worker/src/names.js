/** Alias and fingerprint syntax, and the URL space the worker keeps for itself. */
import { HttpError } from "./http.js";

/** First path segments that are routes, never aliases. */
export const RESERVED = new Set(["api", "streams", "images", "files", ".well-known", "favicon.ico", "robots.txt"]);

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
export const FINGERPRINT = /^[0-9a-f]{64}$/;

/**
 * Aliases are path-like names (`debian`, `debian/12`, `debian/12/cloud`): segments of letters,
 * digits and `._+~-`, starting with a letter or digit; no commas or spaces (simplestreams splits
 * aliases on commas without trimming, facts §6.5); at most 200 characters; not a fingerprint.
 */
export function validateAlias(name) {
  const bad = (why) => new HttpError(400, `Invalid alias ${JSON.stringify(name)}: ${why}`);
  if (typeof name !== "string" || name.length === 0) throw bad("empty");
  if (name.length > 200) throw bad("longer than 200 characters");
  const segs = name.split("/");
  for (const s of segs) {
    if (!SEGMENT.test(s)) throw bad("use letters, digits and . _ + ~ - in /-separated parts, each starting with a letter or digit");
  }
  if (RESERVED.has(segs[0].toLowerCase())) throw bad(`"${segs[0]}" is reserved for the worker's own paths`);
  if (/^[0-9a-fA-F]{64}$/.test(name)) throw bad("looks like a fingerprint");
}

/** An alias must not be shadowed by a static file of the page (assets are matched first). */
export async function checkAliasFree(name, env, request) {
  if (!env.ASSETS) return;
  const origin = new URL(request.url).origin;
  const r = await env.ASSETS.fetch(new Request(`${origin}/${name}`, { method: "HEAD", redirect: "manual" }));
  if (r.status !== 404) throw new HttpError(409, `Alias ${JSON.stringify(name)} collides with a file of the page (/${name})`);
}

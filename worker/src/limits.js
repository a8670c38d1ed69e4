/**
 * Size limits from the environment (wrangler vars), one definition for every route.
 *
 * `MAX_REQUEST_BYTES` is the per-request body cap: Cloudflare refuses larger bodies before the
 * worker runs (100 MB on the Free and Pro plans, 200 MB Business, 500 MB Enterprise), and the
 * worker enforces the same number itself so that `wrangler dev` and the tests behave as deployed.
 * `MAX_UPLOAD_BYTES` (upload.js) stays the cap for a whole image, which upload sessions reach in
 * parts of `PART_BYTES`.
 */
import { HttpError } from "./http.js";

export const DEFAULT_MAX_REQUEST = 100_000_000;
/** R2's smallest part (every part of a multipart upload but the last). */
export const MIN_PART = 5 * 1024 * 1024;
/** The part size used when `PART_BYTES` is not set (capped by the request limit). */
export const DEFAULT_PART = 64 * 1024 * 1024;
/** R2's largest part number. */
export const MAX_PARTS = 10000;

/**
 * A whole-number setting from the environment: at least `min`; empty or unset, `fallback`. A
 * value that is not one is the deployment's mistake: a 500 naming the variable.
 */
export function wholeNumber(env, name, { min = 0, fallback = null } = {}) {
  const raw = String(env[name] ?? "").trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new HttpError(500, `${name} ${JSON.stringify(raw)} is not a whole number of at least ${min}`);
  }
  return n;
}

const positive = (env, name, fallback) => wholeNumber(env, name, { min: 1, fallback });

/** The per-request body cap in bytes (`MAX_REQUEST_BYTES`, default 100 000 000). */
export function requestLimit(env) {
  return positive(env, "MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST);
}

/**
 * The part size of new upload sessions: `PART_BYTES` if set, else 64 MiB, never more than the
 * request cap (rounded down to whole MiB) and never under R2's 5 MiB minimum.
 */
export function partBytes(env) {
  const limit = requestLimit(env);
  const configured = positive(env, "PART_BYTES", 0);
  const n = configured || Math.min(DEFAULT_PART, Math.floor(limit / (1024 * 1024)) * 1024 * 1024);
  if (n < MIN_PART || n > limit) {
    throw new HttpError(500, `The part size ${n} (PART_BYTES) must lie between R2's minimum ${MIN_PART} and MAX_REQUEST_BYTES ${limit}`);
  }
  return n;
}

/** The 413 for a request body over the cap; `route` says where a larger body belongs. */
export function requestTooLarge(env, what = "The request body") {
  const limit = requestLimit(env);
  return new HttpError(
    413,
    `${what} exceeds ${limit} bytes (MAX_REQUEST_BYTES, the per-request cap of the deployment): ` +
      `send larger images in parts with an upload session, POST /api/uploads (see worker/README.md; lxdimg publish does this by itself)`,
  );
}

/**
 * Refuses a request whose declared `Content-Length` is over the cap, before a byte of the body
 * is read. Bodies without a length (chunked) are counted by whoever reads them (`counter`).
 */
export function checkDeclaredLength(request, env, what) {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > requestLimit(env)) throw requestTooLarge(env, what);
}

/** A byte counter that throws the 413 once `n` bytes have gone past the request cap. */
export function counter(env, what) {
  const limit = requestLimit(env);
  let total = 0;
  return (n) => {
    total += n;
    if (total > limit) throw requestTooLarge(env, what);
    return total;
  };
}

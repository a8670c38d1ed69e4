/**
 * Image bytes: `GET`/`HEAD /images/{fingerprint}/{unified|metadata|rootfs}`.
 *
 * LXD's download needs status 200 for a full GET (a 206 fails: "Unable to fetch"), an exact
 * length, and the body as stored: it hashes the *decoded* body, so any `Content-Encoding` turns
 * into "Hash mismatch" (facts §5.4). Files are content-addressed and never change, so they are
 * cached for a year as immutable, with `no-transform` so that no proxy re-encodes them.
 */
import { getFile } from "./db.js";
import { text } from "./http.js";

export const ROLES = new Set(["unified", "metadata", "rootfs"]);

/**
 * Parses a `Range` header against a size (RFC 9110 §14): `{start, end}` (inclusive) for one
 * satisfiable range, `"unsatisfiable"` (416), or null to ignore the header and send everything
 * (absent, malformed, several ranges — all allowed to be ignored).
 */
export function parseRange(header, size) {
  if (header === null || header.length > 200) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null;
  const [, a, b] = m;
  if (a === "" && b === "") return null;
  if (a === "") {
    // Suffix range: the last N bytes.
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return null;
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (!Number.isSafeInteger(start)) return "unsatisfiable";
  let end = b === "" ? size - 1 : Number(b);
  if (b !== "" && !Number.isSafeInteger(end)) end = size - 1;
  if (b !== "" && end < start) return null; // invalid syntax: ignore
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(end, size - 1) };
}

/**
 * `attachment` with the stored file name (RFC 6266): a plain-ASCII `filename` (anything else,
 * quotes, backslashes and controls become `_`) and, when the name is not plain ASCII, the exact
 * name as UTF-8 in `filename*`. A header value is bytes: a name like `образ.tar.xz` put there
 * raw goes out as its UTF-8 bytes, which HTTP clients read as Latin-1 (`Ð¾Ð±Ñ€Ð°Ð·.tar.xz`).
 */
export function contentDisposition(raw) {
  const name = String(raw).toWellFormed();
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  if (ascii === name) return `attachment; filename="${name}"`;
  const utf8 = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

function etagMatches(header, etag) {
  if (!header) return false;
  return header.split(",").some((t) => {
    const v = t.trim().replace(/^W\//, "");
    return v === "*" || v === etag;
  });
}

export async function serveFile(request, env, fingerprint, role) {
  const row = await getFile(env.DB, fingerprint, role);
  if (!row) return text(404, `No ${role} file for image ${fingerprint}`);
  const etag = `"${row.sha256}"`;
  const filename = row.name || `${fingerprint.slice(0, 12)}.${role}`;
  const headers = new Headers({
    "content-type": "application/octet-stream",
    etag,
    "accept-ranges": "bytes",
    "cache-control": "public, max-age=31536000, immutable, no-transform",
    "content-disposition": contentDisposition(filename),
    "x-content-type-options": "nosniff",
  });
  if (etagMatches(request.headers.get("if-none-match"), etag)) {
    return new Response(null, { status: 304, headers });
  }
  let range = parseRange(request.headers.get("range"), row.size);
  const ifRange = request.headers.get("if-range");
  if (range && ifRange !== null && ifRange.trim() !== etag) range = null;
  if (range === "unsatisfiable") {
    headers.set("content-range", `bytes */${row.size}`);
    return new Response(`Range not satisfiable: the file has ${row.size} bytes\n`, { status: 416, headers });
  }
  const status = range ? 206 : 200;
  const length = range ? range.end - range.start + 1 : row.size;
  if (range) headers.set("content-range", `bytes ${range.start}-${range.end}/${row.size}`);
  headers.set("content-length", String(length));
  if (request.method === "HEAD") return new Response(null, { status, headers });
  const obj = await env.IMAGES.get(row.r2_key, range ? { range: { offset: range.start, length } } : undefined);
  if (!obj) return text(500, `Image file ${fingerprint}/${role} is indexed but missing from storage`);
  // The R2 body has a known length, so the runtime sends exactly Content-Length bytes.
  return new Response(obj.body, { status, headers, encodeBody: "manual" });
}

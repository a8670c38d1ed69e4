/** Small response helpers and the bearer-token check. */

export class HttpError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** A plain-text answer: what LXD shows, and what `curl` users read. */
export function text(status, message, headers = {}) {
  return new Response(message.endsWith("\n") ? message : `${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers },
  });
}

export function json(status, value, headers = {}) {
  return new Response(JSON.stringify(value, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers },
  });
}

const enc = new TextEncoder();

async function digest(s) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(s)));
}

/**
 * Compares two secrets in time independent of where they differ (both are hashed first, so the
 * lengths are equal too). Uses the Workers runtime's `timingSafeEqual` when present.
 */
export async function constantTimeEqual(a, b) {
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  if (typeof crypto.subtle.timingSafeEqual === "function") return crypto.subtle.timingSafeEqual(x, y);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/**
 * Throws a 401 unless the request carries `Authorization: Bearer <UPLOAD_TOKEN>`. A worker
 * without a configured token refuses every write (503), rather than accepting anyone's.
 */
export async function requireToken(request, env) {
  const token = env.UPLOAD_TOKEN;
  if (!token) throw new HttpError(503, "Uploads are disabled: the UPLOAD_TOKEN secret is not set on this worker");
  const auth = request.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  const challenge = { "www-authenticate": 'Bearer realm="lxdimg"' };
  if (!m) throw new HttpError(401, "Missing bearer token (send Authorization: Bearer <token>)", challenge);
  if (!(await constantTimeEqual(m[1], token))) throw new HttpError(401, "Wrong token", challenge);
}

/** The origin used in absolute URLs: PUBLIC_URL if set, else the request's own. */
export function publicOrigin(request, env) {
  const configured = (env.PUBLIC_URL ?? "").trim().replace(/\/+$/, "");
  return configured || new URL(request.url).origin;
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A name for `lxc remote add NAME …` derived from the host (`images-example-org`). */
export function remoteName(origin) {
  return new URL(origin).hostname.replace(/[^A-Za-z0-9-]/g, "-").replace(/^-+|-+$/g, "") || "lxdimg";
}

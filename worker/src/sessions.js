/**
 * Upload sessions: an image sent in parts of `partBytes` (each request under MAX_REQUEST_BYTES),
 * in any order, re-sendable, resumable, and validated by the core before anything is indexed.
 *
 *   POST   /api/uploads                      create (or resume, or "exists")
 *   PUT    /api/uploads/{id}/{role}/{part}   one part (numbers from 1)
 *   GET    /api/uploads/{id}                 status, parts stored
 *   POST   /api/uploads/{id}/complete        assemble, validate, index
 *   DELETE /api/uploads/{id}                 abort
 *
 * Design (worker/README.md, "Upload sessions"): each file of the session is one R2 multipart
 * upload under `uploads/<id>/<role>`; a part request streams its body into `uploadPart` (never
 * buffered). The R2 binding cannot list a multipart upload's parts, so the part numbers and
 * ETags live in D1 (migrations/0002). Every route of one session runs in that session's Durable
 * Object (session-object.js, `UPLOAD_SESSIONS`), which validates while the parts arrive: parts
 * are fed through the wasm core in order on their way into R2 (partfeed.js), so that `complete`
 * mostly has the Report to read. What the core has not seen by then (parts out of order, an
 * evicted object, a part re-sent after it was read) is read back from the assembled R2 objects
 * — metadata, then rootfs, from where the feed stopped — by `feed`, and the image is judged by
 * `settleUpload`, the very code of the single-request upload (upload.js). Only an acceptance
 * under the gating target writes the index rows; anything else deletes the objects and the part
 * rows and keeps only the session row with the Report (the status route answers 422 with it
 * until the sweep deletes the row).
 *
 * Completion runs under `ctx.waitUntil` and keeps a heartbeat in D1 while it reads; a completion
 * whose invocation died (heartbeat older than STALE_MS) is taken over by the next `complete`
 * call, which re-reads the already assembled objects. Exactly one invocation owns a validation
 * (`runner`, compare-and-set in D1).
 */
import { Inspection, CoreError, referenceTarget } from "./core.js";
import { drain, readLarge } from "./bodyread.js";
import { addAliases, getImage } from "./db.js";
import { HttpError, json, publicOrigin, requireToken } from "./http.js";
import { FINGERPRINT, checkAliasFree, quote, validateAliases, validateFilename } from "./names.js";
import { earlyReject, expansionLimits, feed, gateTarget, settleUpload, storedAnswer, uploadLimit, uploadVerdict } from "./upload.js";
import { MAX_PARTS, checkDeclaredLength, counter, partBytes, wholeNumber } from "./limits.js";

/** The file roles a session may declare: LXD's multipart names (facts §3). */
const ROLE_SETS = [["unified"], ["metadata", "rootfs"], ["metadata", "rootfs.img"]];
/** The role in R2 keys and the index (a VM's `rootfs.img` is stored as `rootfs`, as upload.js does). */
export const storageRole = (role) => (role === "rootfs.img" ? "rootfs" : role);

/** Largest JSON body of `POST /api/uploads`. */
const MAX_JSON = 64 * 1024;
/** How often a running validation says it is alive (D1 write), and when it counts as dead. */
export const HEARTBEAT_MS = 5000;
export const STALE_MS = 60000;
/** How long a second `complete` waits for a running validation before answering 202. */
const WAIT_MS = 25000;

const SESSION_PATH = /^\/api\/uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\/(complete|unified|metadata|rootfs|rootfs\.img)(?:\/([^/]+))?)?\/?$/;

/** `SESSION_TTL_SECONDS` (default 86400; 0 allowed, for tests). */
export function sessionTtl(env) {
  return wholeNumber(env, "SESSION_TTL_SECONDS", { fallback: 86400 });
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * The session routes; every error is `{ "error": message }` JSON. In the worker (`feeder`
 * null) a route of an existing session is passed to that session's Durable Object, which calls
 * this again with its `PartFeeder`.
 */
export async function handleSessions(request, env, ctx, path, feeder = null) {
  try {
    const id = feeder ? null : SESSION_PATH.exec(path)?.[1];
    if (id) return await sessionObject(env, id).fetch(request.method === "PUT" ? request : await withoutBody(request));
    return await routeSessions(request, env, ctx, path, feeder);
  } catch (e) {
    if (e instanceof HttpError) return json(e.status, { error: e.message, ...(e.extra ?? {}) }, e.headers);
    if (e instanceof CoreError) return json(e.status, { error: e.message });
    throw e;
  }
}

function methodNotAllowed(allow) {
  return json(405, { error: `Method not allowed (allowed: ${allow})` }, { allow });
}

/**
 * The request without its body: only a part (PUT) has one to pass on, and a body the object
 * never reads would be left for the runtime to pump after the answer. The routes take no body
 * (clients send `{}` or nothing): it is read here and dropped, up to MAX_JSON bytes.
 */
async function withoutBody(request) {
  if (request.body && !(await drain(request.body, MAX_JSON))) {
    throw new HttpError(413, `${request.method} ${new URL(request.url).pathname} takes no body (over ${MAX_JSON} bytes were sent)`);
  }
  const headers = new Headers(request.headers);
  headers.delete("content-length");
  headers.delete("transfer-encoding");
  return new Request(request.url, { method: request.method, headers });
}

/** The Durable Object of session `id` (one per session, wherever its requests come from). */
function sessionObject(env, id) {
  const ns = env.UPLOAD_SESSIONS;
  if (!ns) throw new HttpError(500, "The UPLOAD_SESSIONS Durable Object binding is missing (wrangler.jsonc durable_objects): upload sessions need it");
  return ns.get(ns.idFromName(id));
}

async function routeSessions(request, env, ctx, path, feeder) {
  const method = request.method;
  if (path === "/api/uploads" || path === "/api/uploads/") {
    if (method !== "POST") return methodNotAllowed("POST");
    return createSession(request, env);
  }
  const m = SESSION_PATH.exec(path);
  if (!m) throw new HttpError(404, `No upload route ${quote(path)} (sessions are /api/uploads/{uuid}[/complete | /{role}/{part}])`);
  const [, id, sub, part] = m;
  if (sub === undefined) {
    if (method === "GET" || method === "HEAD") return sessionStatus(request, env, id, feeder);
    if (method === "DELETE") return deleteSession(request, env, id, feeder);
    return methodNotAllowed("GET, HEAD, DELETE");
  }
  if (sub === "complete") {
    if (part !== undefined) throw new HttpError(404, `No upload route ${quote(path)}`);
    if (method !== "POST") return methodNotAllowed("POST");
    return completeSession(request, env, ctx, id, feeder);
  }
  if (part === undefined) throw new HttpError(404, `No upload route ${quote(path)}: a part is PUT to /api/uploads/${id}/${sub}/{part number}`);
  if (method !== "PUT") return methodNotAllowed("PUT");
  return putPart(request, env, id, sub, part, feeder);
}

// --- D1 ------------------------------------------------------------------------------------------

/**
 * The session, its files and (unless `parts: false`: a part upload, which needs none of them and
 * would otherwise read every stored part row on every part) its stored parts.
 */
async function loadSession(db, id, { parts = true } = {}) {
  const [s, files, stored] = await db.batch([
    db.prepare("SELECT * FROM upload_sessions WHERE id = ?").bind(id),
    db.prepare("SELECT role, name, size, r2_key, r2_upload_id FROM upload_files WHERE session_id = ? ORDER BY role = 'unified' DESC, role = 'metadata' DESC").bind(id),
    ...(parts ? [db.prepare("SELECT role, part, size, etag FROM upload_parts WHERE session_id = ? ORDER BY role, part").bind(id)] : []),
  ]);
  const session = s.results[0];
  if (!session) return null;
  session.aliases = JSON.parse(session.aliases || "[]");
  session.files = files.results;
  session.parts = stored ? stored.results : [];
  return session;
}

async function requireSession(db, id, opts) {
  const s = await loadSession(db, id, opts);
  if (!s) throw new HttpError(404, `No upload session ${id} (finished sessions are deleted by the sweep; create a new one)`);
  return s;
}

/** The session as the routes answer it. */
function sessionView(s) {
  const view = {
    id: s.id,
    status: s.status,
    partBytes: s.part_bytes,
    files: s.files.map((f) => ({
      role: f.role,
      name: f.name,
      size: f.size,
      parts: partCount(f.size, s.part_bytes),
      stored: s.parts.filter((p) => p.role === f.role).map((p) => p.part),
    })),
    aliases: s.aliases,
    fingerprint: s.fingerprint ?? null,
    expiresAt: new Date(s.expires_at * 1000).toISOString(),
  };
  return view;
}

/** The session's files as the core reads them, for the part feed: `[{role, size, parts}]`. */
function feedOrder(s) {
  return s.files.map((f) => ({ role: f.role, size: f.size, parts: partCount(f.size, s.part_bytes) }));
}

/** A fresh inspection of the session's image (its file names, split type, expansion limits). */
function sessionInspection(env, s) {
  const split = s.files.length === 2;
  return new Inspection({
    names: s.files.map((f) => f.name ?? null),
    splitType: split ? (s.files[1].role === "rootfs.img" ? "virtual-machine" : "container") : null,
    ...expansionLimits(env),
  });
}

function partCount(size, part) {
  return Math.max(1, Math.ceil(size / part));
}

/** The size part `n` (from 1) of a file must have. */
function partSize(size, part, n) {
  const count = partCount(size, part);
  return n < count ? part : size - part * (count - 1);
}

// --- R2 ------------------------------------------------------------------------------------------

function multipart(env, f) {
  return env.IMAGES.resumeMultipartUpload(f.r2_key, f.r2_upload_id);
}

/** Aborts the session's multipart uploads and deletes any object they became. Never throws. */
async function dropStorage(env, files) {
  await Promise.all(files.map((f) => multipart(env, f).abort().catch(() => {})));
  if (files.length) await env.IMAGES.delete(files.map((f) => f.r2_key)).catch(() => {});
}

// --- create --------------------------------------------------------------------------------------

async function readJson(request, env) {
  checkDeclaredLength(request, env, "The session request");
  if (!request.body) throw new HttpError(400, "Empty body: send the session as JSON");
  const bufs = [];
  let n = 0;
  for await (const chunk of readLarge(request.body)) {
    n += chunk.byteLength;
    if (n > MAX_JSON) throw new HttpError(413, `The session request is over ${MAX_JSON} bytes of JSON`);
    bufs.push(chunk);
  }
  const bytes = new Uint8Array(n);
  let off = 0;
  for (const b of bufs) {
    bytes.set(b, off);
    off += b.byteLength;
  }
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    throw new HttpError(400, `The session request is not a JSON object: ${e.message}`);
  }
}

/** `files` of a session request, checked, in the order they are validated (metadata first). */
function parseFiles(files) {
  if (!Array.isArray(files) || files.length === 0) {
    throw new HttpError(400, 'files must be a non-empty array of { "role", "size", "name" }');
  }
  const out = files.map((f, i) => {
    if (f === null || typeof f !== "object") throw new HttpError(400, `files[${i}] is not an object`);
    const size = f.size;
    if (!Number.isSafeInteger(size) || size < 1) throw new HttpError(400, `files[${i}].size must be a whole number of bytes, at least 1 (got ${quote(JSON.stringify(size ?? null))})`);
    if (typeof f.role !== "string") throw new HttpError(400, `files[${i}].role must be a string`);
    if (f.name !== undefined && f.name !== null && typeof f.name !== "string") throw new HttpError(400, `files[${i}].name must be a string`);
    return { role: f.role, size, name: validateFilename(f.name ?? null, `files[${i}].name`) };
  });
  const roles = out.map((f) => f.role);
  const set = ROLE_SETS.find((r) => r.length === roles.length && r.every((x) => roles.includes(x)));
  if (!set) {
    throw new HttpError(400, `files must be "unified" alone, or "metadata" with "rootfs" (container) or "rootfs.img" (virtual machine); got ${quote(roles.join(", "))}`);
  }
  return set.map((r) => out.find((f) => f.role === r));
}

async function createSession(request, env) {
  await requireToken(request, env);
  const body = await readJson(request, env);
  const files = parseFiles(body.files);
  if (body.aliases !== undefined && body.aliases !== null && !Array.isArray(body.aliases)) throw new HttpError(400, "aliases must be an array of names");
  const aliases = validateAliases(body.aliases ?? []);
  let fingerprint = null;
  if (body.fingerprint !== undefined && body.fingerprint !== null) {
    fingerprint = String(body.fingerprint).toLowerCase();
    if (!FINGERPRINT.test(fingerprint)) throw new HttpError(400, `fingerprint must be 64 hex digits (SHA-256), got ${quote(body.fingerprint)}`);
  }
  const total = files.reduce((a, f) => a + f.size, 0);
  const limit = uploadLimit(env);
  if (total > limit) throw new HttpError(413, `The image (${total} bytes) exceeds the size limit of ${limit} bytes (MAX_UPLOAD_BYTES)`);
  const part = partBytes(env);
  for (const f of files) {
    if (partCount(f.size, part) > MAX_PARTS) throw new HttpError(400, `${f.role} needs more than ${MAX_PARTS} parts of ${part} bytes (R2's limit)`);
  }
  for (const a of aliases) await checkAliasFree(a, env, request);
  const db = env.DB;
  const origin = publicOrigin(request, env);

  if (fingerprint) {
    // Already stored: nothing to send (the aliases are added, as a repeated upload does).
    const image = await getImage(db, fingerprint);
    if (image) {
      await addAliases(db, image, aliases);
      return json(200, { status: "exists", image: storedAnswer(origin, image, aliases) });
    }
    // An open session for the same image (a client that lost its session id): resume it.
    const { results } = await db.prepare("SELECT id FROM upload_sessions WHERE fingerprint = ? AND status = 'open' ORDER BY created_at DESC").bind(fingerprint).all();
    for (const { id } of results) {
      const s = await loadSession(db, id);
      if (!s || s.status !== "open") continue;
      const same = s.files.length === files.length && files.every((f) => s.files.some((g) => g.role === f.role && g.size === f.size));
      if (!same) continue;
      const merged = [...new Set([...s.aliases, ...aliases])];
      if (merged.length !== s.aliases.length) validateAliases(merged);
      s.aliases = merged;
      s.expires_at = now() + sessionTtl(env);
      await db.prepare("UPDATE upload_sessions SET aliases = ?, expires_at = ? WHERE id = ? AND status = 'open'").bind(JSON.stringify(merged), s.expires_at, id).run();
      return json(200, { ...sessionView(s), resumed: true });
    }
  }

  const id = crypto.randomUUID();
  const created = now();
  const rows = [];
  try {
    for (const f of files) {
      const key = `uploads/${id}/${storageRole(f.role)}`;
      const mu = await env.IMAGES.createMultipartUpload(key, { httpMetadata: { contentType: "application/octet-stream" } });
      rows.push({ ...f, r2_key: key, r2_upload_id: mu.uploadId });
    }
    const s = {
      id,
      status: "open",
      fingerprint,
      part_bytes: part,
      aliases,
      created_at: created,
      expires_at: created + sessionTtl(env),
    };
    await db.batch([
      db
        .prepare("INSERT INTO upload_sessions (id, status, fingerprint, part_bytes, aliases, created_at, expires_at) VALUES (?, 'open', ?, ?, ?, ?, ?)")
        .bind(id, fingerprint, part, JSON.stringify(aliases), created, s.expires_at),
      ...rows.map((f) => db.prepare("INSERT INTO upload_files (session_id, role, name, size, r2_key, r2_upload_id) VALUES (?, ?, ?, ?, ?, ?)").bind(id, f.role, f.name, f.size, f.r2_key, f.r2_upload_id)),
    ]);
    return json(201, sessionView({ ...s, files: rows, parts: [] }));
  } catch (e) {
    await dropStorage(env, rows);
    throw e;
  }
}

// --- parts ---------------------------------------------------------------------------------------

async function putPart(request, env, id, role, partText, feeder) {
  await requireToken(request, env);
  const what = `Part ${quote(partText)} of ${role}`;
  checkDeclaredLength(request, env, what);
  const db = env.DB;
  const s = await requireSession(db, id, { parts: false });
  if (s.status !== "open") throw new HttpError(409, `Upload session ${id} is ${s.status}, not open: parts can no longer be sent`);
  const f = s.files.find((x) => x.role === role);
  if (!f) throw new HttpError(400, `Upload session ${id} has no file ${quote(role)} (it has ${s.files.map((x) => x.role).join(", ")})`);
  const count = partCount(f.size, s.part_bytes);
  const n = /^[0-9]{1,5}$/.test(partText) ? Number(partText) : NaN;
  if (!(n >= 1 && n <= count)) throw new HttpError(400, `No part ${quote(partText)} of ${role}: its ${f.size} bytes are parts 1 to ${count} of ${s.part_bytes} bytes`);
  const expected = partSize(f.size, s.part_bytes, n);
  const sizeError = (got) =>
    new HttpError(400, `Part ${n} of ${role} must be exactly ${expected} bytes (partBytes ${s.part_bytes}; the last part is the remainder of ${f.size}), got ${got}`);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) !== expected) throw sizeError(`Content-Length ${declared}`);
  if (!request.body) throw sizeError("no body");

  const countRequest = counter(env, what);
  let seen = 0;
  const countBytes = (n) => {
    seen = countRequest(n);
    if (seen > expected) throw sizeError(`more than ${expected} bytes`);
  };
  let uploaded;
  let stored = false;
  let ticket = null;
  try {
    if (feeder) {
      const gate = gateTarget(env);
      const early = gate === referenceTarget() ? earlyReject : () => false;
      ticket = await feeder.admit(feedOrder(s), role, n, {
        newInspection: () => sessionInspection(env, s),
        loadStored: async () => (await db.prepare("SELECT role, part FROM upload_parts WHERE session_id = ?").bind(id).all()).results.map((r) => `${r.role}/${r.part}`),
        early,
      });
    }
    // Into R2 through a stream of the length R2 needs (which also fails a body of unknown
    // length that turns out shorter or longer); with a ticket, each piece is also read by the
    // core, while R2 takes it.
    const fixed = new FixedLengthStream(expected);
    const upload = multipart(env, f).uploadPart(n, fixed.readable);
    upload.catch(() => {});
    const writer = fixed.writable.getWriter();
    try {
      for await (const chunk of readLarge(request.body)) {
        countBytes(chunk.byteLength);
        const wrote = writer.write(chunk);
        ticket?.push(chunk);
        await wrote;
      }
      if (seen !== expected) throw sizeError(`${seen} bytes`);
      await writer.close();
    } catch (e) {
      await writer.abort(e).catch(() => {});
      throw e instanceof HttpError || e instanceof CoreError ? e : new HttpError(400, `Part ${n} of ${role}: the request body ended with an error (${e?.message ?? e})`);
    }
    uploaded = await upload.catch((e) => {
      throw new HttpError(502, `Storing part ${n} of ${role} failed: ${e?.message ?? e}`);
    });
    stored = true;
    ticket?.done(uploaded.etag);
  } finally {
    if (!stored) ticket?.fail();
    feeder?.release(role, n, stored);
  }
  const expires = now() + sessionTtl(env);
  try {
    const [, , stored] = await db.batch([
      db
        .prepare("INSERT INTO upload_parts (session_id, role, part, size, etag) VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, role, part) DO UPDATE SET size = excluded.size, etag = excluded.etag")
        .bind(id, role, n, expected, uploaded.etag),
      db.prepare("UPDATE upload_sessions SET expires_at = ? WHERE id = ? AND status = 'open'").bind(expires, id),
      db.prepare("SELECT part FROM upload_parts WHERE session_id = ? AND role = ? ORDER BY part").bind(id, role),
    ]);
    return json(200, { role, part: n, size: expected, stored: stored.results.map((r) => r.part) });
  } catch (e) {
    // The session went away meanwhile (aborted, swept): its files' rows are gone.
    throw new HttpError(409, `Upload session ${id} is no longer open: ${e?.message ?? e}`);
  }
}

// --- status, delete ------------------------------------------------------------------------------

function finishedAnswer(s) {
  const { body, headers } = JSON.parse(s.result);
  return { status: s.result_status, body, headers };
}

async function sessionStatus(request, env, id, feeder) {
  await requireToken(request, env);
  const s = await requireSession(env.DB, id);
  const view = sessionView(s);
  // How much of the image the core has read in order while the parts arrived (null: none of
  // it; `complete` reads from R2 what the core has not read).
  if (s.status === "open") view.validatedBytes = feeder?.validatedBytes ?? null;
  if (s.status === "complete") return json(200, { ...view, image: finishedAnswer(s).body });
  if (s.status === "rejected") {
    const a = finishedAnswer(s);
    return json(422, { ...view, error: a.body.error, report: a.body }, a.headers);
  }
  return json(200, view);
}

async function deleteSession(request, env, id, feeder) {
  await requireToken(request, env);
  feeder?.reset();
  const db = env.DB;
  const s = await requireSession(db, id);
  if (s.status === "validating") throw new HttpError(409, `Upload session ${id} is being validated; ask again when it is complete or rejected`);
  if (s.status === "open") await dropStorage(env, s.files);
  await db.batch([
    db.prepare("DELETE FROM upload_parts WHERE session_id = ?").bind(id),
    db.prepare("DELETE FROM upload_files WHERE session_id = ?").bind(id),
    db.prepare("DELETE FROM upload_sessions WHERE id = ? AND status != 'validating'").bind(id),
  ]);
  return new Response(null, { status: 204 });
}

// --- complete ------------------------------------------------------------------------------------

async function completeSession(request, env, ctx, id, feeder) {
  await requireToken(request, env);
  const db = env.DB;
  const origin = publicOrigin(request, env);
  const t0 = Date.now();
  for (;;) {
    const s = await requireSession(db, id);
    if (s.status === "complete" || s.status === "rejected") {
      const a = finishedAnswer(s);
      return json(a.status, a.body, a.headers);
    }
    if (s.status === "aborted") throw new HttpError(409, `Upload session ${id} was aborted (it expired unfinished); create a new one`);
    const runner = crypto.randomUUID();
    let took = false;
    if (s.status === "open") {
      const missing = {};
      for (const f of s.files) {
        const have = new Set(s.parts.filter((p) => p.role === f.role).map((p) => p.part));
        const lack = [];
        for (let n = 1; n <= partCount(f.size, s.part_bytes); n++) if (!have.has(n)) lack.push(n);
        if (lack.length) missing[f.role] = lack;
      }
      if (Object.keys(missing).length) {
        const e = new HttpError(409, `Upload session ${id} is missing parts: ${Object.entries(missing).map(([r, l]) => `${r} ${l.length > 10 ? `${l.slice(0, 10).join(", ")}, …` : l.join(", ")}`).join("; ")}`);
        e.extra = { missing };
        throw e;
      }
      const r = await db
        .prepare("UPDATE upload_sessions SET status = 'validating', runner = ?, heartbeat_at = ? WHERE id = ? AND status = 'open'")
        .bind(runner, Date.now(), id)
        .run();
      took = r.meta.changes === 1;
    } else if (s.status === "validating") {
      if (Date.now() - (s.heartbeat_at ?? 0) > STALE_MS) {
        // The invocation that was validating is gone (killed, or its client left and its time ran out).
        const r = await db
          .prepare("UPDATE upload_sessions SET runner = ?, heartbeat_at = ? WHERE id = ? AND status = 'validating' AND runner IS ?")
          .bind(runner, Date.now(), id, s.runner)
          .run();
        took = r.meta.changes === 1;
      } else if (Date.now() - t0 > WAIT_MS) {
        return json(202, sessionView(s));
      } else {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
    }
    if (!took) continue; // someone else changed it first: look again
    // The validation must finish (or clean up) even if the client goes away.
    const p = validateSession(env, id, runner, origin, feeder);
    ctx.waitUntil(p.catch(() => {}));
    const a = await p;
    return json(a.status, a.body, a.headers);
  }
}

class LostRun extends Error {}

/**
 * Assembles the session's objects in R2, streams through the core what the part feed has not
 * read (all of it without a feed) and settles the upload. Owned by `runner` (D1); gives up
 * silently if another invocation took the validation over.
 */
async function validateSession(env, id, runner, origin, feeder) {
  const db = env.DB;
  const s = await requireSession(db, id);
  let last = Date.now();
  const beat = async (force = false) => {
    if (!force && Date.now() - last < HEARTBEAT_MS) return;
    last = Date.now();
    const r = await db.prepare("UPDATE upload_sessions SET heartbeat_at = ? WHERE id = ? AND runner = ?").bind(last, id, runner).run();
    if (r.meta.changes !== 1) throw new LostRun();
  };
  const finish = async (status, body, headers = {}) => {
    const state = status === 422 ? "rejected" : "complete";
    const [r] = await db.batch([
      db
        .prepare("UPDATE upload_sessions SET status = ?, result_status = ?, result = ?, expires_at = ?, runner = NULL, heartbeat_at = NULL WHERE id = ? AND runner = ?")
        .bind(state, status, JSON.stringify({ body, headers }), now() + sessionTtl(env), id, runner),
      db.prepare("DELETE FROM upload_parts WHERE session_id = ? AND EXISTS (SELECT 1 FROM upload_sessions WHERE id = ? AND status = ?)").bind(id, id, state),
      db.prepare("DELETE FROM upload_files WHERE session_id = ? AND EXISTS (SELECT 1 FROM upload_sessions WHERE id = ? AND status = ?)").bind(id, id, state),
    ]);
    if (r.meta.changes !== 1) throw new LostRun();
    return { status, body, headers };
  };
  const cleanup = () => dropStorage(env, s.files);

  let inspection = null;
  try {
    const gate = gateTarget(env);
    // Re-sending an image that is already stored: a no-op (as a repeated upload; aliases added).
    if (s.fingerprint) {
      const image = await getImage(db, s.fingerprint);
      if (image) {
        feeder?.reset();
        await cleanup();
        await addAliases(db, image, s.aliases);
        return await finish(200, storedAnswer(origin, image, s.aliases));
      }
    }

    // Assemble each file from its parts (already assembled if this is a takeover).
    for (const f of s.files) {
      const parts = s.parts.filter((p) => p.role === f.role).map((p) => ({ partNumber: p.part, etag: p.etag }));
      // A takeover finds the object already assembled: complete() then fails and the head decides.
      const failed = await multipart(env, f).complete(parts).then(() => null, (e) => e);
      const head = await env.IMAGES.head(f.r2_key);
      if (!head && failed) throw new HttpError(502, `R2 could not assemble ${f.role} from its ${parts.length} parts: ${failed?.message ?? failed}`);
      if (!head || head.size !== f.size) {
        throw new HttpError(502, `The assembled ${f.role} is ${head?.size ?? "no"} bytes, the session declared ${f.size}`);
      }
      await beat();
    }

    // The core's read of the parts as they arrived, if it read the very parts assembled.
    const resume = feeder?.take(s.parts) ?? null;
    inspection = resume ? resume.inspection : sessionInspection(env, s);
    const early = gate === referenceTarget();
    let rejectedEarly = resume?.rejectedEarly ?? false;
    for (let i = resume?.file ?? 0; i < s.files.length && !rejectedEarly; i++) {
      const f = s.files[i];
      const offset = i === resume?.file ? resume.offset : 0;
      if (f.role !== "unified" && f.role !== "metadata" && !resume?.rootfsStarted) inspection.startRootfs();
      if (offset === f.size) continue;
      const obj = await env.IMAGES.get(f.r2_key, offset ? { range: { offset } } : undefined);
      if (!obj) throw new HttpError(502, `The assembled ${f.role} (${f.r2_key}) is missing from R2`);
      rejectedEarly = await feed(inspection, beating(readLarge(obj.body, { reuse: true }), beat), { early });
      if (rejectedEarly) await obj.body.cancel().catch(() => {});
    }
    const report = rejectedEarly ? inspection.finishEarly() : inspection.finish();
    inspection = null;
    await beat(true);
    const keys = Object.fromEntries(s.files.map((f) => [storageRole(f.role), f.r2_key]));
    const a = await settleUpload(env, { report, gate, uploadId: id, keys, aliases: s.aliases, origin, cleanup, expectFingerprint: s.fingerprint });
    if (a.status === 422) {
      const v = report.verdicts?.[gate];
      const error =
        a.outcome === "fingerprint-mismatch"
          ? `The parts assemble to an image with fingerprint ${report.fingerprint}; the session declared ${s.fingerprint}`
          : uploadVerdict(v) === "accepted"
            ? `The image is not stored: ${a.outcome}`
            : `The image is not stored: ${v?.error ?? v?.reason ?? a.outcome}`;
      return await finish(422, { ...a.body, error }, a.headers);
    }
    return await finish(a.status, a.body, a.headers);
  } catch (e) {
    inspection?.free();
    if (e instanceof LostRun) return { status: 202, body: { id, status: "validating" }, headers: {} };
    // Storage or core trouble: leave the session validating with a dead heartbeat, so that the
    // next `complete` takes it over at once (the assembled objects stay for it).
    await db.prepare("UPDATE upload_sessions SET heartbeat_at = 0 WHERE id = ? AND runner = ?").bind(id, runner).run().catch(() => {});
    if (e instanceof HttpError || e instanceof CoreError) throw e;
    throw new HttpError(500, `Validating upload session ${id} failed: ${e?.message ?? e}; POST …/complete again to retry`);
  }
}

async function* beating(chunks, beat) {
  for await (const c of chunks) {
    await beat();
    yield c;
  }
}

// --- sweep ---------------------------------------------------------------------------------------

/**
 * The scheduled sweep's part for sessions: open sessions past `expires_at` (SESSION_TTL_SECONDS
 * after their last stored part) are aborted — R2 multipart uploads aborted, part and file rows
 * deleted, the row kept as `aborted` for another TTL; validations without a heartbeat for a TTL
 * are aborted the same way (their assembled objects deleted); finished sessions past
 * `expires_at` are deleted. Returns the counts.
 */
export async function sweepSessions(env) {
  const db = env.DB;
  const t = now();
  const ttl = sessionTtl(env);
  // Finished sessions first, so that one aborted below keeps its row until the next sweep.
  const gone = await db.prepare("DELETE FROM upload_sessions WHERE status IN ('complete', 'rejected', 'aborted') AND expires_at <= ?").bind(t).run();
  const { results } = await db
    .prepare("SELECT id FROM upload_sessions WHERE (status = 'open' AND expires_at <= ?) OR (status = 'validating' AND COALESCE(heartbeat_at, 0) <= ?)")
    .bind(t, Date.now() - Math.max(ttl * 1000, STALE_MS))
    .all();
  let aborted = 0;
  for (const { id } of results) {
    const s = await loadSession(db, id);
    if (!s) continue;
    const claim = await db
      .prepare("UPDATE upload_sessions SET status = 'aborted', runner = NULL, expires_at = ?, result_status = 409, result = ? WHERE id = ? AND status = ? AND runner IS ?")
      .bind(t + ttl, JSON.stringify({ body: { error: `Upload session ${id} was aborted: it expired unfinished` }, headers: {} }), id, s.status, s.runner)
      .run();
    if (claim.meta.changes !== 1) continue;
    await dropStorage(env, s.files);
    await db.batch([
      db.prepare("DELETE FROM upload_parts WHERE session_id = ?").bind(id),
      db.prepare("DELETE FROM upload_files WHERE session_id = ?").bind(id),
    ]);
    aborted++;
  }
  return { aborted, deleted: gone.meta.changes };
}

/** Upload ids whose objects the orphan sweep must keep: sessions being validated. */
export async function validatingSessionIds(db) {
  const { results } = await db.prepare("SELECT id FROM upload_sessions WHERE status = 'validating'").all();
  return results.map((r) => r.id);
}

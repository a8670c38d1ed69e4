/**
 * The lxdimg edge worker: one deployment serves the drag-and-drop page (static assets from www/),
 * answers LXD/Incus URL imports, serves image bytes from R2, publishes a simplestreams index from
 * D1, and takes uploads that the wasm core validates on the way in.
 *
 * Routes (static files of the page are matched before the worker runs):
 *   GET|HEAD /{alias} | /{fingerprint}          URL-import answer, or a page for a browser
 *   GET|HEAD /images/{fp}/{unified|metadata|rootfs}   the bytes (200 / 206 / 416, ETag)
 *   GET|HEAD /streams/v1/index.json | images.json    simplestreams
 *   GET  /api/images, /api/images/{fp}         JSON listing
 *   POST /api/images?alias=A                   upload (bearer token), see upload.js
 *   POST /api/inspect                          validate only, store nothing (bearer token)
 *   DELETE /api/images/{fp}                    delete an image (bearer token)
 *   DELETE /api/aliases/{alias}[?architecture=] remove an alias (bearer token)
 *   POST /api/uploads, PUT /api/uploads/{id}/{role}/{part}, GET|DELETE /api/uploads/{id},
 *   POST /api/uploads/{id}/complete            upload sessions (bearer token), see sessions.js;
 *                                              a session's routes run in its Durable Object
 *   GET  /api/version
 *
 * Every request body is capped at MAX_REQUEST_BYTES (limits.js), as Cloudflare caps it.
 */
import { handleAnswer } from "./answer.js";
import { serveFile, ROLES } from "./serve.js";
import { handleStreams } from "./streams.js";
import { handleUpload, uploadLimit } from "./upload.js";
import { configureAnswerCache, deleteAlias, deleteImage, getImage, listImages, referencedUploadIds } from "./db.js";
import { HttpError, json, publicOrigin, requireToken, text } from "./http.js";
import { CoreError, coreMemory, coreVersion } from "./core.js";
import { checkDeclaredLength, partBytes, requestLimit } from "./limits.js";
import { handleSessions, sweepSessions, validatingSessionIds } from "./sessions.js";
import { FINGERPRINT, quote } from "./names.js";
import { imageUrl } from "./answer.js";

/** The Durable Object class of upload sessions (binding UPLOAD_SESSIONS in wrangler.jsonc). */
export { UploadSession } from "./session-object.js";

function methodNotAllowed(allow) {
  return text(405, `Method not allowed (allowed: ${allow})`, { allow });
}

function publicImage(img, origin) {
  const { upload_id, files, ...rest } = img;
  return {
    ...rest,
    files: files.map(({ r2_key, ...f }) => ({ ...f, url: `${origin}/images/${img.fingerprint}/${f.role}` })),
    url: img.format === "unified" ? imageUrl(origin, img.fingerprint) : null,
  };
}

async function route(request, env, ctx) {
  const url = new URL(request.url);
  let path;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return text(400, `Malformed URL path: ${quote(url.pathname)}`);
  }
  const method = request.method;
  const read = method === "GET" || method === "HEAD";
  const origin = publicOrigin(request, env);
  // The per-request cap, for every route (uploads check it themselves, after the token).
  if (!path.startsWith("/api/uploads") && path !== "/api/images" && path !== "/api/images/" && path !== "/api/inspect") {
    checkDeclaredLength(request, env);
  }

  if (path === "/api/uploads" || path.startsWith("/api/uploads/")) {
    return handleSessions(request, env, ctx, path);
  }
  if (path === "/api/images" || path === "/api/images/") {
    if (method === "POST" || method === "PUT") {
      // The upload must finish (or clean up) even if the client goes away mid-body.
      const p = handleUpload(request, env);
      ctx.waitUntil(p.catch(() => {}));
      return p;
    }
    if (!read) return methodNotAllowed("GET, HEAD, POST");
    const images = await listImages(env.DB);
    return json(200, { images: images.map((i) => publicImage(i, origin)) });
  }
  if (path === "/api/inspect") {
    if (method !== "POST") return methodNotAllowed("POST");
    return handleUpload(request, env, { dryRun: true });
  }
  if (path === "/api/version") {
    return json(200, {
      core: coreVersion(),
      max_upload_bytes: uploadLimit(env),
      maxRequestBytes: requestLimit(env),
      partBytes: partBytes(env),
      core_memory_bytes: coreMemory(),
    });
  }
  let m;
  if ((m = /^\/api\/images\/([^/]+)$/.exec(path))) {
    const fp = m[1].toLowerCase();
    if (!FINGERPRINT.test(fp)) return text(400, `Not a fingerprint (64 hex digits): ${quote(m[1])}`);
    if (read) {
      const img = await getImage(env.DB, fp);
      return img ? json(200, publicImage(img, origin)) : text(404, `No image with fingerprint ${fp}`);
    }
    if (method === "DELETE") {
      await requireToken(request, env);
      const keys = await deleteImage(env.DB, fp);
      if (keys.length === 0) return text(404, `No image with fingerprint ${fp}`);
      await env.IMAGES.delete(keys);
      return json(200, { deleted: fp });
    }
    return methodNotAllowed("GET, HEAD, DELETE");
  }
  if ((m = /^\/api\/aliases\/(.+)$/.exec(path))) {
    if (method !== "DELETE") return methodNotAllowed("DELETE");
    await requireToken(request, env);
    const n = await deleteAlias(env.DB, m[1], url.searchParams.get("architecture"));
    return n ? json(200, { deleted: m[1], rows: n }) : text(404, `No alias ${quote(m[1])}`);
  }
  if (path.startsWith("/api/")) return text(404, `No API endpoint ${quote(path)}`);

  if ((m = /^\/images\/([0-9a-fA-F]{64})\/([a-z]+)$/.exec(path))) {
    if (!read) return methodNotAllowed("GET, HEAD");
    if (!ROLES.has(m[2])) return text(404, `No such file: ${quote(m[2])} (unified, metadata or rootfs)`);
    return serveFile(request, env, m[1].toLowerCase(), m[2]);
  }
  if ((m = /^\/streams\/v1\/(index\.json|images\.json)$/.exec(path))) {
    if (!read) return methodNotAllowed("GET, HEAD");
    return handleStreams(request, env, m[1]);
  }

  const name = path.replace(/^\/+|\/+$/g, "");
  if (name !== "" && read) {
    const answer = await handleAnswer(request, env, name);
    if (answer) return answer;
  }
  if (env.ASSETS && read) {
    const asset = await env.ASSETS.fetch(request);
    if (asset.status !== 404) return asset;
  }
  return text(404, `Not found: ${quote(path)}`);
}

/**
 * The daily sweep: aborts upload sessions left unfinished (sessions.js), then deletes R2 objects
 * of uploads that never made it into the index (a worker evicted mid-upload).
 */
export async function sweep(env, olderThanMs = 24 * 3600 * 1000) {
  await sweepSessions(env);
  const keep = await referencedUploadIds(env.DB);
  for (const id of await validatingSessionIds(env.DB)) keep.add(id);
  const cutoff = Date.now() - olderThanMs;
  let cursor;
  const doomed = [];
  do {
    const page = await env.IMAGES.list({ prefix: "uploads/", cursor });
    for (const o of page.objects) {
      const id = o.key.split("/")[1];
      if (!keep.has(id) && o.uploaded.getTime() <= cutoff) doomed.push(o.key);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  for (let i = 0; i < doomed.length; i += 1000) await env.IMAGES.delete(doomed.slice(i, i + 1000));
  return doomed.length;
}

export default {
  async fetch(request, env, ctx) {
    configureAnswerCache(env);
    try {
      return await route(request, env, ctx);
    } catch (e) {
      if (e instanceof HttpError) return text(e.status, e.message, e.headers);
      if (e instanceof CoreError) return text(e.status, e.message);
      console.error("lxdimg worker:", e?.stack ?? e);
      return text(500, `Internal error: ${e?.message ?? e}`);
    }
  },
  async scheduled(_event, env, ctx) {
    const after = Number(env.SWEEP_AFTER_SECONDS ?? 86400);
    ctx.waitUntil(sweep(env, (Number.isFinite(after) && after >= 0 ? after : 86400) * 1000));
  },
};

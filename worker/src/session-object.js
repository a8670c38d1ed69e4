/**
 * `UploadSession`, the Durable Object of one upload session (binding `UPLOAD_SESSIONS`, named by
 * the session id): every request of the session after its creation runs here, so that one
 * object sees all its parts and can feed them through the core in order as they arrive
 * (partfeed.js). What it holds in memory is only that feed; the session itself (status, files,
 * parts, answer) stays in D1 and R2, so an object evicted mid-session loses nothing but time:
 * `complete` then reads the image back from R2 (sessions.js). It uses no Durable Object storage.
 */
import { DurableObject } from "cloudflare:workers";
import { handleSessions } from "./sessions.js";
import { PartFeeder } from "./partfeed.js";
import { json } from "./http.js";
import { quote } from "./names.js";

export class UploadSession extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.feeder = new PartFeeder();
  }

  async fetch(request) {
    let path;
    try {
      path = decodeURIComponent(new URL(request.url).pathname);
    } catch {
      return json(400, { error: `Malformed URL path: ${quote(new URL(request.url).pathname)}` });
    }
    if (!path.startsWith("/api/uploads/")) return json(404, { error: `No upload route ${quote(path)}` });
    return handleSessions(request, this.env, this.ctx, path, this.feeder);
  }
}

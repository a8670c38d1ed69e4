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
import { drain } from "./bodyread.js";
import { requestLimit } from "./limits.js";

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
    const response = await handleSessions(request, this.env, this.ctx, path, this.feeder);
    // A part refused before its body was read: the body is read and dropped before the answer,
    // as the runtime does for a worker's own request (the client's connection is then free for
    // its next request; a body left unread here would hold it) — unless the client waits for
    // `100 Continue` before sending it, or declared more than the cap (refused unread).
    if (request.body && !request.bodyUsed) {
      const limit = requestLimit(this.env);
      const declared = request.headers.get("content-length");
      const waiting = /100-continue/i.test(request.headers.get("expect") ?? "");
      if (!waiting && !(declared !== null && Number(declared) > limit)) await drain(request.body, limit);
      else request.body.cancel().catch(() => {});
    }
    return response;
  }
}

/**
 * Reads a request body in large pieces. A body arrives from the runtime in chunks of a few KiB;
 * handing each one to JS (and then to the core) costs more than the bytes themselves. workerd's
 * BYOB reader has `readAtLeast(n, view)`, which fills the view with at least n bytes (fewer only
 * at the end) before resolving: one JS turn per ~half MiB instead of per 4 KiB. Elsewhere (Node,
 * for the unit tests) it falls back to the default reader.
 *
 * `reuse`: the caller is done with each yielded view when it asks for the next one, so one
 * buffer serves the whole body. Without it every piece is a fresh buffer the caller may keep.
 */
export const READ_SIZE = 1 << 20;
export const READ_MIN = 1 << 19;

export async function* readLarge(stream, { reuse = false } = {}) {
  let reader = null;
  try {
    reader = stream.getReader({ mode: "byob" });
  } catch {
    reader = null;
  }
  if (!reader || typeof reader.readAtLeast !== "function") {
    if (reader) reader.releaseLock();
    const r = stream.getReader();
    try {
      for (;;) {
        const { value, done } = await r.read();
        if (done) return;
        yield value instanceof Uint8Array ? value : new Uint8Array(value);
      }
    } finally {
      r.releaseLock();
    }
  }
  let buf = new Uint8Array(READ_SIZE);
  try {
    for (;;) {
      const { value, done } = await reader.readAtLeast(READ_MIN, buf);
      if (value && value.byteLength > 0) yield value;
      if (done) return;
      buf = reuse ? new Uint8Array(value.buffer) : new Uint8Array(READ_SIZE);
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Reads a body to its end and drops it (a body the answer does not need, read so that the
 * client's connection is free for its next request). Past `limit` bytes it stops and cancels
 * the rest; returns false then, true if the whole body was read (or the client went away).
 */
export async function drain(body, limit) {
  let n = 0;
  try {
    for await (const chunk of readLarge(body, { reuse: true })) {
      n += chunk.byteLength;
      if (n > limit) break;
    }
  } catch {
    return true; // the client went away
  }
  if (n <= limit) return true;
  await body.cancel().catch(() => {});
  return false;
}

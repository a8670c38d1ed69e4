/**
 * Streams bytes of unknown length into one R2 object with bounded memory.
 *
 * R2's `put` needs a body of known length; an upload (or one part of a multipart request) has
 * none until it ends. The sink fills a part buffer of `partSize` bytes; the first time it is full
 * it starts an R2 multipart upload and sends equal-sized parts (R2 requires every part but the
 * last to be the same size, ≥ 5 MiB), keeping at most one part in flight so that inspecting the
 * next part overlaps with storing the previous one. An object smaller than one part is a plain
 * `put` at `close()`. `abort()` leaves nothing behind: it aborts the multipart upload (R2 drops its
 * parts) or deletes the finished object.
 */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

export class R2Sink {
  constructor(bucket, key, { partSize = DEFAULT_PART_SIZE, contentType = "application/octet-stream" } = {}) {
    this.bucket = bucket;
    this.key = key;
    this.partSize = partSize;
    this.httpMetadata = { contentType };
    this.buf = new Uint8Array(partSize);
    this.fill = 0;
    this.size = 0;
    this.multipart = null;
    this.parts = [];
    this.inflight = null;
    this.done = false;
    this.aborted = false;
  }

  /** Appends bytes; resolves when they are buffered (waits for a previous part to be stored). */
  async write(chunk) {
    let off = 0;
    this.size += chunk.byteLength;
    while (off < chunk.byteLength) {
      const n = Math.min(this.partSize - this.fill, chunk.byteLength - off);
      this.buf.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === this.partSize) await this.#flushPart();
    }
  }

  async #flushPart() {
    if (!this.multipart) {
      this.multipart = await this.bucket.createMultipartUpload(this.key, { httpMetadata: this.httpMetadata });
    }
    if (this.inflight) await this.inflight;
    const body = this.buf;
    this.buf = new Uint8Array(this.partSize);
    this.fill = 0;
    const number = this.parts.length + 1;
    this.parts.push(null);
    this.inflight = this.multipart.uploadPart(number, body).then((p) => {
      this.parts[number - 1] = p;
    });
  }

  /** Stores the last bytes and completes the object. */
  async close() {
    if (this.multipart) {
      if (this.inflight) await this.inflight;
      if (this.fill > 0 || this.parts.length === 0) {
        const p = await this.multipart.uploadPart(this.parts.length + 1, this.buf.subarray(0, this.fill));
        this.parts.push(p);
      }
      await this.multipart.complete(this.parts);
    } else {
      await this.bucket.put(this.key, this.buf.subarray(0, this.fill), { httpMetadata: this.httpMetadata });
    }
    this.buf = null;
    this.done = true;
  }

  /** Removes whatever was stored. Safe to call more than once, and after `close()`. */
  async abort() {
    if (this.aborted) return;
    this.aborted = true;
    this.buf = null;
    if (this.inflight) await this.inflight.catch(() => {});
    if (this.done) {
      await this.bucket.delete(this.key);
    } else if (this.multipart) {
      await this.multipart.abort().catch(() => {});
      // An abort racing a completed upload: make sure no object remains.
      await this.bucket.delete(this.key).catch(() => {});
    }
  }
}

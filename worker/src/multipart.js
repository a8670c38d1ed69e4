/**
 * A streaming `multipart/form-data` reader (RFC 7578), for split-image uploads in the shape LXD's
 * client sends them (facts §3): part `metadata`, then part `rootfs` (container) or `rootfs.img`
 * (virtual machine). Part bodies are handed out chunk by chunk and never buffered whole; memory
 * is one input chunk plus the delimiter length.
 */
import { readLarge } from "./bodyread.js";

export class MultipartError extends Error {
  constructor(message) {
    super(message);
    this.name = "MultipartError";
  }
}

const MAX_HEADERS = 16 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();
const CRLFCRLF = enc.encode("\r\n\r\n");

/**
 * The boundary parameter of a `multipart/form-data` content type, or null. Its length is not
 * checked here: see MAX_BOUNDARY.
 */
export function multipartBoundary(contentType) {
  if (!contentType || !/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]+)"|([^\s;"]+))/i.exec(contentType);
  return m ? m[1] ?? m[2] : null;
}

/** RFC 2046 §5.1.1: a boundary is 1 to 70 characters. */
export const MAX_BOUNDARY = 70;

function concat(a, b) {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** First index of `needle` in `hay` at or after `from`, or -1. */
function indexOf(hay, needle, from = 0) {
  const first = needle[0];
  const last = hay.byteLength - needle.byteLength;
  let i = from;
  while (i <= last) {
    i = hay.indexOf(first, i);
    if (i < 0 || i > last) return -1;
    let j = 1;
    while (j < needle.byteLength && hay[i + j] === needle[j]) j++;
    if (j === needle.byteLength) return i;
    i++;
  }
  return -1;
}

function parseHeaders(text) {
  const headers = new Map();
  for (const line of text.split("\r\n")) {
    const c = line.indexOf(":");
    if (c <= 0) throw new MultipartError(`Invalid multipart image: malformed part header ${JSON.stringify(line.slice(0, 80))}`);
    headers.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
  }
  const cd = headers.get("content-disposition") ?? "";
  if (!/^form-data\s*(;|$)/i.test(cd)) throw new MultipartError("Invalid multipart image: part without Content-Disposition: form-data");
  const param = (p) => {
    const m = new RegExp(`;\\s*${p}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${p}=([^;\\s]+)`, "i").exec(cd);
    return m ? (m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]) : null;
  };
  return { name: param("name"), filename: param("filename"), headers };
}

/**
 * Reads parts from `stream` (a byte ReadableStream). Usage:
 * ```
 * const mp = new MultipartReader(stream, boundary);
 * for (let part; (part = await mp.next()); ) for await (const chunk of part.body()) ...
 * ```
 * A part's body must be consumed (or skipped with `next()`, which drains it) before the next.
 * `onBytes(n)` sees every raw input chunk size (for size limits).
 */
export class MultipartReader {
  constructor(stream, boundary, { onBytes = () => {} } = {}) {
    this.stream = stream;
    this.pieces = readLarge(stream);
    this.delim = enc.encode(`\r\n--${boundary}`);
    // The first delimiter has no leading CRLF: pretend the body starts with one.
    this.buf = enc.encode("\r\n");
    this.eof = false;
    this.state = "preamble"; // preamble | headers | body | end
    this.current = null;
    this.onBytes = onBytes;
  }

  async #more() {
    if (this.eof) return false;
    const { value: chunk, done } = await this.pieces.next();
    if (done) {
      this.eof = true;
      return false;
    }
    this.onBytes(chunk.byteLength);
    this.buf = concat(this.buf, chunk);
    return true;
  }

  /** Skips to just after the next delimiter; false at end of input. */
  async #skipToDelimiter() {
    for (;;) {
      const i = indexOf(this.buf, this.delim);
      if (i >= 0) {
        this.buf = this.buf.subarray(i + this.delim.byteLength);
        return true;
      }
      const keep = Math.min(this.buf.byteLength, this.delim.byteLength - 1);
      this.buf = this.buf.subarray(this.buf.byteLength - keep);
      if (!(await this.#more())) return false;
    }
  }

  /** The next part `{name, filename, headers, body()}`, or null after the closing delimiter. */
  async next() {
    if (this.state === "end") return null;
    if (this.state === "body") {
      // Drain the unread rest of the current part.
      for await (const _ of this.current.body()) {
        // discard
      }
    }
    if (this.state === "preamble") {
      if (!(await this.#skipToDelimiter())) throw new MultipartError("Invalid multipart image: no boundary found in the body");
    }
    // After a delimiter: "--" ends the body, else optional blanks then CRLF, then headers.
    while (this.buf.byteLength < 2) if (!(await this.#more())) throw new MultipartError("Invalid multipart image: body ends after a boundary");
    if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
      this.state = "end";
      await this.cancel();
      return null;
    }
    let end;
    const tooLong = () => new MultipartError(`Invalid multipart image: part headers longer than ${MAX_HEADERS} bytes`);
    for (;;) {
      end = indexOf(this.buf, CRLFCRLF);
      if (end >= 0) break;
      if (this.buf.byteLength > MAX_HEADERS) throw tooLong();
      if (!(await this.#more())) throw new MultipartError("Invalid multipart image: body ends inside part headers");
    }
    // (A long block can arrive whole in one read: the limit holds either way.)
    if (end > MAX_HEADERS) throw tooLong();
    const text = dec.decode(this.buf.subarray(0, end)).replace(/^[ \t]*\r\n/, "");
    this.buf = this.buf.subarray(end + 4);
    const part = parseHeaders(text);
    this.state = "body";
    const self = this;
    let finished = false;
    part.body = async function* body() {
      if (finished) return;
      for (;;) {
        const i = indexOf(self.buf, self.delim);
        if (i >= 0) {
          const out = self.buf.subarray(0, i);
          self.buf = self.buf.subarray(i + self.delim.byteLength);
          finished = true;
          self.state = "delimited";
          if (out.byteLength) yield out;
          return;
        }
        const emit = self.buf.byteLength - (self.delim.byteLength - 1);
        if (emit > 0) {
          const out = self.buf.subarray(0, emit);
          self.buf = self.buf.subarray(emit);
          yield out;
        }
        if (!(await self.#more())) throw new MultipartError(`Invalid multipart image: body ends inside part ${JSON.stringify(part.name)}`);
      }
    };
    this.current = part;
    return part;
  }

  /** Stops reading: the rest of the body (an epilogue, ignored parts) is discarded. */
  async cancel() {
    await this.pieces.return?.().catch?.(() => {});
    await this.stream.cancel().catch(() => {});
  }
}

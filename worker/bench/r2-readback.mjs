// Where the wall time of an upload session's `complete` goes on the local stack (make bench-worker,
// bench/run.sh): reading an object back from Miniflare's local R2, in workerd, the way
// `complete` reads it (src/bodyread.js: BYOB reads of ½–1 MiB), with nothing else in the
// worker. The same bytes stored as one part (as `put` stores them) and as a multipart object of
// 64 MiB parts (as an upload session stores them), read whole and as 16 MiB ranged gets with the
// next one requested while the current one is read. Prints one JSON line per way:
//   {"kind":"readback","object":…,"read":…,"bytes":…,"wall_ms":…,"cpu_ms":…,"cpu_ms_per_mb":…}
// CPU is the whole workerd process's (Miniflare's R2 emulation runs in it, on the same thread as
// the worker). node r2-readback.mjs FILE
import { Miniflare } from "miniflare";
import { readFileSync } from "node:fs";
import path from "node:path";
import { WORKER, cpuMs, workerdPids } from "../test/harness.js";

const file = process.argv[2];
if (!file) throw new Error("usage: node r2-readback.mjs FILE");
const data = readFileSync(file);
const PART = 64 << 20;
const RANGE = 16 << 20;
const RUNS = Number(process.env.RUNS || 3);

const script = `
import { readLarge } from "./bodyread.js";
async function drain(stream) {
  let n = 0;
  for await (const c of readLarge(stream, { reuse: true })) n += c.byteLength;
  return n;
}
/** A body of the length the request declares (R2 needs a known length). */
function sized(req) {
  const fixed = new FixedLengthStream(Number(req.headers.get("x-length")));
  req.body.pipeTo(fixed.writable);
  return fixed.readable;
}
export default {
  async fetch(req, env) {
    const q = new URL(req.url).searchParams;
    const key = q.get("key");
    switch (q.get("op")) {
      case "put":
        await env.B.put(key, sized(req));
        return Response.json({});
      case "create":
        return Response.json({ id: (await env.B.createMultipartUpload(key)).uploadId });
      case "part": {
        const p = await env.B.resumeMultipartUpload(key, q.get("id")).uploadPart(Number(q.get("n")), sized(req));
        return Response.json({ partNumber: p.partNumber, etag: p.etag });
      }
      case "complete":
        await env.B.resumeMultipartUpload(key, q.get("id")).complete(await req.json());
        return Response.json({});
    }
    const t0 = Date.now();
    let n = 0;
    if (q.get("read") === "whole") {
      n = await drain((await env.B.get(key)).body);
    } else {
      const size = (await env.B.head(key)).size;
      const range = Number(q.get("range"));
      const get = (offset) => env.B.get(key, { range: { offset, length: Math.min(range, size - offset) } });
      let next = get(0);
      for (let off = 0; off < size; off += range) {
        const obj = await next;
        if (off + range < size) next = get(off + range);
        n += await drain(obj.body);
      }
    }
    return Response.json({ bytes: n, ms: Date.now() - t0 });
  },
};`;

const mf = new Miniflare({
  modules: [
    { type: "ESModule", path: "/bench/index.js", contents: script },
    { type: "ESModule", path: "/bench/bodyread.js", contents: readFileSync(path.join(WORKER, "src/bodyread.js"), "utf8") },
  ],
  modulesRoot: "/bench",
  compatibilityDate: "2026-04-01",
  r2Buckets: ["B"],
});
try {
  const before = new Set(workerdPids());
  const url = (await mf.ready).href;
  const pids = workerdPids().filter((p) => !before.has(p));
  const call = async (query, init = {}) => {
    const r = await mf.dispatchFetch(`${url}?${query}`, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`${query}: HTTP ${r.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
  const send = (query, body) => call(query, { method: "PUT", body, headers: { "x-length": String(body.length) } });

  await send("op=put&key=one", data);
  const { id } = await call("op=create&key=multi");
  const parts = [];
  for (let off = 0, n = 1; off < data.length; off += PART, n++) parts.push(await send(`op=part&key=multi&id=${id}&n=${n}`, data.subarray(off, off + PART)));
  await call(`op=complete&key=multi&id=${id}`, { method: "POST", body: JSON.stringify(parts) });

  const ways = [
    ["one part (put)", "one", "whole"],
    ["64 MiB parts (session)", "multi", "whole"],
    ["64 MiB parts (session)", "multi", "ranged"],
  ];
  for (const [object, key, read] of ways) {
    let best = null;
    for (let r = 0; r < RUNS; r++) {
      const c0 = cpuMs(pids);
      const t0 = performance.now();
      const a = await call(`key=${key}&read=${read}&range=${RANGE}`);
      const row = { wall_ms: performance.now() - t0, cpu_ms: cpuMs(pids) - c0, bytes: a.bytes };
      if (a.bytes !== data.length) throw new Error(`${object}, ${read}: read ${a.bytes} bytes of ${data.length}`);
      if (!best || row.cpu_ms < best.cpu_ms) best = row;
    }
    console.log(JSON.stringify({
      kind: "readback",
      object,
      read: read === "whole" ? "one get" : `${RANGE >> 20} MiB ranged gets, one ahead`,
      bytes: best.bytes,
      wall_ms: best.wall_ms,
      cpu_ms: best.cpu_ms,
      cpu_ms_per_mb: best.cpu_ms / (best.bytes / 1e6),
    }));
  }
} finally {
  await mf.dispose();
}

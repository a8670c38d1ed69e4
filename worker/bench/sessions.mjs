// Upload-session benchmark (make bench-worker, bench/run.sh): starts the worker in workerd
// (Miniflare, measured on its own socket) and prints JSON lines:
//   {"kind":"throughput", ...}  the same file through POST /api/images (one request) and through
//                               an upload session (parts of PART_BYTES, JOBS in parallel, then
//                               complete), best of RUNS each, MB/s and the ratio; then the same
//                               with the client's uplink capped at each of RATES Mbit/s
//   {"kind":"paced", ...}       (the same bytes/s for both routes: a token bucket the session's
//                               parallel parts share), best of PACED_RUNS each
//   {"kind":"validate", ...}    per image and way of sending: workerd CPU time of the part
//                               requests (largest one, all) and of `complete`, CPU ms per MB of
//                               the whole session, peak RSS of the workerd process, the core's
//                               wasm memory. "in order": one part at a time, ascending — the core
//                               reads each part as it arrives (the session's Durable Object);
//                               "part 1 last": the others first, then part 1 — they are stored
//                               unread, and `complete` reads them back from R2 (the fallback)
// node sessions.mjs --throughput FILE [--validate NAME FILE [ROOTFS]]...
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { start, TOKEN } from "../test/harness.js";

const args = process.argv.slice(2);
const JOBS = Number(process.env.JOBS || 4);
const RUNS = Number(process.env.RUNS || 3);
const RATES = (process.env.RATES ?? "100,1000").split(",").filter(Boolean).map(Number); // Mbit/s
const PACED_RUNS = Number(process.env.PACED_RUNS || 1);
const auth = { authorization: `Bearer ${TOKEN}` };
const T0 = performance.now();
const log = (m) => process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(1)} s] ${m}\n`);

const w = await start({ MAX_UPLOAD_BYTES: String(8 * 1024 ** 3), MAX_REQUEST_BYTES: String(8 * 1024 ** 3), PART_BYTES: String(64 << 20) }, { direct: true });

/** A client uplink of `mbit` Mbit/s: a token bucket shared by every request that sends through
 * it (the session's parallel parts share one), bursts of at most BURST bytes. */
const BURST = 256 * 1024;
const CHUNK = 64 * 1024;
function uplink(mbit) {
  const rate = (mbit * 1e6) / 8 / 1000; // bytes per ms
  let next = performance.now(); // when the bucket's debt is paid
  return async (n) => {
    const now = performance.now();
    next = Math.max(next, now - BURST / rate) + n / rate;
    const wait = next - now;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
}

/** One request on its own connection (see test/sessions.test.js: no keep-alive); with `pace`,
 * the body is written CHUNK bytes at a time, each after the uplink lets it through. */
function request(method, p, body = null, headers = {}, pace = null) {
  return new Promise((resolve, reject) => {
    const req = http.request(w.directUrl + p, { method, agent: false, headers: { ...auth, ...headers, ...(body ? { "content-length": body.length } : {}) } }, (res) => {
      const bufs = [];
      res.on("data", (d) => bufs.push(d));
      res.on("end", () => {
        const text = Buffer.concat(bufs).toString();
        resolve({ status: res.statusCode, text, json: () => JSON.parse(text) });
      });
    });
    req.on("error", reject);
    if (!pace || !body) return req.end(body ?? undefined);
    (async () => {
      for (let o = 0; o < body.length; o += CHUNK) {
        const c = body.subarray(o, Math.min(body.length, o + CHUNK));
        await pace(c.length);
        if (!req.write(c)) await new Promise((r) => req.once("drain", r));
      }
      req.end();
    })().catch(reject);
  });
}

function ok(r, what) {
  if (r.status !== 200 && r.status !== 201) throw new Error(`${what}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  return r.json();
}

/** Peak resident memory of the workerd processes (VmHWM, kB), reset first by `resetPeak`. */
function peakKb() {
  let kb = 0;
  for (const pid of w.workerd) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) kb = Math.max(kb, Number(m[1]));
    } catch {}
  }
  return kb;
}
function resetPeak() {
  for (const pid of w.workerd) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {}
  }
}

/**
 * An upload session: create, parts (`jobs` at a time, ascending; `firstLast`: part 1 of the
 * first file after all the others), complete. Returns timings and workerd CPU (per part when
 * `jobs` is 1).
 */
async function session(files, aliases = [], pace = null, { jobs = JOBS, firstLast = false } = {}) {
  const t0 = performance.now();
  const s = ok(await request("POST", "/api/uploads", Buffer.from(JSON.stringify({ files: files.map((f) => ({ role: f.role, size: f.data.length, name: f.name })), aliases })), { "content-type": "application/json" }), "create");
  const queue = [];
  for (const f of s.files) for (let n = 1; n <= f.parts; n++) queue.push([f.role, n]);
  if (firstLast) queue.push(queue.shift());
  const data = Object.fromEntries(files.map((f) => [f.role, f.data]));
  resetPeak();
  const partCpu = [];
  const cpuParts0 = w.cpuMs();
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let job; (job = queue.shift()); ) {
        const [role, n] = job;
        const body = data[role].subarray((n - 1) * s.partBytes, Math.min(data[role].length, n * s.partBytes));
        const c0 = w.cpuMs();
        ok(await request("PUT", `/api/uploads/${s.id}/${role}/${n}`, body, {}, pace), `part ${role} ${n}`);
        if (jobs === 1) partCpu.push(w.cpuMs() - c0);
      }
    }),
  );
  const partsCpuMs = w.cpuMs() - cpuParts0;
  const partsPeak = peakKb();
  const t1 = performance.now();
  resetPeak();
  const cpu0 = w.cpuMs();
  const answer = ok(await request("POST", `/api/uploads/${s.id}/complete`), "complete");
  const cpu = w.cpuMs() - cpu0;
  const t2 = performance.now();
  return { seconds: (t2 - t0) / 1000, partsSeconds: (t1 - t0) / 1000, completeSeconds: (t2 - t1) / 1000, completeCpuMs: cpu, partsCpuMs, partCpu, partsPeakKb: partsPeak, completePeakKb: peakKb(), answer };
}

async function single(data, pace = null) {
  const t0 = performance.now();
  ok(await request("POST", "/api/images?alias=single", data, { "content-type": "application/octet-stream" }, pace), "single upload");
  return (performance.now() - t0) / 1000;
}

try {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--throughput") {
      const file = args[++i];
      const data = readFileSync(file);
      const mb = data.length / 1e6;
      let best1 = Infinity;
      let bestS = null;
      for (let r = 0; r < RUNS; r++) {
        best1 = Math.min(best1, await single(data));
        log(`single request ${r + 1}: ${best1.toFixed(1)} s best`);
        const s = await session([{ role: "unified", data, name: path.basename(file) }], ["multi"]);
        log(`session ${r + 1}: parts ${s.partsSeconds.toFixed(1)} s, complete ${s.completeSeconds.toFixed(1)} s (${Math.round(s.completeCpuMs)} ms workerd CPU)`);
        if (!bestS || s.seconds < bestS.seconds) bestS = s;
      }
      console.log(JSON.stringify({
        kind: "throughput",
        file: path.basename(file),
        bytes: data.length,
        jobs: JOBS,
        single_mb_s: mb / best1,
        session_mb_s: mb / bestS.seconds,
        ratio: best1 / bestS.seconds,
        session_parts_s: bestS.partsSeconds,
        session_complete_s: bestS.completeSeconds,
      }));
      for (const mbit of RATES) {
        let p1 = Infinity;
        let pS = null;
        for (let r = 0; r < PACED_RUNS; r++) {
          p1 = Math.min(p1, await single(data, uplink(mbit)));
          log(`${mbit} Mbit/s, single request ${r + 1}: ${p1.toFixed(1)} s best`);
          const s = await session([{ role: "unified", data, name: path.basename(file) }], ["multi"], uplink(mbit));
          log(`${mbit} Mbit/s, session ${r + 1}: parts ${s.partsSeconds.toFixed(1)} s, complete ${s.completeSeconds.toFixed(1)} s`);
          if (!pS || s.seconds < pS.seconds) pS = s;
        }
        console.log(JSON.stringify({
          kind: "paced",
          file: path.basename(file),
          bytes: data.length,
          jobs: JOBS,
          uplink_mbit_s: mbit,
          uplink_mb_s: mbit / 8,
          runs: PACED_RUNS,
          single_mb_s: mb / p1,
          session_mb_s: mb / pS.seconds,
          ratio: p1 / pS.seconds,
          session_parts_s: pS.partsSeconds,
          session_complete_s: pS.completeSeconds,
        }));
      }
    } else if (args[i] === "--validate") {
      const name = args[++i];
      const files = [];
      while (i + 1 < args.length && !args[i + 1].startsWith("--")) files.push(args[++i]);
      const roles = files.length === 1 ? ["unified"] : ["metadata", "rootfs"];
      const list = files.map((f, k) => ({ role: roles[k], data: readFileSync(f), name: path.basename(f) }));
      const bytes = list.reduce((a, f) => a + f.data.length, 0);
      for (const firstLast of [false, true]) {
        const s = await session(list, [], null, { jobs: 1, firstLast });
        const version = JSON.parse((await request("GET", "/api/version")).text);
        log(`${name}, ${firstLast ? "part 1 last" : "in order"}: parts ${s.partsSeconds.toFixed(1)} s (${Math.round(s.partsCpuMs)} ms CPU), complete ${s.completeSeconds.toFixed(1)} s (${Math.round(s.completeCpuMs)} ms CPU)`);
        console.log(JSON.stringify({
          kind: "validate",
          name,
          sent: firstLast ? "part 1 last" : "in order",
          bytes,
          parts: s.partCpu.length,
          accepted: s.answer.report?.verdicts?.["lxd-5.0"]?.accepted ?? null,
          part_cpu_ms_max: Math.max(...s.partCpu),
          parts_cpu_ms: s.partsCpuMs,
          complete_cpu_ms: s.completeCpuMs,
          complete_wall_s: s.completeSeconds,
          cpu_ms_per_mb: (s.partsCpuMs + s.completeCpuMs) / (bytes / 1e6),
          parts_peak_rss_mb: s.partsPeakKb / 1024,
          complete_peak_rss_mb: s.completePeakKb / 1024,
          core_wasm_memory_mb: (version.core_memory_bytes ?? 0) / 2 ** 20,
        }));
        // The next round sends the same image again: delete it (its objects, its rows).
        const fp = s.answer.fingerprint;
        if (fp) ok(await request("DELETE", `/api/images/${fp}`), "delete");
      }
    }
  }
} finally {
  await w.close();
}

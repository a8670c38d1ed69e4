// Load test of the worker in workerd (Miniflare, its own socket on loopback), bounded in count
// and time: URL-import answers (with LXD-Server-Architectures) and image downloads
// (a 20 KiB image, whole; a 24 MiB image, whole), driven by autocannon. Every answer is checked
// (status, LXD-Image-Hash, Content-Length): a wrong one counts as an error. Reports requests/s,
// p50/p99 latency, MB/s, error rate and workerd CPU per request; afterwards the R2 bucket and the
// D1 index must be exactly as before.
//
//   node test/load.mjs            the full run (make load-worker; results in bench/out/load.txt)
//   node test/load.mjs --quick    a short one for make test: fails unless the error rate is 0
import autocannon from "autocannon";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { start, images, sha256, auth, WORKER } from "./harness.js";

const QUICK = process.argv.includes("--quick");
const ARCH = { "Lxd-Server-Architectures": "x86_64, i686" };

const img = images();
const small = img("unified-amd64.tar.xz");
const large = img("large-24m.tar.gz");
const fpSmall = sha256(small);
const fpLarge = sha256(large);

const w = await start({}, { direct: true });
let failed = false;
try {
  for (const [body, alias] of [[small, "load"], [large, "load-large"]]) {
    const r = await w.fetch(`/api/images?alias=${alias}`, { method: "POST", body, headers: auth });
    assert.ok(r.status === 201 || r.status === 200, `upload ${alias}: HTTP ${r.status}`);
  }
  const before = await w.consistent();
  const base = w.directUrl;

  const scenarios = [
    // LXD asks with HEAD; GET runs the same negotiation and adds a one-line body (autocannon's
    // parser cannot frame answers to HEAD).
    {
      name: "URL-import answer (GET /load)",
      url: `${base}/load`,
      method: "GET",
      headers: ARCH,
      connections: 64,
      amount: QUICK ? 2000 : 40000,
      check: (status, h, body) =>
        status === 200 &&
        h["lxd-image-hash"] === fpSmall &&
        h["lxd-image-url"] === `${base}/images/${fpSmall}/unified` &&
        body === `${fpSmall} x86_64 ${base}/images/${fpSmall}/unified\n`,
    },
    {
      name: "URL-import answer, fingerprint URL",
      url: `${base}/${fpSmall}`,
      method: "GET",
      headers: ARCH,
      connections: 64,
      amount: QUICK ? 1000 : 20000,
      check: (status, h) => status === 200 && h["lxd-image-hash"] === fpSmall,
    },
    {
      name: `download ${(small.length / 1024).toFixed(0)} KiB image (GET)`,
      url: `${base}/images/${fpSmall}/unified`,
      method: "GET",
      headers: {},
      connections: 64,
      amount: QUICK ? 2000 : 10000,
      check: (status, h, body) => status === 200 && h["content-length"] === String(small.length) && body.length > 0,
    },
    {
      name: `download ${(large.length / 2 ** 20).toFixed(0)} MiB image (GET)`,
      url: `${base}/images/${fpLarge}/unified`,
      method: "GET",
      headers: {},
      connections: 2,
      amount: QUICK ? 6 : 60,
      check: (status, h) => status === 200 && h["content-length"] === String(large.length),
      noBody: true,
    },
  ];

  const rows = [];
  for (const s of scenarios) {
    let bad = 0;
    let checked = 0;
    const maxSeconds = QUICK ? 60 : 180;
    const cpu0 = w.cpuMs();
    const inst = autocannon({
      url: s.url,
      connections: s.connections,
      amount: s.amount,
      timeout: 60,
      requests: [
        {
          method: s.method,
          headers: s.headers,
          // Big bodies are not kept (autocannon would build a string of each): the length is checked.
          ...(s.noBody
            ? {}
            : {
                onResponse(status, body, _ctx, headers) {
                  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
                  checked++;
                  if (!s.check(status, h, body ?? "")) bad++;
                },
              }),
        },
      ],
    });
    // Bounded in time as well as in count.
    const watchdog = setTimeout(() => inst.stop(), maxSeconds * 1000);
    const res = await inst;
    clearTimeout(watchdog);
    const cpu = w.cpuMs() - cpu0;
    const total = res.requests.total;
    const errors = res.errors + res.timeouts + res.non2xx + res.mismatches + bad + Math.max(0, s.amount - total);
    const row = {
      name: s.name,
      requests: total,
      seconds: res.duration,
      rps: total / res.duration,
      p50: res.latency.p50,
      p99: res.latency.p99,
      mbps: res.throughput.total / res.duration / 1e6,
      errorRate: errors / s.amount,
      cpuUs: (cpu * 1000) / Math.max(total, 1),
      detail: `errors ${res.errors}, timeouts ${res.timeouts}, non-2xx ${res.non2xx}, wrong answers ${bad}${s.noBody ? "" : ` of ${checked} checked`}, unfinished ${Math.max(0, s.amount - total)}`,
    };
    rows.push(row);
    if (errors > 0) failed = true;
  }

  const after = await w.consistent();
  assert.deepEqual(after, before, "the bucket and the index are unchanged by the load");

  const lines = [
    `lxdimg worker load test (${QUICK ? "quick" : "full"}; workerd via Miniflare, own socket, loopback; autocannon; ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}, ${new Date().toISOString().slice(0, 10)})`,
    "",
    `  ${"".padEnd(36)} ${"requests".padStart(8)} ${"conns".padStart(5)} ${"req/s".padStart(8)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"MB/s".padStart(7)} ${"errors".padStart(7)} ${"CPU µs/req".padStart(10)}`,
    ...rows.map(
      (r, i) =>
        `  ${r.name.padEnd(36)} ${String(r.requests).padStart(8)} ${String(scenarios[i].connections).padStart(5)} ${r.rps.toFixed(r.rps < 100 ? 1 : 0).padStart(8)} ${r.p50.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(7)} ${r.mbps.toFixed(1).padStart(7)} ${(r.errorRate * 100).toFixed(2).padStart(6)}% ${r.cpuUs.toFixed(0).padStart(10)}`,
    ),
    "",
    ...rows.map((r) => `  ${r.name}: ${r.detail}`),
    "  R2 bucket and D1 index after the load: unchanged",
  ];
  console.log(lines.join("\n"));
  if (!QUICK) {
    const out = path.join(WORKER, "bench/out");
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, "load.txt"), lines.join("\n") + "\n");
  }
} finally {
  await w.close();
}
if (failed) {
  console.error("load test: some requests failed or got a wrong answer (error rate must be 0)");
  process.exit(1);
}

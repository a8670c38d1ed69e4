// POSTs a file (held in memory, so the sender costs little) to URL, RUNS times; prints JSON
// {status, best_seconds, mb_per_s}. node post.mjs URL FILE TOKEN [RUNS]
import http from "node:http";
import { readFileSync } from "node:fs";
const [url, file, token, runsArg] = process.argv.slice(2);
const data = readFileSync(file);
const runs = Number(runsArg || 3);
function post() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(url, {
      method: "POST",
      agent: false, // a fresh connection per upload (no reuse of a socket the server may have closed)
      headers: { "content-type": "application/octet-stream", "content-length": data.length, authorization: `Bearer ${token}` },
    }, (res) => {
      const bufs = [];
      res.on("data", (d) => bufs.push(d));
      res.on("end", () => resolve({ status: res.statusCode, seconds: Number(process.hrtime.bigint() - t0) / 1e9, body: Buffer.concat(bufs).toString() }));
    });
    req.on("error", reject);
    req.end(data);
  });
}
let best = null;
for (let i = 0; i < runs; i++) {
  const r = await post();
  if (r.status !== 200 && r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  if (!best || r.seconds < best.seconds) best = r;
}
console.log(JSON.stringify({ status: best.status, best_seconds: best.seconds, mb_per_s: data.length / 1e6 / best.seconds }));

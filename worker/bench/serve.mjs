// Starts the worker in workerd (Miniflare) for the benchmark, uploads IMAGE under alias `bench`,
// prints one JSON line {url (workerd's own socket for the worker), via_miniflare, token, fingerprint, pid}, then serves until killed.
import { start, TOKEN } from "../test/harness.js";
import { readFileSync } from "node:fs";
const [image] = process.argv.slice(2);
// MAX_REQUEST_BYTES raised: the bench sends its 257 MiB file in one request (the default cap is 100 MB).
const w = await start({ MAX_UPLOAD_BYTES: String(8 * 1024 ** 3), MAX_REQUEST_BYTES: String(8 * 1024 ** 3) }, { direct: true });
const r = await w.fetch("/api/images?alias=bench", { method: "POST", body: readFileSync(image), headers: { authorization: `Bearer ${TOKEN}` } });
const body = await r.json();
if (r.status !== 201) throw new Error(`upload failed: ${r.status}`);
console.log(JSON.stringify({ url: w.directUrl, via_miniflare: w.url, token: TOKEN, fingerprint: body.fingerprint, pid: process.pid }));
process.on("SIGTERM", async () => {
  await w.close();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);

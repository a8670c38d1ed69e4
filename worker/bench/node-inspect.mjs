// Throughput of the wasm core in Node on one file: node node-inspect.mjs FILE [CHUNK_BYTES] [RUNS]
// Prints JSON {bytes, seconds, mb_per_s, fingerprint, accepted} for the best of RUNS.
import { readFileSync, openSync, readSync, closeSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const glue = await import(path.join(root, "pkg/lxdimg.js"));
glue.initSync({ module: new WebAssembly.Module(readFileSync(path.join(root, "pkg/lxdimg_bg.wasm"))) });
const [file, chunkArg, runsArg] = process.argv.slice(2);
const chunk = Number(chunkArg || 1 << 20);
const runs = Number(runsArg || 3);
// Read the file into memory first: this measures the core, not the disk.
const size = statSync(file).size;
const data = Buffer.allocUnsafe(size);
const fd = openSync(file, "r");
for (let off = 0; off < size; ) off += readSync(fd, data, off, size - off, off);
closeSync(fd);
let best = null;
for (let r = 0; r < runs; r++) {
  const t0 = process.hrtime.bigint();
  const ins = new glue.Inspector({ names: [path.basename(file)] });
  for (let off = 0; off < size; off += chunk) ins.push(data.subarray(off, Math.min(size, off + chunk)));
  const report = ins.finish();
  ins.free();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (!best || s < best.seconds) best = { bytes: size, seconds: s, mb_per_s: size / 1e6 / s, fingerprint: report.fingerprint, accepted: report.verdicts["lxd-5.0"].accepted };
}
console.log(JSON.stringify(best));

// Pure-JS parts of the worker, run in Node: architecture table and header parsing, Range parsing,
// the streaming multipart reader at every chunking, simplestreams version names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ARCHITECTURES, PERSONALITIES, canonicalArchitecture, clientArchitectures } from "../src/arch.js";
import { parseRange } from "../src/serve.js";
import { MultipartReader, multipartBoundary } from "../src/multipart.js";
import { versionName, rootFtype } from "../src/streams.js";
import { ROOT, multipart } from "./harness.js";

test("architecture table mirrors src/arch.rs (ids, names, aliases, personalities)", () => {
  const rs = readFileSync(path.join(ROOT, "src/arch.rs"), "utf8");
  const table = rs.slice(rs.indexOf("const TABLE"), rs.indexOf("];", rs.indexOf("const TABLE")));
  const entries = [...table.matchAll(/\(\s*(\d+),\s*"([^"]+)",\s*&\[([^\]]*)\]/g)].map((m) => [
    Number(m[1]),
    m[2],
    [...m[3].matchAll(/"([^"]+)"/g)].map((a) => a[1]),
  ]);
  assert.equal(entries.length, 15);
  for (const [id, name, aliases] of entries) {
    const js = ARCHITECTURES.find((a) => a[0] === id);
    assert.ok(js, `id ${id}`);
    assert.equal(js[1], name);
    for (const a of aliases) assert.ok(js[2].includes(a), `${name} alias ${a}`);
  }
  const pers = rs.slice(rs.indexOf("pub fn personalities"));
  for (const m of pers.matchAll(/"([a-z0-9_]+)" => &\[([^\]]*)\]/g)) {
    assert.deepEqual(PERSONALITIES[m[1]], [...m[2].matchAll(/"([^"]+)"/g)].map((a) => a[1]), m[1]);
  }
});

test("canonical architecture: names, aliases, numeric ids, casing", () => {
  assert.equal(canonicalArchitecture("x86_64"), "x86_64");
  assert.equal(canonicalArchitecture("amd64"), "x86_64");
  assert.equal(canonicalArchitecture("AMD64"), "x86_64");
  assert.equal(canonicalArchitecture(" arm64 "), "aarch64");
  assert.equal(canonicalArchitecture("2"), "x86_64");
  assert.equal(canonicalArchitecture("4"), "aarch64");
  assert.equal(canonicalArchitecture("0"), null);
  assert.equal(canonicalArchitecture("16"), null);
  assert.equal(canonicalArchitecture("sparc"), null);
  assert.equal(canonicalArchitecture("loong64"), "loongarch64");
});

test("client architectures from headers", () => {
  const h = (o) => new Headers(o);
  assert.equal(clientArchitectures(h({})), null);
  assert.deepEqual(clientArchitectures(h({ "Lxd-Server-Architectures": "x86_64, i686" })).archs, ["x86_64", "i686"]);
  assert.deepEqual(clientArchitectures(h({ "LXD-SERVER-ARCHITECTURES": "2, 1" })).archs, ["x86_64", "i686"]);
  assert.deepEqual(clientArchitectures(h({ "incus-server-architectures": "aarch64,armv7l" })).archs, ["aarch64", "armv7l", "armv6l"]);
  assert.equal(clientArchitectures(h({ "incus-server-architectures": "aarch64" })).family, "Incus");
  // Personalities follow what the client listed, in its order.
  assert.deepEqual(clientArchitectures(h({ "lxd-server-architectures": "amd64" })).archs, ["x86_64", "i686"]);
  const bad = clientArchitectures(h({ "lxd-server-architectures": "sparc, vax" }));
  assert.match(bad.error, /names no known architecture/);
  assert.match(clientArchitectures(h({ "lxd-server-architectures": " , " })).error, /is empty/);
  assert.match(clientArchitectures(h({ "lxd-server-architectures": "x".repeat(2000) })).error, /too long/);
  const mixed = clientArchitectures(h({ "lxd-server-architectures": "sparc, x86_64" }));
  assert.equal(mixed.error, null);
  assert.deepEqual(mixed.unknown, ["sparc"]);
});

test("Range parsing", () => {
  assert.equal(parseRange(null, 100), null);
  assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-1000", 100), { start: 0, end: 99 });
  assert.deepEqual(parseRange("bytes=50-100000", 100), { start: 50, end: 99 });
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=99999999999999999999-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=9-5", 100), null);
  assert.equal(parseRange("bytes=0-1,5-6", 100), null);
  assert.equal(parseRange("items=0-1", 100), null);
  assert.equal(parseRange("bytes=abc", 100), null);
  assert.equal(parseRange("bytes=-", 100), null);
  assert.equal(parseRange("bytes=0-" + "9".repeat(300), 100), null);
});

test("multipart boundary parsing", () => {
  assert.equal(multipartBoundary("multipart/form-data; boundary=abc"), "abc");
  assert.equal(multipartBoundary('multipart/form-data; boundary="a b"'), "a b");
  assert.equal(multipartBoundary("Multipart/Form-Data;boundary=x;charset=utf-8"), "x");
  assert.equal(multipartBoundary("application/octet-stream"), null);
  assert.equal(multipartBoundary("multipart/form-data"), null);
});

function streamOf(buf, chunk) {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= buf.length) return c.close();
      const n = chunk === "random" ? 1 + Math.floor(Math.random() * 97) : chunk;
      c.enqueue(new Uint8Array(buf.subarray(off, off + n)));
      off += n;
    },
  });
}

test("multipart reader gives the same parts at every chunking", async () => {
  const a = Buffer.from("metadata\r\n--not-the-boundary\r\n\r\n--lxdimgtestboundary012 almost");
  const b = Buffer.alloc(5000, 0x2d);
  for (let i = 0; i < b.length; i += 7) b[i] = 13;
  const { body, contentType } = multipart([
    { name: "metadata", filename: "m.tar.xz", data: a },
    { name: "rootfs", filename: "r.squashfs", data: b },
    { name: "extra", filename: "x", data: Buffer.from("ignored") },
  ]);
  const boundary = multipartBoundary(contentType);
  for (const chunk of [1, 2, 3, 7, 64, 511, 4096, 1 << 20, "random"]) {
    let seen = 0;
    const mp = new MultipartReader(streamOf(body, chunk), boundary, { onBytes: (n) => (seen += n) });
    const got = [];
    for (let part; (part = await mp.next()); ) {
      const bufs = [];
      for await (const c of part.body()) bufs.push(Buffer.from(c));
      got.push([part.name, part.filename, Buffer.concat(bufs)]);
    }
    // Everything up to the closing delimiter is read (the epilogue need not be).
    assert.ok(seen >= body.length - 2, `chunk ${chunk}: saw ${seen} of ${body.length}`);
    assert.deepEqual(got.map((g) => g[0]), ["metadata", "rootfs", "extra"], `chunk ${chunk}`);
    assert.ok(got[0][2].equals(a), `metadata at chunk ${chunk}`);
    assert.ok(got[1][2].equals(b), `rootfs at chunk ${chunk}`);
    assert.equal(got[1][1], "r.squashfs");
  }
});

test("multipart reader: truncated bodies and missing boundaries are errors", async () => {
  const { body } = multipart([{ name: "metadata", filename: "m", data: Buffer.from("abc") }]);
  const cut = body.subarray(0, body.length - 30);
  const mp = new MultipartReader(streamOf(cut, 5), "lxdimgtestboundary0123");
  const p = await mp.next();
  await assert.rejects(async () => {
    for await (const _ of p.body());
  }, /body ends inside part "metadata"/);
  const mp2 = new MultipartReader(streamOf(Buffer.from("no boundary here"), 4), "zzz");
  await assert.rejects(() => mp2.next(), /no boundary found/);
});

test("simplestreams version names and root ftypes", () => {
  assert.equal(versionName(1704067200), "20240101_0000");
  assert.equal(versionName(1458040200), "20160315_1110");
  assert.deepEqual(rootFtype({ type: "container" }, { compression: "squashfs" }), ["squashfs", ["combined_squashfs_sha256"]]);
  assert.deepEqual(rootFtype({ type: "virtual-machine" }, { compression: "qcow2" }), ["disk-kvm.img", ["combined_disk-kvm-img_sha256"]]);
  assert.deepEqual(rootFtype({ type: "container" }, { compression: "xz" })[0], "root.tar.xz");
});

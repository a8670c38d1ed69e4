// The worker's parts that need no workerd, run in Node: architecture header parsing (through the
// real wasm core, ../../pkg, as src/core.js loads it), the upload gate, Range parsing, the
// streaming multipart reader at every chunking, simplestreams version names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { register } from "node:module";
import path from "node:path";
import { ROOT, multipart } from "./harness.js";

if (!existsSync(path.join(ROOT, "pkg/lxdimg_bg.wasm"))) throw new Error("pkg/ is missing: run `make worker-pkg` (wasm-pack build --target web)");
// src/core.js imports the .wasm as a compiled module (wrangler's way): teach Node the same, then
// import the worker's modules.
register("./wasm-hooks.mjs", import.meta.url);
const { canonicalArchitecture, personalities, referenceTarget } = await import("../src/core.js");
const { clientArchitectures } = await import("../src/answer.js");
const { uploadVerdict } = await import("../src/upload.js");
const { parseRange } = await import("../src/serve.js");
const { MultipartReader, multipartBoundary } = await import("../src/multipart.js");
const { servedImages } = await import("../src/streams.js");
const { simplestreamsProducts, simplestreamsIndex } = await import("../src/core.js");

test("canonical architecture (the core's): names, aliases of any version, numeric ids, casing", () => {
  const cases = {
    x86_64: "x86_64",
    amd64: "x86_64",
    AMD64: "x86_64",
    " arm64 ": "aarch64",
    "\tI386\n": "i686",
    2: "x86_64",
    "002": "x86_64",
    4: "aarch64",
    15: "loongarch64",
    loong64: "loongarch64",
    amd64v3: "x86_64",
    x86_64_v3: "x86_64",
    mipsle: "mips",
    mips64le: "mips64",
    armhf: "armv7l",
    ppc64el: "ppc64le",
    0: null,
    16: null,
    1000: null,
    "": null,
    sparc: null,
    "x86_64 i686": null,
  };
  for (const [token, want] of Object.entries(cases)) assert.equal(canonicalArchitecture(token), want, JSON.stringify(token));
});

test("personalities (the core's)", () => {
  assert.deepEqual(personalities("x86_64"), ["x86_64", "i686"]);
  assert.deepEqual(personalities("aarch64"), ["aarch64", "armv7l", "armv6l"]);
  assert.deepEqual(personalities("s390x"), ["s390x"]);
  assert.deepEqual(personalities("amd64"), []); // canonical names only
  assert.deepEqual(personalities("sparc"), []);
});

test("client architectures from headers", () => {
  const h = (o) => new Headers(o);
  assert.equal(clientArchitectures(h({})), null);
  assert.deepEqual(clientArchitectures(h({ "Lxd-Server-Architectures": "x86_64, i686" })).archs, ["x86_64", "i686"]);
  assert.deepEqual(clientArchitectures(h({ "LXD-SERVER-ARCHITECTURES": "2, 1" })).archs, ["x86_64", "i686"]);
  assert.deepEqual(clientArchitectures(h({ "incus-server-architectures": "aarch64,armv7l" })).archs, ["aarch64", "armv7l", "armv6l"]);
  assert.equal(clientArchitectures(h({ "incus-server-architectures": "aarch64" })).family, "Incus");
  // LXD's header wins when both are present.
  assert.equal(clientArchitectures(h({ "incus-server-architectures": "aarch64", "lxd-server-architectures": "x86_64" })).family, "LXD");
  // Personalities follow what the client listed, in its order.
  assert.deepEqual(clientArchitectures(h({ "lxd-server-architectures": "amd64" })).archs, ["x86_64", "i686"]);
  assert.deepEqual(clientArchitectures(h({ "lxd-server-architectures": "i686 x86_64" })).archs, ["i686", "x86_64"]);
  assert.deepEqual(clientArchitectures(h({ "lxd-server-architectures": "amd64, x86_64, 2" })).archs, ["x86_64", "i686"]);
  const bad = clientArchitectures(h({ "lxd-server-architectures": "sparc, vax" }));
  assert.match(bad.error, /^LXD-Server-Architectures header names no known architecture: "sparc, vax"$/);
  assert.deepEqual(bad.unknown, ["sparc", "vax"]);
  assert.match(clientArchitectures(h({ "lxd-server-architectures": " , " })).error, /is empty/);
  assert.match(clientArchitectures(h({ "incus-server-architectures": "" })).error, /^Incus-Server-Architectures header is empty$/);
  assert.match(clientArchitectures(h({ "lxd-server-architectures": "x".repeat(2000) })).error, /too long \(2000 bytes\)/);
  const mixed = clientArchitectures(h({ "lxd-server-architectures": "sparc, x86_64" }));
  assert.equal(mixed.error, null);
  assert.deepEqual(mixed.unknown, ["sparc"]);
});

test("uploads are stored only when the reference target accepts", () => {
  assert.equal(referenceTarget(), "lxd-5.0");
  assert.equal(uploadVerdict({ accepted: true, error: null }), "accepted");
  assert.equal(uploadVerdict({ accepted: false, error: "Unsupported compression" }), "rejected");
  // lxdimg cannot judge: not stored either (422, the Report's `reason` says why).
  assert.equal(uploadVerdict({ accepted: null, error: null, reason: "lxdimg does not decode lz4 tarballs" }), "not-judged");
  assert.equal(uploadVerdict(undefined), "not-judged");
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

test("simplestreams JSON comes from the core: version names, root ftypes, both families", () => {
  const f = (role, compression, c) => ({ role, compression, sha256: c.repeat(64), size: 10 });
  const img = (fingerprint, type, files, extra = {}) => ({
    fingerprint, type, architecture: "x86_64", properties: { os: "testos", release: "one" },
    creation_date: 1458040200, expiry_date: 0, uploaded_at: 1704067200, aliases: ["a"], files, ...extra,
  });
  const rows = [
    img("1".repeat(64), "container", [f("metadata", "xz", "a"), f("rootfs", "squashfs", "b")]),
    img("2".repeat(64), "virtual-machine", [f("metadata", "xz", "c"), f("rootfs", "qcow2", "d")]),
    img("3".repeat(64), "container", [f("metadata", "xz", "e"), f("rootfs", "zstd", "f")], { creation_date: 0 }),
    img("4".repeat(64), "virtual-machine", [f("unified", "gzip", "4")]),
  ];
  const doc = JSON.parse(simplestreamsProducts(servedImages(rows)));
  const byFp = Object.fromEntries(Object.values(doc.products).map((p) => [Object.values(p.versions)[0], p]).map(([v, p]) => {
    const m = v.items["lxd.tar.xz"] ?? v.items["incus_combined.tar.gz"];
    const fp = m.sha256.length && m.ftype.endsWith("combined.tar.gz") ? m.sha256 : Object.entries(m).find(([k]) => k.startsWith("combined_"))[1];
    return [fp, { p, v, name: Object.keys(p.versions)[0] }];
  }));
  assert.equal(byFp["1".repeat(64)].name, "20160315_1110");
  assert.deepEqual(Object.keys(byFp["1".repeat(64)].v.items).sort(), ["incus.tar.xz", "lxd.tar.xz", "squashfs"]);
  assert.equal(byFp["1".repeat(64)].v.items["lxd.tar.xz"].path, `images/${"1".repeat(64)}/metadata`);
  assert.equal(byFp["2".repeat(64)].v.items["incus.tar.xz"]["combined_disk-kvm-img_sha256"], "2".repeat(64));
  assert.equal(byFp["3".repeat(64)].name, "20240101_0000", "no creation date: the upload time names the version");
  assert.equal(byFp["3".repeat(64)].v.items["root.tar.xz"].ftype, "root.tar.xz");
  assert.equal(byFp["3".repeat(64)].v.items["lxd.tar.xz"].combined_rootxz_sha256, "3".repeat(64));
  // A unified VM: Incus reads combined_type; LXD would take it as a container, so no LXD item.
  assert.deepEqual(Object.keys(byFp["4".repeat(64)].v.items), ["incus_combined.tar.gz"]);
  assert.equal(byFp["4".repeat(64)].v.items["incus_combined.tar.gz"].combined_type, "virtual-machine");
  const idx = JSON.parse(simplestreamsIndex(JSON.stringify(doc), "Mon, 01 Jan 2024 00:00:00 GMT"));
  assert.deepEqual(idx.index.images.products, Object.keys(doc.products).sort());
  assert.equal(idx.index.images.updated, "Mon, 01 Jan 2024 00:00:00 GMT");
});

test("www/_headers (the static assets' security headers) is generated from www/csp.js", async () => {
  const { readFileSync, writeFileSync } = await import("node:fs");
  const { headersFile, CONTENT_SECURITY_POLICY } = await import("../../www/csp.js");
  const file = path.join(ROOT, "www/_headers");
  if (process.env.UPDATE_HEADERS) writeFileSync(file, headersFile());
  assert.equal(readFileSync(file, "utf8"), headersFile(), "www/_headers is stale: run `UPDATE_HEADERS=1 make test-worker-unit` and commit it");
  assert.match(readFileSync(file, "utf8"), /^\/\*\n  Content-Security-Policy: /m);
  // No inline script or eval; WebAssembly only through 'wasm-unsafe-eval'.
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /'unsafe-inline'|'unsafe-eval'|\*/);
  assert.match(CONTENT_SECURITY_POLICY, /script-src 'self' 'wasm-unsafe-eval'/);
});

test("request cap and session part size from the environment (limits.js)", async () => {
  const { requestLimit, partBytes, counter, checkDeclaredLength, MIN_PART } = await import("../src/limits.js");
  const { sessionTtl } = await import("../src/sessions.js");
  const MiB = 1024 * 1024;
  assert.equal(requestLimit({}), 100000000);
  assert.equal(requestLimit({ MAX_REQUEST_BYTES: "" }), 100000000);
  assert.equal(requestLimit({ MAX_REQUEST_BYTES: "500000000" }), 500000000);
  // Default part: 64 MiB, or the cap rounded down to whole MiB when the cap is smaller.
  assert.equal(partBytes({}), 64 * MiB);
  assert.equal(partBytes({ MAX_REQUEST_BYTES: String(50 * MiB + 7) }), 50 * MiB);
  assert.equal(partBytes({ PART_BYTES: String(8 * MiB) }), 8 * MiB);
  for (const env of [
    { MAX_REQUEST_BYTES: "abc" },
    { MAX_REQUEST_BYTES: "-1" },
    { MAX_REQUEST_BYTES: "1.5" },
    { MAX_REQUEST_BYTES: String(4 * MiB) }, // no part size fits between R2's 5 MiB and the cap
    { PART_BYTES: String(MIN_PART - 1) },
    { PART_BYTES: "100000001" }, // over the cap
    { PART_BYTES: "x" },
  ]) {
    assert.throws(() => partBytes(env), (e) => e.status === 500, JSON.stringify(env));
  }
  assert.equal(sessionTtl({}), 86400);
  assert.equal(sessionTtl({ SESSION_TTL_SECONDS: "0" }), 0);
  assert.throws(() => sessionTtl({ SESSION_TTL_SECONDS: "-5" }), (e) => e.status === 500);
  // Counting a body of unknown length: the byte that passes the cap throws the 413.
  const count = counter({ MAX_REQUEST_BYTES: "1000" }, "A body");
  assert.equal(count(600), 600);
  assert.equal(count(400), 1000);
  assert.throws(() => count(1), (e) => e.status === 413 && /POST \/api\/uploads/.test(e.message) && /^A body exceeds 1000 bytes/.test(e.message));
  const req = (n) => new Request("http://x/", { method: "POST", headers: n === null ? {} : { "content-length": String(n) } });
  assert.doesNotThrow(() => checkDeclaredLength(req(1000), { MAX_REQUEST_BYTES: "1000" }));
  assert.doesNotThrow(() => checkDeclaredLength(req(null), { MAX_REQUEST_BYTES: "1000" }));
  assert.throws(() => checkDeclaredLength(req(1001), { MAX_REQUEST_BYTES: "1000" }), (e) => e.status === 413);
});

// --- the part feed of upload sessions (partfeed.js), with a stand-in for the core --------------

/** Records what the core would be given: pieces in order, rootfs starts, whether it was freed. */
function fakeInspection() {
  return {
    log: [],
    freed: false,
    push(chunk) {
      if (this.freed) throw new Error("pushed after free");
      this.log.push(chunk.label);
      return true;
    },
    startRootfs() {
      this.log.push("|rootfs|");
    },
    free() {
      this.freed = true;
    },
  };
}

const PIECE = 5;
/** A part is two pieces of PIECE bytes, labelled `role n a|b` (with `v` for a re-sent version). */
const pieces = (role, n, v = "") => ["a", "b"].map((x) => ({ byteLength: PIECE, label: `${role}${n}${x}${v}` }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A feeder and what putPart gives it: a new fake inspection per feed, D1's stored parts. */
async function feedHarness({ order, stored = [], graceMs = 300, stallMs = 30000, early = () => false }) {
  const { PartFeeder } = await import("../src/partfeed.js");
  const h = {
    order,
    feeder: new PartFeeder({ graceMs, stallMs }),
    inspections: [],
    stored: new Set(stored),
    etags: new Map(),
    opts: null,
  };
  h.opts = {
    newInspection: () => {
      h.inspections.push(fakeInspection());
      return h.inspections.at(-1);
    },
    loadStored: async () => [...h.stored],
    early,
  };
  /** Sends a part as putPart does: admit, pieces (a pause between), stored or failed, release. */
  h.send = async (role, n, { v = "", fail = false, gapMs = 5 } = {}) => {
    const t = await h.feeder.admit(order, role, n, h.opts);
    let ok = false;
    try {
      for (const p of pieces(role, n, v)) {
        t?.push(p);
        await sleep(gapMs);
        if (fail) throw new Error("the client went away");
      }
      ok = true;
      const etag = `${role}${n}${v}`;
      h.stored.add(`${role}/${n}`);
      h.etags.set(`${role}/${n}`, etag);
      t?.done(etag);
    } catch {
      // as putPart: the part is not stored
    } finally {
      if (!ok) t?.fail();
      h.feeder.release(role, n, ok);
    }
    return !!t;
  };
  /** What complete takes, with the ETags "D1" holds. */
  h.take = () => h.feeder.take([...h.etags].map(([k, etag]) => ({ role: k.split("/")[0], part: Number(k.split("/")[1]), etag })));
  return h;
}

const UNIFIED3 = [{ role: "unified", size: 30, parts: 3 }];
const labels = (role, ...ns) => ns.flatMap((n) => pieces(role, n).map((p) => p.label));

test("part feed: parallel parts are fed in order as they arrive; complete takes the whole read", async () => {
  const h = await feedHarness({ order: UNIFIED3 });
  // Parts 3 and 2 start first (as --jobs 4 may start them), part 1 a little later: all fed.
  const fed = await Promise.all([h.send("unified", 3), h.send("unified", 2), sleep(30).then(() => h.send("unified", 1))]);
  assert.deepEqual(fed, [true, true, true]);
  assert.equal(h.inspections.length, 1);
  assert.deepEqual(h.inspections[0].log, labels("unified", 1, 2, 3));
  assert.equal(h.feeder.validatedBytes, 30);
  const r = h.take();
  assert.equal(r.inspection, h.inspections[0]);
  assert.deepEqual([r.file, r.offset, r.rejectedEarly], [1, 0, false]);
  assert.equal(h.feeder.take([]), null, "taken once");
});

test("part feed: a split image feeds metadata, starts the rootfs once, then the rootfs parts", async () => {
  const h = await feedHarness({ order: [{ role: "metadata", size: 10, parts: 1 }, { role: "rootfs", size: 20, parts: 2 }] });
  const fed = await Promise.all([h.send("rootfs", 2), h.send("rootfs", 1), h.send("metadata", 1)]);
  assert.deepEqual(fed, [true, true, true]);
  assert.deepEqual(h.inspections[0].log, [...labels("metadata", 1), "|rootfs|", ...labels("rootfs", 1, 2)]);
  const r = h.take();
  assert.deepEqual([r.file, r.rootfsStarted], [2, true]);
});

test("part feed: a part ahead of a gap nobody sends waits GRACE beside other parts (ALONE_MS alone), then is stored unread; complete goes on from the gap", async () => {
  const h = await feedHarness({ order: UNIFIED3, graceMs: 200 });
  assert.equal(await h.send("unified", 1), true);
  let t0 = Date.now();
  assert.equal(await h.send("unified", 3), false);
  const { ALONE_MS } = await import("../src/partfeed.js");
  const alone = Date.now() - t0;
  assert.ok(alone >= ALONE_MS && alone < ALONE_MS + 600, `alone: stored after ALONE_MS (${alone} ms), not GRACE`);
  // Beside another part in flight (a parallel client), it waits GRACE for part 2.
  h.feeder.inflight.add("unified/9");
  t0 = Date.now();
  assert.equal(await h.send("unified", 3), false);
  assert.ok(Date.now() - t0 >= 200, "waited for part 2");
  h.feeder.release("unified", 9, false);
  // Part 2 comes later: still in order, fed; the feed then stops at part 3 (stored, not read).
  assert.equal(await h.send("unified", 2), true);
  assert.deepEqual(h.inspections[0].log, labels("unified", 1, 2));
  const r = h.take();
  assert.deepEqual([r.file, r.offset], [0, 20], "complete reads part 3 from the assembled object");
});

test("part feed: a part ahead of one already stored unread is not fed; a new first part starts over", async () => {
  // Part 2 was stored before this object existed (an evicted object, a restarted runtime).
  const h = await feedHarness({ order: UNIFIED3, stored: ["unified/2"] });
  h.etags.set("unified/2", "unified2");
  assert.equal(await h.send("unified", 3), false, "no feed: stored only");
  assert.equal(await h.send("unified", 1), true, "the first part starts a feed");
  assert.equal(await h.send("unified", 1, { v: "x" }), true, "sent again: a new feed from byte 0");
  assert.equal(h.inspections.length, 2);
  assert.equal(h.inspections[0].freed, true);
  const r = h.take();
  assert.equal(r.inspection, h.inspections[1]);
  assert.deepEqual([r.file, r.offset], [0, 10]);
  assert.deepEqual(h.inspections[1].log, labels("unified", 1).map((l) => l + "x"));
});

test("part feed: a part that fails half-read drops the feed; one that fails before a byte does not", async () => {
  let h = await feedHarness({ order: UNIFIED3 });
  assert.equal(await h.send("unified", 1), true);
  assert.equal(await h.send("unified", 2, { fail: true }), true);
  assert.equal(h.feeder.validatedBytes, null);
  assert.equal(h.inspections[0].freed, true);
  assert.equal(await h.send("unified", 2), false, "no feed any more");
  assert.equal(h.take(), null, "complete reads everything");

  // A part admitted but failed before its first byte: the next try is fed.
  h = await feedHarness({ order: UNIFIED3 });
  await h.send("unified", 1);
  const t = await h.feeder.admit(UNIFIED3, "unified", 2, h.opts);
  t.fail();
  h.feeder.release("unified", 2, false);
  assert.equal(await h.send("unified", 2), true);
  assert.equal(h.feeder.validatedBytes, 20);
});

test("part feed: a part sent again after it was read gets a new ETag, and complete drops the feed", async () => {
  const h = await feedHarness({ order: UNIFIED3 });
  for (const n of [1, 2, 3]) await h.send("unified", n);
  assert.equal(await h.send("unified", 2, { v: "x" }), false, "behind the feed: stored only");
  assert.equal(h.take(), null);
  assert.equal(h.inspections[0].freed, true);
});

test("part feed: parts ahead of a stalled part stop waiting after STALL; a known refusal stops reading", async () => {
  let h = await feedHarness({ order: UNIFIED3, stallMs: 300 });
  const t0 = Date.now();
  const slow = h.send("unified", 1, { gapMs: 1500 });
  await sleep(20);
  assert.equal(await h.send("unified", 2), false);
  const waited = Date.now() - t0;
  assert.ok(waited >= 300 && waited < 1400, `gave up after ${waited} ms`);
  await slow;

  h = await feedHarness({ order: UNIFIED3, early: (insp) => insp.log.length >= 1 });
  for (const n of [1, 2, 3]) await h.send("unified", n);
  assert.deepEqual(h.inspections[0].log, ["unified1a"]);
  const r = h.take();
  assert.equal(r.rejectedEarly, true);
});

// Upload sessions (POST /api/uploads, issue 10) in workerd (Miniflare): a ~300 MB image in parts
// with MAX_REQUEST_BYTES at its default, parts out of order and re-sent, a session resumed by a
// client that lost it, a completion whose client left, a validation taken over after its
// invocation died, a rejected image, a session never completed (swept), two sessions for one
// image, the per-request cap (413) and wrong part sizes (400). After each, R2 is listed and D1
// queried (`consistent()` in harness.js plus the session tables).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import http from "node:http";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { start, images, sha256, auth, cliReport, IMAGES, WORKER } from "./harness.js";
import { GRACE_MS } from "../src/partfeed.js";

const MiB = 1024 * 1024;
const X86 = { "Lxd-Server-Architectures": "x86_64, i686" };
let img;

/**
 * A unified image of about MB megabytes: metadata.yaml, a template and MB of random rootfs data
 * in an uncompressed tarball (LXD takes plain .tar; the test is about parts, not decoding).
 */
function bigImage(mb) {
  const out = path.join(IMAGES, `session-${mb}m.tar`);
  if (existsSync(out)) return out;
  mkdirSync(IMAGES, { recursive: true });
  execFileSync(
    "bash",
    [
      "-euo",
      "pipefail",
      "-c",
      `w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
       mkdir -p "$w/templates" "$w/rootfs/data" "$w/rootfs/etc"
       printf 'architecture: x86_64\\ncreation_date: 1704067200\\nproperties:\\n  description: session test\\n  os: testos\\n  release: big\\ntemplates:\\n  /etc/hostname:\\n    when: [create]\\n    template: hostname.tpl\\n' > "$w/metadata.yaml"
       echo '{{ instance.name }}' > "$w/templates/hostname.tpl"
       echo big > "$w/rootfs/etc/hostname"
       head -c ${mb * 1000 * 1000} /dev/urandom > "$w/rootfs/data/random.bin"
       tar --owner=0 --group=0 --numeric-owner --mtime=@1704067200 --sort=name -C "$w" -cf "$1.part" metadata.yaml templates rootfs`,
      "_",
      out,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  renameSync(`${out}.part`, out);
  return out;
}

const json = (v) => ({ method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(v) });

/** Session helpers against one worker; `base` is its direct socket when given (big bodies). */
function client(w, base = null) {
  const f = base ? (p, init) => request(base + p, init) : w.fetch;
  return {
    create: (files, extra = {}) => f("/api/uploads", json({ files, ...extra })),
    put: (id, role, n, body, headers = {}) => f(`/api/uploads/${id}/${role}/${n}`, { method: "PUT", headers: { ...auth, ...headers }, body, duplex: "half" }),
    status: (id) => f(`/api/uploads/${id}`, { headers: auth }),
    complete: (id, init = {}) => f(`/api/uploads/${id}/complete`, { method: "POST", headers: auth, ...init }),
    del: (id) => f(`/api/uploads/${id}`, { method: "DELETE", headers: auth }),
  };
}

/**
 * A request on a connection of its own (node:http, no keep-alive), answering a fetch Response:
 * workerd may close a connection after a part whose body went straight into R2, and a pooled
 * connection would then fail the next request.
 */
function request(url, init = {}) {
  return new Promise((resolve, reject) => {
    const body = init.body === undefined || init.body === null ? null : Buffer.isBuffer(init.body) ? init.body : Buffer.from(init.body);
    const headers = { ...(init.headers ?? {}), ...(body ? { "content-length": body.length } : {}) };
    const req = http.request(url, { method: init.method ?? "GET", agent: false, headers, signal: init.signal }, (res) => {
      const bufs = [];
      res.on("data", (d) => bufs.push(d));
      res.on("end", () => resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(bufs), { status: res.statusCode, headers: res.headers })));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body ?? undefined);
  });
}

/** A POST with `Expect: 100-continue` on its own connection: the body is sent only if asked for. */
function expectContinue(url, body, method = "POST") {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...auth, "content-length": body.length, expect: "100-continue" } }, (res) => {
      const bufs = [];
      res.on("data", (d) => bufs.push(d));
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(bufs).toString() }));
    });
    req.on("continue", () => req.end(body));
    req.on("error", reject);
  });
}

/** Part n (from 1) of a file. */
const slice = (data, pb, n) => data.subarray((n - 1) * pb, Math.min(data.length, n * pb));

/** Sends every part of every file; `order(count)` gives the part numbers to send. */
async function sendAll(c, session, data, order = (k) => [...Array(k).keys()].map((i) => i + 1)) {
  for (const f of session.files) {
    for (const n of order(f.parts)) {
      const r = await c.put(session.id, f.role, n, slice(data[f.role], session.partBytes, n));
      assert.equal(r.status, 200, `${f.role} part ${n}: ${await r.clone().text()}`);
    }
  }
}

/** Sends every part, `jobs` requests at a time, in ascending order (as lxdimg publish does). */
async function sendParallel(c, session, data, jobs) {
  const queue = session.files.flatMap((f) => [...Array(f.parts).keys()].map((i) => [f.role, i + 1]));
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let job; (job = queue.shift()); ) {
        const [role, n] = job;
        const r = await c.put(session.id, role, n, slice(data[role], session.partBytes, n));
        assert.equal(r.status, 200, `${role} part ${n}: ${await r.clone().text()}`);
      }
    }),
  );
}

/** The session tables' rows for one session (or all). */
async function sessionRows(w, id = null) {
  const q = async (t, col) => (await w.db.prepare(`SELECT COUNT(*) AS n FROM ${t}${id ? ` WHERE ${col} = ?` : ""}`).bind(...(id ? [id] : [])).first()).n;
  return { sessions: await q("upload_sessions", "id"), files: await q("upload_files", "session_id"), parts: await q("upload_parts", "session_id") };
}

/** Whether an R2 multipart upload can still be completed (false once aborted or completed). */
async function multipartAlive(w, key, uploadId) {
  try {
    await w.bucket.resumeMultipartUpload(key, uploadId).complete([]);
    return true;
  } catch {
    return false;
  }
}

before(() => {
  img = images();
});

describe("upload sessions, MAX_REQUEST_BYTES at its default", () => {
  let w;
  let big;
  before(async () => {
    big = readFileSync(bigImage(300));
    w = await start({ MAX_UPLOAD_BYTES: String(8 * 1024 ** 3) }, { direct: true });
  });
  after(async () => w?.close());

  it("GET /api/version reports maxRequestBytes and partBytes", async () => {
    const v = await (await w.fetch("/api/version")).json();
    assert.equal(v.maxRequestBytes, 100000000);
    assert.ok(v.partBytes >= 5 * MiB && v.partBytes <= v.maxRequestBytes, String(v.partBytes));
  });

  it("a single request over the cap is 413 naming POST /api/uploads (declared and streamed), nothing stored", async () => {
    // Declared: refused before any body byte is read (the client waits for 100 Continue, as curl does).
    let r = await expectContinue(`${w.directUrl}/api/images?alias=big`, big);
    assert.equal(r.status, 413);
    let msg = r.text;
    assert.match(msg, /MAX_REQUEST_BYTES/);
    assert.match(msg, /POST \/api\/uploads/);
    // Chunked (no Content-Length): counted while streaming.
    const stream = new ReadableStream({
      pull(c) {
        this.sent = (this.sent ?? 0) + 1;
        if (this.sent > 105) return c.close();
        c.enqueue(new Uint8Array(big.subarray((this.sent - 1) * MiB, this.sent * MiB)));
      },
    });
    r = await w.fetch("/api/images?alias=big", { method: "POST", headers: auth, body: stream, duplex: "half" });
    assert.equal(r.status, 413);
    msg = await r.text();
    assert.match(msg, /POST \/api\/uploads/);
    assert.deepEqual(await w.consistent(), { objects: [], images: [], files: [], aliases: [] });
  });

  it("a ~300 MB image in parts, out of order and one re-sent, stored; complete again gives the same answer", async () => {
    const c = client(w, w.directUrl);
    const t = Date.now();
    const step = (what) => console.log(`# ${what}: ${Date.now() - t} ms`);
    let r = await c.create([{ role: "unified", size: big.length, name: "session-300m.tar" }], { aliases: ["big"] });
    assert.equal(r.status, 201);
    const s = await r.json();
    assert.equal(s.status, "open");
    assert.equal(s.partBytes, 64 * MiB);
    assert.equal(s.files[0].parts, Math.ceil(big.length / s.partBytes));
    assert.deepEqual(s.files[0].stored, []);
    assert.ok(Date.parse(s.expiresAt) > Date.now());
    const count = s.files[0].parts;
    // Part 2 first with wrong bytes of the right size: the re-sent part must replace it.
    r = await c.put(s.id, "unified", 2, Buffer.alloc(s.partBytes, 0x5a));
    assert.equal(r.status, 200);
    assert.deepEqual((await r.json()).stored, [2]);
    const order = [count, 3, 1, ...Array.from({ length: count - 3 }, (_, i) => count - 1 - i).filter((n) => n > 3), 2];
    assert.deepEqual([...order].sort((a, b) => a - b), [...Array(count).keys()].map((i) => i + 1));
    for (const n of order) {
      r = await c.put(s.id, "unified", n, slice(big, s.partBytes, n));
      const b = await r.json();
      assert.equal(r.status, 200, JSON.stringify(b));
      assert.equal(b.size, n < count ? s.partBytes : big.length - s.partBytes * (count - 1));
    }
    step("parts sent");
    r = await c.status(s.id);
    assert.deepEqual((await r.json()).files[0].stored, [...Array(count).keys()].map((i) => i + 1));
    // Nothing is visible before completion.
    assert.deepEqual(await w.objects(), []);
    const cpu0 = w.cpuMs();
    const t0 = Date.now();
    r = await c.complete(s.id);
    const body = await r.json();
    assert.equal(r.status, 201, JSON.stringify(body).slice(0, 400));
    console.log(`# 300 MB session: complete (assemble + validate) ${Date.now() - t0} ms wall, ${Math.round(w.cpuMs() - cpu0)} ms workerd CPU`);
    assert.equal(body.created, true);
    assert.equal(body.fingerprint, sha256(big));
    assert.equal(body.report.verdicts["lxd-5.0"].accepted, true);
    assert.deepEqual(body.aliases, ["big"]);
    step("completed");
    r = await c.complete(s.id);
    assert.equal(r.status, 201);
    assert.equal((await r.json()).fingerprint, body.fingerprint);
    r = await c.status(s.id);
    const st = await r.json();
    assert.equal(st.status, "complete");
    assert.equal(st.image.fingerprint, body.fingerprint);
    // (consistent() would read the 300 MB object back through Miniflare's proxy: sizes and keys here.)
    const state = await w.state();
    assert.deepEqual(state.objects, [`uploads/${s.id}/unified`]);
    assert.equal((await w.bucket.head(`uploads/${s.id}/unified`)).size, big.length);
    assert.deepEqual(state.files.map((f) => [f.r2_key, f.size, f.sha256]), [[`uploads/${s.id}/unified`, big.length, body.fingerprint]]);
    assert.equal(state.images.length, 1);
    assert.equal(state.images[0].upload_id, s.id);
    assert.deepEqual(await sessionRows(w, s.id), { sessions: 1, files: 0, parts: 0 });
    r = await w.fetch("/big", { method: "HEAD", headers: X86 });
    assert.equal(r.headers.get("lxd-image-hash"), body.fingerprint);
    // The same image again: "exists" at once, the alias added, nothing to send.
    r = await c.create([{ role: "unified", size: big.length }], { fingerprint: body.fingerprint.toUpperCase(), aliases: ["big2"] });
    const ex = await r.json();
    assert.equal(r.status, 200);
    assert.equal(ex.status, "exists");
    assert.equal(ex.image.fingerprint, body.fingerprint);
    assert.deepEqual(ex.image.aliases, ["big2"]);
    assert.equal((await w.state()).aliases.length, 2);
  });
});

describe("upload sessions, small parts", () => {
  let w;
  const PB = 5 * MiB;
  before(async () => {
    w = await start({ PART_BYTES: String(PB), MAX_REQUEST_BYTES: String(6 * MiB) }, { direct: true });
  });
  after(async () => w?.close());

  it("refuses bad session requests: token, roles, sizes, aliases, names, JSON, total over MAX_UPLOAD_BYTES", async () => {
    const c = client(w);
    let r = await w.fetch("/api/uploads", { method: "POST", body: "{}" });
    assert.equal(r.status, 401);
    assert.match((await r.json()).error, /bearer token/);
    const bad = [
      [{ files: [] }, 400, /files/],
      [{ files: [{ role: "rootfs", size: 10 }] }, 400, /"unified" alone/],
      [{ files: [{ role: "unified", size: 10 }, { role: "metadata", size: 10 }] }, 400, /"unified" alone/],
      [{ files: [{ role: "metadata", size: 10 }, { role: "rootfs", size: 10 }, { role: "rootfs.img", size: 10 }] }, 400, /"unified" alone/],
      [{ files: [{ role: "unified", size: 0 }] }, 400, /size/],
      [{ files: [{ role: "unified", size: 1.5 }] }, 400, /size/],
      [{ files: [{ role: "unified", size: "10" }] }, 400, /size/],
      [{ files: [{ role: "unified", size: 10, name: "a/b" }] }, 400, /no \//],
      [{ files: [{ role: "unified", size: 10, name: "x\u001b" }] }, 400, /control/],
      [{ files: [{ role: "unified", size: 10 }], aliases: ["../x"] }, 400, /Invalid alias/],
      [{ files: [{ role: "unified", size: 10 }], aliases: "x" }, 400, /aliases/],
      [{ files: [{ role: "unified", size: 10 }], fingerprint: "abc" }, 400, /fingerprint/],
      [{ files: [{ role: "unified", size: 65 * MiB }] }, 413, /MAX_UPLOAD_BYTES/],
    ];
    for (const [body, status, re] of bad) {
      r = await w.fetch("/api/uploads", json(body));
      const b = await r.json();
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(b.error, re, JSON.stringify(body));
    }
    r = await w.fetch("/api/uploads", { method: "POST", headers: auth, body: "not json" });
    assert.equal(r.status, 400);
    assert.deepEqual(await sessionRows(w), { sessions: 0, files: 0, parts: 0 });
    void c;
  });

  it("wrong part sizes, numbers and roles are 400; a part over the request cap is 413; unknown session 404", async () => {
    const c = client(w);
    const data = img("large-24m.tar.gz");
    const s = await (await c.create([{ role: "unified", size: data.length }])).json();
    const count = s.files[0].parts;
    assert.equal(count, Math.ceil(data.length / PB));
    const lastSize = data.length - PB * (count - 1);
    const cases = [
      [1, data.subarray(0, PB - 1), 400, /exactly 5242880 bytes/],
      [1, data.subarray(0, PB + 1), 400, /exactly 5242880 bytes/],
      [count, data.subarray(0, lastSize + 1), 400, new RegExp(`exactly ${lastSize} bytes`)],
      [0, data.subarray(0, PB), 400, /No part "0"/],
      [count + 1, data.subarray(0, 10), 400, /No part/],
      ["x", data.subarray(0, 10), 400, /No part/],
    ];
    for (const [n, body, status, re] of cases) {
      const r = await c.put(s.id, "unified", n, body);
      assert.equal(r.status, status, `part ${n}, ${body.length} bytes`);
      assert.match((await r.json()).error, re);
    }
    // Chunked bodies (no Content-Length), short and long: counted.
    for (const len of [PB - 1000, PB + 1000]) {
      const chunks = [];
      for (let o = 0; o < len; o += 65536) chunks.push(new Uint8Array(data.subarray(o, Math.min(len, o + 65536))));
      const stream = new ReadableStream({
        pull(ctl) {
          const x = chunks.shift();
          if (x) ctl.enqueue(x);
          else ctl.close();
        },
      });
      const r = await c.put(s.id, "unified", 1, stream);
      assert.equal(r.status, 400, `chunked ${len}`);
      assert.match((await r.json()).error, /exactly 5242880 bytes/);
    }
    // Over the request cap with a Content-Length (the direct socket keeps it): 413 before reading.
    // (With Expect: 100-continue: workerd answers without reading the body and closes the
    // connection, so a client still sending could see a reset instead of the answer.)
    const over = await expectContinue(`${w.directUrl}/api/uploads/${s.id}/unified/1`, data.subarray(0, 6 * MiB + 1), "PUT");
    assert.equal(over.status, 413);
    assert.match(JSON.parse(over.text).error, /MAX_REQUEST_BYTES.*POST \/api\/uploads/);
    let r = await c.put(s.id, "rootfs", 1, data.subarray(0, 10));
    assert.equal(r.status, 400);
    assert.match((await r.json()).error, /no file "rootfs"/);
    r = await c.put("00000000-0000-4000-8000-000000000000", "unified", 1, data.subarray(0, 10));
    assert.equal(r.status, 404);
    r = await c.status("00000000-0000-4000-8000-000000000000");
    assert.equal(r.status, 404);
    r = await w.fetch("/api/uploads/nope", { headers: auth });
    assert.equal(r.status, 404);
    assert.deepEqual((await (await c.status(s.id)).json()).files[0].stored, []);
    // A complete with parts missing lists them.
    r = await c.put(s.id, "unified", 2, slice(data, PB, 2));
    assert.equal(r.status, 200);
    r = await c.complete(s.id);
    assert.equal(r.status, 409);
    const b = await r.json();
    assert.deepEqual(b.missing, { unified: [...Array(count).keys()].map((i) => i + 1).filter((n) => n !== 2) });
    // Aborted by the client: rows gone, multipart upload aborted.
    const row = await w.db.prepare("SELECT r2_key, r2_upload_id FROM upload_files WHERE session_id = ?").bind(s.id).first();
    r = await c.del(s.id);
    assert.equal(r.status, 204);
    assert.deepEqual(await sessionRows(w, s.id), { sessions: 0, files: 0, parts: 0 });
    assert.equal(await multipartAlive(w, row.r2_key, row.r2_upload_id), false);
    assert.equal((await c.put(s.id, "unified", 1, slice(data, PB, 1))).status, 404);
    assert.deepEqual((await w.consistent()).objects, []);
  });

  it("a client that lost its session resumes it (same fingerprint, roles, sizes): stored parts listed; a chunked part works", async () => {
    const c = client(w);
    const data = img("large-24m.tar.gz");
    const fp = sha256(data);
    const files = [{ role: "unified", size: data.length, name: "large-24m.tar.gz" }];
    let r = await c.create(files, { fingerprint: fp, aliases: ["resumed"] });
    assert.equal(r.status, 201);
    const s = await r.json();
    for (const n of [1, 3]) assert.equal((await c.put(s.id, "unified", n, slice(data, PB, n))).status, 200);
    // The client restarts and knows only the file: the same session comes back.
    r = await c.create(files, { fingerprint: fp, aliases: ["resumed2"] });
    assert.equal(r.status, 200);
    const again = await r.json();
    assert.equal(again.resumed, true);
    assert.equal(again.id, s.id);
    assert.deepEqual(again.files[0].stored, [1, 3]);
    assert.deepEqual(again.aliases, ["resumed", "resumed2"]);
    // Another size is another image: a new session.
    r = await c.create([{ role: "unified", size: data.length + 1 }], { fingerprint: fp });
    assert.equal(r.status, 201);
    assert.notEqual((await r.json()).id, s.id);
    // The rest, one part without Content-Length.
    for (const n of again.files[0].stored.length ? [2, 4, 5] : []) {
      let body = slice(data, PB, n);
      if (n === 4) {
        const bytes = body;
        body = new ReadableStream({
          start(ctl) {
            for (let o = 0; o < bytes.length; o += 100000) ctl.enqueue(new Uint8Array(bytes.subarray(o, o + 100000)));
            ctl.close();
          },
        });
      }
      r = await c.put(s.id, "unified", n, body);
      assert.equal(r.status, 200, await r.clone().text());
    }
    r = await c.complete(s.id);
    const b = await r.json();
    assert.equal(r.status, 201, JSON.stringify(b).slice(0, 300));
    assert.equal(b.fingerprint, fp);
    assert.deepEqual(b.aliases, ["resumed", "resumed2"]);
    assert.equal((await c.put(s.id, "unified", 1, slice(data, PB, 1))).status, 409);
    await w.consistent();
  });

  it("a split VM image through a session; a wrong declared fingerprint is 422 and keeps nothing", async () => {
    const c = client(w);
    const data = { metadata: img("vm-meta.tar.xz"), "rootfs.img": img("vm-rootfs.img") };
    const files = [
      { role: "rootfs.img", size: data["rootfs.img"].length, name: "vm-rootfs.img" },
      { role: "metadata", size: data.metadata.length, name: "vm-meta.tar.xz" },
    ];
    const before = await w.consistent();
    let r = await c.create(files, { fingerprint: "0".repeat(64) });
    let s = await r.json();
    assert.deepEqual(s.files.map((f) => f.role), ["metadata", "rootfs.img"]);
    await sendAll(c, s, data);
    r = await c.complete(s.id);
    let b = await r.json();
    assert.equal(r.status, 422);
    assert.equal(r.headers.get("x-lxdimg-verdict"), "fingerprint-mismatch");
    assert.match(b.error, /declared 0{64}/);
    assert.deepEqual(await w.consistent(), before);
    assert.deepEqual(await sessionRows(w, s.id), { sessions: 1, files: 0, parts: 0 });

    r = await c.create(files, { aliases: ["vm"] });
    s = await r.json();
    await sendAll(c, s, data);
    // Sent in order: the core read metadata and rootfs as they arrived.
    assert.equal((await (await c.status(s.id)).json()).validatedBytes, data.metadata.length + data["rootfs.img"].length);
    r = await c.complete(s.id);
    b = await r.json();
    assert.equal(r.status, 201, JSON.stringify(b).slice(0, 300));
    assert.equal(b.type, "virtual-machine");
    assert.equal(b.format, "split");
    assert.equal(b.fingerprint, sha256(data.metadata, data["rootfs.img"]));
    const st = await w.consistent();
    assert.deepEqual(st.files.filter((f) => f.fingerprint === b.fingerprint).map((f) => f.r2_key).sort(), [`uploads/${s.id}/metadata`, `uploads/${s.id}/rootfs`]);
  });

  it("parts sent in parallel are read by the core as they arrive; out of order, complete reads the rest: the same Report", async () => {
    const c = client(w);
    const data = img("large-24m.tar.gz");
    const files = [{ role: "unified", size: data.length, name: "large-24m.tar.gz" }];
    // (An earlier test stored this image: gone first, so that the first session creates it.)
    await w.fetch(`/api/images/${sha256(data)}`, { method: "DELETE", headers: auth });
    // Four at a time, as lxdimg publish --jobs 4 sends them.
    let s = await (await c.create(files, { aliases: ["fed"] })).json();
    await sendParallel(c, s, { unified: data }, 4);
    let st = await (await c.status(s.id)).json();
    assert.equal(st.validatedBytes, data.length, "the whole image was read before complete");
    let r = await c.complete(s.id);
    const fed = await r.json();
    assert.equal(r.status, 201, JSON.stringify(fed).slice(0, 300));
    assert.equal(fed.fingerprint, sha256(data));

    // The same image with part 1 last: the others wait for it, give up, and are stored unread;
    // part 1 is read, and complete reads parts 2.. from the assembled object (a ranged read).
    s = await (await c.create(files, { aliases: ["unfed"] })).json();
    const t0 = Date.now();
    await Promise.all([2, 3, 4, 5].map(async (n) => assert.equal((await c.put(s.id, "unified", n, slice(data, PB, n))).status, 200)));
    assert.ok(Date.now() - t0 >= GRACE_MS, "parts ahead waited for part 1");
    assert.equal((await c.put(s.id, "unified", 1, slice(data, PB, 1))).status, 200);
    st = await (await c.status(s.id)).json();
    assert.equal(st.validatedBytes, PB, "only part 1 was read as it arrived");
    r = await c.complete(s.id);
    const unfed = await r.json();
    assert.equal(r.status, 200, JSON.stringify(unfed).slice(0, 300));
    assert.equal(unfed.created, false);
    assert.deepEqual(unfed.report, fed.report, "the Report does not depend on when the core read the bytes");
    const cli = cliReport("large-24m.tar.gz");
    if (cli) assert.equal(fed.report.verdicts["lxd-5.0"].accepted, cli.verdicts["lxd-5.0"].accepted);
    await w.consistent();
  });

  it("a part sent again with other bytes after the core read it: the Report is of the bytes stored", async () => {
    const c = client(w);
    const data = img("large-24m.tar.gz");
    const garbage = Buffer.alloc(PB, 0x5a);
    const files = [{ role: "unified", size: data.length }];
    // Wrong part 2 read in order, then the right one: accepted, the right fingerprint.
    let s = await (await c.create(files)).json();
    for (const n of [1, 2, 3, 4, 5]) assert.equal((await c.put(s.id, "unified", n, n === 2 ? garbage : slice(data, PB, n))).status, 200);
    assert.equal((await (await c.status(s.id)).json()).validatedBytes, data.length);
    assert.equal((await c.put(s.id, "unified", 2, slice(data, PB, 2))).status, 200);
    let r = await c.complete(s.id);
    let b = await r.json();
    // (201, or 200 when an earlier test stored this image already.)
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(b).slice(0, 300));
    assert.equal(b.fingerprint, sha256(data));
    assert.equal(b.report.verdicts["lxd-5.0"].accepted, true);
    assert.deepEqual(b.report.findings.filter((f) => f.severity === "error"), []);

    // Right bytes read in order, then part 3 replaced by garbage: judged as stored — the gzip
    // stream is broken there (LXD imports it, as a single request's Report says; `lxc launch`
    // would fail, and the answer warns so).
    const bad = Buffer.from(data);
    garbage.copy(bad, 2 * PB);
    s = await (await c.create(files)).json();
    for (const n of [1, 2, 3, 4, 5]) assert.equal((await c.put(s.id, "unified", n, slice(data, PB, n))).status, 200);
    assert.equal((await c.put(s.id, "unified", 3, garbage)).status, 200);
    r = await c.complete(s.id);
    b = await r.json();
    assert.equal(r.status, 201, JSON.stringify(b).slice(0, 300));
    assert.equal(b.fingerprint, sha256(bad));
    const decode = b.report.findings.find((f) => f.code === "decode-error");
    assert.ok(decode, JSON.stringify(b.report.findings));
    // The same finding as the native CLI gives for these bytes.
    writeFileSync(path.join(IMAGES, "session-bad-24m.tar.gz"), bad);
    const cli = cliReport("session-bad-24m.tar.gz");
    if (cli) assert.equal(decode.message, cli.findings.find((f) => f.code === "decode-error")?.message);
    assert.match(b.warnings.join("\n"), /lxc launch would fail/);
    await w.consistent();
  });

  it("a part cut off mid-body after the core read some of it: the feed is dropped, complete reads everything", async () => {
    const c = client(w);
    const data = img("large-24m.tar.gz");
    const s = await (await c.create([{ role: "unified", size: data.length }], { aliases: ["cut"] })).json();
    assert.equal((await c.put(s.id, "unified", 1, slice(data, PB, 1))).status, 200);
    // Part 2: half its bytes, then the connection is dropped.
    await new Promise((resolve) => {
      const req = http.request(`${w.directUrl}/api/uploads/${s.id}/unified/2`, { method: "PUT", agent: false, headers: { ...auth, "content-length": PB } });
      req.on("error", resolve);
      req.on("response", resolve);
      req.write(slice(data, PB, 2).subarray(0, PB / 2), () => setTimeout(() => req.destroy(), 300));
    });
    let st;
    const t0 = Date.now();
    do {
      await new Promise((res) => setTimeout(res, 100));
      st = await (await c.status(s.id)).json();
    } while (st.validatedBytes !== null && Date.now() - t0 < 10000);
    assert.equal(st.validatedBytes, null, "what the core read of part 2 is not stored anywhere");
    assert.deepEqual(st.files[0].stored, [1]);
    for (const n of [2, 3, 4, 5]) assert.equal((await c.put(s.id, "unified", n, slice(data, PB, n))).status, 200);
    const r = await c.complete(s.id);
    const b = await r.json();
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(b).slice(0, 300));
    assert.equal(b.fingerprint, sha256(data));
    assert.equal(b.report.verdicts["lxd-5.0"].accepted, true);
    await w.consistent();
  });

  it("one keep-alive connection: a part refused unread, complete with a body, then the next requests are answered", async () => {
    // (Requests of a session go through its Durable Object: a body it does not read must not
    // hold the client's connection.)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const call = (method, p, body = null, headers = {}) =>
      new Promise((resolve, reject) => {
        const req = http.request(`${w.directUrl}${p}`, { method, agent, headers: { ...auth, ...headers, ...(body ? { "content-length": body.length } : {}) } }, (res) => {
          const bufs = [];
          res.on("data", (d) => bufs.push(d));
          res.on("end", () => resolve({ status: res.statusCode, socket: req.socket, text: Buffer.concat(bufs).toString() }));
        });
        req.setTimeout(15000, () => req.destroy(new Error(`${method} ${p}: no answer in 15 s`)));
        req.on("error", reject);
        req.end(body ?? undefined);
      });
    try {
      const data = img("unified-i386.tar.gz");
      let r = await call("POST", "/api/uploads", Buffer.from(JSON.stringify({ files: [{ role: "unified", size: data.length }] })), { "content-type": "application/json" });
      assert.equal(r.status, 201);
      const s = JSON.parse(r.text);
      const socket = r.socket;
      r = await call("PUT", `/api/uploads/${s.id}/unified/7`, Buffer.alloc(PB, 1));
      assert.equal(r.status, 400);
      r = await call("PUT", `/api/uploads/${s.id}/unified/1`, data);
      assert.equal(r.status, 200, r.text);
      r = await call("POST", `/api/uploads/${s.id}/complete`, Buffer.from("{}"), { "content-type": "application/json" });
      assert.ok(r.status === 201 || r.status === 200, r.text);
      r = await call("GET", `/api/uploads/${s.id}`);
      assert.equal(r.status, 200);
      assert.equal(r.socket, socket, "one connection throughout");
      r = await call("GET", "/api/version");
      assert.equal(r.status, 200);
    } finally {
      agent.destroy();
    }
  });

  it("a rejected image: 422 + Report on complete and on the status route; nothing left in R2 or D1", async () => {
    const c = client(w);
    const before = await w.consistent();
    for (const name of ["no-date.tar.xz", "not-an-image.txt"]) {
      const data = img(name);
      const s = await (await c.create([{ role: "unified", size: data.length, name }], { aliases: ["rejected"] })).json();
      await sendAll(c, s, { unified: data });
      let r = await c.complete(s.id);
      const b = await r.json();
      assert.equal(r.status, 422, name);
      assert.equal(r.headers.get("x-lxdimg-verdict"), "rejected");
      assert.equal(b.verdicts["lxd-5.0"].accepted, false);
      assert.match(b.error, /not stored/);
      r = await c.status(s.id);
      const st = await r.json();
      assert.equal(r.status, 422);
      assert.equal(st.status, "rejected");
      assert.equal(st.report.verdicts["lxd-5.0"].accepted, false);
      assert.equal((await c.complete(s.id)).status, 422);
      assert.deepEqual(await w.consistent(), before, name);
      assert.deepEqual(await sessionRows(w, s.id), { sessions: 1, files: 0, parts: 0 }, name);
      assert.ok((await w.objects()).every((k) => !k.includes(s.id)));
    }
  });

  it("two sessions for one image complete at once: one index row, the other answers 200 and deletes its objects", async () => {
    const c = client(w);
    const data = { metadata: img("split-meta.tar.xz"), rootfs: img("split-rootfs.squashfs") };
    const files = [
      { role: "metadata", size: data.metadata.length },
      { role: "rootfs", size: data.rootfs.length },
    ];
    const a = await (await c.create(files, { aliases: ["twin-a"] })).json();
    const b = await (await c.create(files, { aliases: ["twin-b"] })).json();
    assert.notEqual(a.id, b.id);
    await sendAll(c, a, data);
    await sendAll(c, b, data, (k) => [...Array(k).keys()].map((i) => k - i));
    const rs = await Promise.all([c.complete(a.id), c.complete(b.id)]);
    const bodies = await Promise.all(rs.map((r) => r.json()));
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 201]);
    assert.equal(bodies[0].fingerprint, bodies[1].fingerprint);
    const st = await w.consistent();
    const mine = st.images.filter((i) => i.fingerprint === bodies[0].fingerprint);
    assert.equal(mine.length, 1);
    const winner = rs[0].status === 201 ? a.id : b.id;
    const loser = winner === a.id ? b.id : a.id;
    assert.equal(mine[0].upload_id, winner);
    assert.ok(st.objects.every((k) => !k.includes(loser)));
    assert.deepEqual(st.aliases.filter((x) => x.name.startsWith("twin")).map((x) => x.name), ["twin-a", "twin-b"]);
  });

  it("an image stored by someone else while the session was open: complete is a no-op (200, objects dropped, aliases added)", async () => {
    const c = client(w);
    const data = img("unified-amd64.tar.xz");
    const fp = sha256(data);
    const s = await (await c.create([{ role: "unified", size: data.length }], { fingerprint: fp, aliases: ["late"] })).json();
    await sendAll(c, s, { unified: data });
    let r = await w.fetch("/api/images?alias=first", { method: "POST", headers: auth, body: data });
    assert.equal(r.status, 201);
    const before = await w.consistent();
    r = await c.complete(s.id);
    const b = await r.json();
    assert.equal(r.status, 200, JSON.stringify(b).slice(0, 300));
    assert.equal(b.created, false);
    assert.equal(b.fingerprint, fp);
    const after = await w.consistent();
    assert.deepEqual(after.objects, before.objects);
    assert.deepEqual(after.images, before.images);
    assert.ok(after.aliases.some((a) => a.name === "late" && a.fingerprint === fp));
    assert.deepEqual(await sessionRows(w, s.id), { sessions: 1, files: 0, parts: 0 });
  });

  it("a completion whose invocation died is taken over by the next complete; one whose client left finishes", async () => {
    const c = client(w);
    const data = img("unified-arm64.tar.gz");
    let s = await (await c.create([{ role: "unified", size: data.length }], { aliases: ["takeover"] })).json();
    await sendAll(c, s, { unified: data });
    // As if an invocation had assembled the object and died: validating, no heartbeat.
    const rows = (await w.db.prepare("SELECT p.part, p.etag, f.r2_key, f.r2_upload_id FROM upload_parts p JOIN upload_files f USING (session_id, role) WHERE session_id = ?").bind(s.id).all()).results;
    await w.bucket.resumeMultipartUpload(rows[0].r2_key, rows[0].r2_upload_id).complete(rows.map((p) => ({ partNumber: p.part, etag: p.etag })));
    await w.db.prepare("UPDATE upload_sessions SET status = 'validating', runner = 'dead', heartbeat_at = ? WHERE id = ?").bind(Date.now() - 120000, s.id).run();
    assert.equal((await (await c.status(s.id)).json()).status, "validating");
    assert.equal((await c.put(s.id, "unified", 1, data)).status, 409);
    let r = await c.complete(s.id);
    assert.equal(r.status, 201, await r.clone().text());
    assert.equal((await r.json()).architecture, "aarch64");

    // A client that sends complete and goes away at once: the validation finishes anyway.
    const big = img("large-24m.tar.gz");
    s = await (await c.create([{ role: "unified", size: big.length }], { aliases: ["left"] })).json();
    await sendAll(c, s, { unified: big });
    const ac = new AbortController();
    const gone = c.complete(s.id, { signal: ac.signal }).catch((e) => e);
    setTimeout(() => ac.abort(), 50);
    await gone;
    const t0 = Date.now();
    let st;
    do {
      await new Promise((res) => setTimeout(res, 200));
      st = await (await c.status(s.id)).json();
    } while (st.status !== "complete" && Date.now() - t0 < 60000);
    assert.equal(st.status, "complete");
    assert.equal(st.image.fingerprint, sha256(big));
    await w.consistent();
  });
});

describe("upload sessions: the sweep", () => {
  it("aborts a session never completed (R2 multipart aborted, rows gone, status aborted); finished rows go later", async () => {
    const w = await start({ PART_BYTES: String(5 * MiB), SESSION_TTL_SECONDS: "0", SWEEP_AFTER_SECONDS: "0" });
    try {
      const c = client(w);
      const data = img("large-24m.tar.gz");
      const s = await (await c.create([{ role: "unified", size: data.length }])).json();
      assert.equal((await c.put(s.id, "unified", 1, slice(data, s.partBytes, 1))).status, 200);
      const row = await w.db.prepare("SELECT r2_key, r2_upload_id FROM upload_files WHERE session_id = ?").bind(s.id).first();
      // A kept image, and a finished session, to see what the sweep leaves.
      const done = await (await c.create([{ role: "unified", size: img("unified-i386.tar.gz").length }], { aliases: ["kept"] })).json();
      await sendAll(c, done, { unified: img("unified-i386.tar.gz") });
      assert.equal((await c.complete(done.id)).status, 201);
      const kept = await w.consistent();
      await new Promise((r) => setTimeout(r, 1100));
      const worker = await w.mf.getWorker();
      await worker.scheduled({ cron: "17 3 * * *" });
      let st;
      const t0 = Date.now();
      do {
        await new Promise((r) => setTimeout(r, 100));
        st = await (await c.status(s.id)).json();
      } while (st.status !== "aborted" && Date.now() - t0 < 10000);
      assert.equal(st.status, "aborted");
      assert.deepEqual(st.files, []);
      assert.deepEqual(await sessionRows(w, s.id), { sessions: 1, files: 0, parts: 0 });
      assert.equal(await multipartAlive(w, row.r2_key, row.r2_upload_id), false);
      assert.equal((await c.put(s.id, "unified", 2, slice(data, s.partBytes, 2))).status, 409);
      assert.equal((await c.complete(s.id)).status, 409);
      assert.deepEqual(await w.consistent(), kept);
      // The finished session's row (expired at once with TTL 0) is gone; the next sweep takes the aborted one.
      assert.equal((await c.status(done.id)).status, 404);
      await new Promise((r) => setTimeout(r, 1100));
      await worker.scheduled({ cron: "17 3 * * *" });
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await sessionRows(w), { sessions: 0, files: 0, parts: 0 });
      assert.deepEqual(await w.consistent(), kept);
    } finally {
      await w.close();
    }
  });
});

void WORKER;

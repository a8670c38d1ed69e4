// The worker in workerd (Miniflare), every endpoint: uploads (unified, split, VM, rejected,
// unauthenticated, over the limit, aborted midway, concurrent duplicates), URL-import answers
// with architecture negotiation, bytes (200/206/416/304, no Content-Encoding), simplestreams,
// listing and delete.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { start, images, sha256, cliReport, multipart, auth, TOKEN } from "./harness.js";

const X86 = { "Lxd-Server-Architectures": "x86_64, i686" };
const ARM = { "Lxd-Server-Architectures": "aarch64, armv7l, armv6l" };

let w;
let img;
const fp = {};

async function upload(body, { query = "", headers = {}, method = "POST" } = {}) {
  return w.fetch(`/api/images${query}`, { method, body, headers: { ...auth, "content-type": "application/octet-stream", ...headers } });
}

async function uploadSplit(meta, rootName, root, query = "") {
  const { body, contentType } = multipart([
    { name: "metadata", filename: meta, data: img(meta) },
    { name: rootName, filename: root, data: img(root) },
  ]);
  return upload(body, { query, headers: { "content-type": contentType } });
}

/** Raw HTTP, to see exactly the headers and bytes on the wire. */
function raw(path, headers = {}, method = "GET") {
  return new Promise((resolve, reject) => {
    const req = http.request(w.url + path, { method, headers }, (res) => {
      const bufs = [];
      res.on("data", (d) => bufs.push(d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(bufs) }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function settle(check, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() - t0 > ms) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

before(async () => {
  img = images();
  w = await start();
});
after(async () => {
  await w?.close();
});

describe("upload", () => {
  it("refuses missing and wrong tokens, storing nothing", async () => {
    let r = await w.fetch("/api/images", { method: "POST", body: img("unified-amd64.tar.xz") });
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate"), /Bearer/);
    assert.match(await r.text(), /Missing bearer token/);
    r = await w.fetch("/api/images", { method: "POST", body: img("unified-amd64.tar.xz"), headers: { authorization: "Bearer nope" } });
    assert.equal(r.status, 401);
    assert.match(await r.text(), /Wrong token/);
    r = await w.fetch("/api/images", { method: "POST", body: img("unified-amd64.tar.xz"), headers: { authorization: `Basic ${TOKEN}` } });
    assert.equal(r.status, 401);
    assert.deepEqual(await w.objects(), []);
    assert.equal(await w.rows("images"), 0);
  });

  it("accepts a unified image: fingerprint from the core, one R2 object, one row, aliases", async () => {
    const r = await upload(img("unified-amd64.tar.xz"), { query: "?alias=testos&alias=testos/one&filename=unified-amd64.tar.xz" });
    const body = await r.json();
    assert.equal(r.status, 201, JSON.stringify(body).slice(0, 500));
    assert.equal(body.created, true);
    assert.equal(body.fingerprint, sha256(img("unified-amd64.tar.xz")));
    const cli = cliReport("unified-amd64.tar.xz");
    if (cli) assert.equal(body.fingerprint, cli.fingerprint);
    assert.equal(body.architecture, "x86_64");
    assert.equal(body.type, "container");
    assert.equal(body.report.verdicts["lxd-5.0"].accepted, true);
    assert.deepEqual(body.warnings, []);
    assert.match(body.import, /^lxc image import http:\/\/127\.0\.0\.1:\d+\/testos --alias testos$/);
    fp.amd64 = body.fingerprint;
    assert.equal((await w.objects()).length, 1);
    assert.equal(await w.rows("images"), 1);
    assert.equal(await w.rows("aliases"), 2);
  });

  it("re-uploading the same image is idempotent and can add an alias", async () => {
    const r = await upload(img("unified-amd64.tar.xz"), { query: "?alias=again" });
    const body = await r.json();
    assert.equal(r.status, 200);
    assert.equal(body.created, false);
    assert.equal(body.fingerprint, fp.amd64);
    await settle(async () => assert.equal((await w.objects()).length, 1));
    assert.equal(await w.rows("images"), 1);
    assert.equal(await w.rows("aliases"), 3);
  });

  it("concurrent uploads of one new image store it once", async () => {
    const before = (await w.objects()).length;
    const rs = await Promise.all([0, 1, 2].map(() => upload(img("unified-amd64-b.tar.gz"), { query: "?alias=dup" })));
    const statuses = rs.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 201]);
    const fps = new Set(await Promise.all(rs.map(async (r) => (await r.json()).fingerprint)));
    assert.equal(fps.size, 1);
    fp.amd64b = [...fps][0];
    await settle(async () => assert.equal((await w.objects()).length, before + 1));
    assert.equal(await w.rows("images"), 2);
  });

  it("rejects a non-image with 422 and the Report, storing nothing", async () => {
    const before = await w.objects();
    const r = await upload(img("not-an-image.txt"), { query: "?alias=bad" });
    assert.equal(r.status, 422);
    const report = await r.json();
    assert.equal(report.verdicts["lxd-5.0"].accepted, false);
    assert.equal(report.verdicts["lxd-5.0"].error, "Unsupported compression");
    assert.deepEqual(await w.objects(), before);
    assert.equal(await w.rows("images"), 2);
    assert.equal((await w.db.prepare("SELECT COUNT(*) AS n FROM aliases WHERE name = 'bad'").first()).n, 0);
  });

  it("rejects an image LXD refuses (missing creation date) with LXD's message", async () => {
    const before = await w.objects();
    const r = await upload(img("no-date.tar.xz"));
    assert.equal(r.status, 422);
    const report = await r.json();
    assert.equal(report.verdicts["lxd-5.0"].error, "Missing creation date");
    const cli = cliReport("no-date.tar.xz");
    if (cli) assert.equal(report.verdicts["lxd-5.0"].error, cli.verdicts["lxd-5.0"].error);
    assert.deepEqual(await w.objects(), before);
  });

  it("accepts an image LXD imports but could not launch, with a warning", async () => {
    const r = await upload(img("truncated.tar.gz"), { query: "?alias=truncated" });
    const body = await r.json();
    assert.equal(r.status, 201);
    assert.equal(body.warnings.length, 1);
    assert.match(body.warnings[0], /^lxc launch would fail: .*unexpected end of file/);
    const del = await w.fetch(`/api/images/${body.fingerprint}`, { method: "DELETE", headers: auth });
    assert.equal(del.status, 200);
  });

  it("accepts more architectures (arm64, i386) under one alias", async () => {
    let r = await upload(img("unified-arm64.tar.gz"), { query: "?alias=armonly&alias=multi" });
    assert.equal(r.status, 201);
    fp.arm64 = (await r.json()).fingerprint;
    r = await upload(img("unified-i386.tar.gz"), { query: "?alias=multi&alias=i386only" });
    assert.equal(r.status, 201);
    fp.i386 = (await r.json()).fingerprint;
    r = await upload(img("unified-amd64.tar.xz"), { query: "?alias=multi" });
    assert.equal(r.status, 200);
  });

  it("accepts a split container image as LXD's multipart (metadata, rootfs)", async () => {
    const r = await uploadSplit("split-meta.tar.xz", "rootfs", "split-rootfs.squashfs", "?alias=splitc");
    const body = await r.json();
    assert.equal(r.status, 201, JSON.stringify(body).slice(0, 400));
    assert.equal(body.format, "split");
    assert.equal(body.type, "container");
    assert.equal(body.fingerprint, sha256(img("split-meta.tar.xz"), img("split-rootfs.squashfs")));
    assert.match(body.import, /^lxc remote add 127-0-0-1 http:\/\/127\.0\.0\.1:\d+ --protocol simplestreams --public && lxc image copy 127-0-0-1:splitc local:$/);
    const cli = cliReport("split-meta.tar.xz", "split-rootfs.squashfs");
    if (cli) assert.equal(body.fingerprint, cli.fingerprint);
    assert.deepEqual(body.report.files.map((f) => [f.role, f.name]), [
      ["metadata", "split-meta.tar.xz"],
      ["rootfs", "split-rootfs.squashfs"],
    ]);
    fp.split = body.fingerprint;
  });

  it("accepts a split VM image (rootfs.img part)", async () => {
    const r = await uploadSplit("vm-meta.tar.xz", "rootfs.img", "vm-rootfs.img", "?alias=splitvm");
    const body = await r.json();
    assert.equal(r.status, 201);
    assert.equal(body.type, "virtual-machine");
    fp.vm = body.fingerprint;
  });

  it("refuses malformed multipart bodies with 400, storing nothing", async () => {
    const before = await w.objects();
    const rows = await w.rows("images");
    for (const parts of [
      [{ name: "rootfs", filename: "r", data: img("split-rootfs.squashfs") }],
      [
        { name: "metadata", filename: "m", data: img("split-meta.tar.xz") },
        { name: "root", filename: "r", data: img("split-rootfs.squashfs") },
      ],
      [{ name: "metadata", filename: "m", data: img("split-meta.tar.xz") }],
    ]) {
      const { body, contentType } = multipart(parts);
      const r = await upload(body, { headers: { "content-type": contentType } });
      assert.equal(r.status, 400);
      assert.match(await r.text(), /^Invalid multipart image/);
    }
    const r = await upload(Buffer.from("garbage"), { headers: { "content-type": "multipart/form-data" } });
    assert.equal(r.status, 400);
    const t = multipart([{ name: "metadata", filename: "m", data: img("split-meta.tar.xz") }]);
    const r2 = await upload(t.body.subarray(0, 200), { headers: { "content-type": t.contentType } });
    assert.equal(r2.status, 400);
    await settle(async () => assert.deepEqual(await w.objects(), before));
    assert.equal(await w.rows("images"), rows);
  });

  it("validates aliases", async () => {
    for (const a of ["api", "images/x", "a b", "a,b", "-x", "", "x".repeat(201), "a".repeat(64)]) {
      const r = await upload(img("unified-amd64.tar.xz"), { query: `?alias=${encodeURIComponent(a)}` });
      assert.equal(r.status, 400, a);
      assert.match(await r.text(), /Invalid alias/);
    }
  });

  it("an aborted upload (client closes midway) leaves nothing behind", async () => {
    const before = await w.objects();
    const rows = await w.rows("images");
    const data = Buffer.alloc(24 << 20, 7); // bigger than one R2 part, so a multipart upload is under way
    const u = new URL(w.url);
    await new Promise((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => {
        s.write(
          `POST /api/images?alias=aborted HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
            `Content-Type: application/octet-stream\r\nContent-Length: ${data.length * 2}\r\n\r\n`,
        );
        s.write(data, () => setTimeout(() => s.destroy(), 300));
      });
      s.on("close", resolve);
      s.on("error", () => {});
    });
    await settle(async () => assert.deepEqual(await w.objects(), before), 10000);
    assert.equal(await w.rows("images"), rows);
    assert.equal((await w.db.prepare("SELECT COUNT(*) AS n FROM aliases WHERE name = 'aborted'").first()).n, 0);
  });

  it("an aborted split upload removes the metadata object it had already stored", async () => {
    const before = await w.objects();
    const rows = await w.rows("images");
    const { body, contentType } = multipart([
      { name: "metadata", filename: "m.tar.xz", data: img("split-meta.tar.xz") },
      { name: "rootfs", filename: "r.squashfs", data: Buffer.alloc(4 << 20, 1) },
    ]);
    const cut = body.subarray(0, body.length - (1 << 20)); // the metadata part whole, the rootfs part in part
    const u = new URL(w.url);
    let sawMetadataObject = false;
    await new Promise((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => {
        s.write(
          `POST /api/images?alias=aborted2 HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
            `Content-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        s.write(cut, async () => {
          // Wait until the worker has stored the metadata part, then vanish.
          const t0 = Date.now();
          while (Date.now() - t0 < 5000) {
            if ((await w.objects()).some((k) => k.endsWith("/metadata") && !before.includes(k))) {
              sawMetadataObject = true;
              break;
            }
            await new Promise((r) => setTimeout(r, 50));
          }
          s.destroy();
        });
      });
      s.on("close", resolve);
      s.on("error", () => {});
    });
    assert.ok(sawMetadataObject, "the metadata part was stored before the abort");
    await settle(async () => assert.deepEqual(await w.objects(), before), 10000);
    assert.equal(await w.rows("images"), rows);
  });

  it("gates uploads on VERDICT_TARGET (a loong64 image: LXD 5.0 refuses it, Incus 6.0 stores it)", async () => {
    let r = await w.fetch("/api/images?alias=loong-default", { method: "POST", body: img("unified-loong64.tar.gz"), headers: auth });
    assert.equal(r.status, 422);
    assert.equal(r.headers.get("x-lxdimg-verdict"), "rejected");
    const incus = await start({ VERDICT_TARGET: "incus-6.0" });
    try {
      r = await incus.fetch("/api/images?alias=loong", { method: "POST", body: img("unified-loong64.tar.gz"), headers: auth });
      assert.ok(r.status === 200 || r.status === 201, `status ${r.status}: ${await r.text()}`);
      assert.equal(await incus.rows("images"), 1);
      const bad = await start({ VERDICT_TARGET: "lxd-9" });
      try {
        r = await bad.fetch("/api/images", { method: "POST", body: img("unified-amd64.tar.xz"), headers: auth });
        assert.equal(r.status, 500);
        assert.match(await r.text(), /VERDICT_TARGET "lxd-9" is not a verdict target/);
      } finally {
        await bad.close();
      }
    } finally {
      await incus.close();
    }
  });

  it("refuses uploads over the size limit (declared or streamed), storing nothing", async () => {
    const small = await start({ MAX_UPLOAD_BYTES: "10000" });
    try {
      let r = await small.fetch("/api/images", { method: "POST", body: img("unified-amd64.tar.xz"), headers: auth });
      assert.equal(r.status, 413);
      assert.match(await r.text(), /size limit of 10000 bytes/);
      // No Content-Length: the limit is enforced while streaming.
      const body = img("unified-amd64.tar.xz");
      const stream = new ReadableStream({
        start(c) {
          for (let i = 0; i < body.length; i += 1000) c.enqueue(new Uint8Array(body.subarray(i, i + 1000)));
          c.close();
        },
      });
      r = await small.fetch("/api/images", { method: "POST", body: stream, duplex: "half", headers: auth });
      assert.equal(r.status, 413);
      assert.deepEqual(await small.objects(), []);
      assert.equal(await small.rows("images"), 0);
    } finally {
      await small.close();
    }
  });

  it("POST /api/inspect validates without storing", async () => {
    const before = await w.objects();
    let r = await w.fetch("/api/inspect", { method: "POST", body: img("unified-arm64.tar.gz"), headers: auth });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).architecture, "aarch64");
    r = await w.fetch("/api/inspect", { method: "POST", body: img("not-an-image.txt"), headers: auth });
    assert.equal(r.status, 422);
    r = await w.fetch("/api/inspect", { method: "POST", body: img("not-an-image.txt") });
    assert.equal(r.status, 401);
    assert.deepEqual(await w.objects(), before);
  });
});

describe("URL-import answers", () => {
  async function head(path, headers) {
    return w.fetch(path, { method: "HEAD", headers });
  }

  it("answers LXD's HEAD with both header families, full hash and absolute URL", async () => {
    const r = await head("/testos", X86);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("lxd-image-hash"), fp.amd64);
    assert.equal(r.headers.get("incus-image-hash"), fp.amd64);
    assert.match(r.headers.get("lxd-image-hash"), /^[0-9a-f]{64}$/);
    assert.equal(r.headers.get("lxd-image-url"), `${w.url}/images/${fp.amd64}/unified`);
    assert.equal(r.headers.get("incus-image-url"), r.headers.get("lxd-image-url"));
    assert.match(r.headers.get("vary"), /LXD-Server-Architectures/);
  });

  it("negotiates: names, aliases, numeric IDs, casing, Incus headers", async () => {
    const cases = [
      ["multi", { "Lxd-Server-Architectures": "x86_64, i686" }, "amd64"],
      ["multi", { "LXD-SERVER-ARCHITECTURES": "2, 1" }, "amd64"],
      ["multi", { "lxd-server-architectures": "amd64" }, "amd64"],
      ["multi", { "Lxd-Server-Architectures": "aarch64, armv7l" }, "arm64"],
      ["multi", { "Lxd-Server-Architectures": "4" }, "arm64"],
      ["multi", { "Lxd-Server-Architectures": "arm64" }, "arm64"],
      ["multi", { "Lxd-Server-Architectures": "i686" }, "i386"],
      ["multi", { "Lxd-Server-Architectures": "1" }, "i386"],
      ["multi", { "Incus-Server-Architectures": "aarch64" }, "arm64"],
      ["multi", { "incus-server-architectures": "x86_64" }, "amd64"],
      ["i386only", X86, "i386"], // x86_64 hosts run i686 images
      ["multi", { "Lxd-Server-Architectures": "sparc, aarch64" }, "arm64"],
    ];
    for (const [name, headers, want] of cases) {
      const r = await head(`/${name}`, headers);
      assert.equal(r.status, 200, JSON.stringify(headers));
      assert.equal(r.headers.get("lxd-image-hash"), fp[want], JSON.stringify(headers));
      assert.equal(r.headers.get("incus-image-hash"), fp[want]);
    }
  });

  it("404 in plain text, without image headers, when no architecture matches", async () => {
    for (const [path, headers, msg] of [
      ["/armonly", X86, /No image for alias "armonly" matches the client's architectures \(x86_64, i686\); it exists for: aarch64/],
      ["/i386only", ARM, /it exists for: i686/],
      ["/nosuchalias", X86, /No image with alias "nosuchalias"/],
      [`/${"0".repeat(64)}`, X86, /No image with fingerprint/],
    ]) {
      const r = await w.fetch(path, { headers });
      assert.equal(r.status, 404, path);
      assert.match(r.headers.get("content-type"), /^text\/plain/);
      assert.equal(r.headers.get("lxd-image-hash"), null);
      assert.equal(r.headers.get("incus-image-hash"), null);
      assert.match(await r.text(), msg);
    }
  });

  it("400 for malformed architecture headers", async () => {
    // (An empty value does not survive the HTTP layer: it reads as no header, i.e. a browser.)
    for (const v of [" , ", "sparc, vax", "x".repeat(5000)]) {
      const r = await w.fetch("/testos", { headers: { "Lxd-Server-Architectures": v } });
      assert.equal(r.status, 400, JSON.stringify(v.slice(0, 20)));
      assert.equal(r.headers.get("lxd-image-hash"), null);
      assert.match(await r.text(), /LXD-Server-Architectures header/);
    }
  });

  it("split images are not URL-importable: 404 with the simplestreams hint", async () => {
    const r = await w.fetch("/splitc", { headers: X86 });
    assert.equal(r.status, 404);
    assert.equal(r.headers.get("lxd-image-hash"), null);
    assert.match(await r.text(), /split image .* --protocol simplestreams/);
  });

  it("answers by fingerprint (any case), checking the architecture", async () => {
    let r = await head(`/${fp.arm64.toUpperCase()}`, ARM);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("lxd-image-hash"), fp.arm64);
    r = await head(`/${fp.arm64}`, X86);
    assert.equal(r.status, 404);
  });

  it("GET with the headers answers too; a browser gets a page", async () => {
    let r = await w.fetch("/testos", { headers: X86 });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("lxd-image-hash"), fp.amd64);
    r = await w.fetch("/multi");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/html/);
    assert.equal(r.headers.get("lxd-image-hash"), null);
    const html = await r.text();
    assert.match(html, /lxc image import http:\/\/127\.0\.0\.1:\d+\/multi --alias multi/);
    assert.match(html, /--protocol simplestreams/);
    for (const a of ["x86_64", "aarch64", "i686"]) assert.match(html, new RegExp(a));
    r = await w.fetch("/nosuch");
    assert.equal(r.status, 404);
  });

  it("the browser's page speaks the reader's language: Accept-Language, ?lang=, Vary", async () => {
    const cases = [
      [{}, "", "en"],
      [{ "Accept-Language": "en-US,en;q=0.9" }, "", "en"],
      [{ "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8" }, "", "zh-CN"],
      [{ "Accept-Language": "zh-TW" }, "", "zh-CN"],
      [{ "Accept-Language": "fr, zh;q=0.5, en;q=0.3" }, "", "zh-CN"],
      [{ "Accept-Language": "fr, de" }, "", "en"],
      [{ "Accept-Language": "zh-CN" }, "?lang=en", "en"],
      [{ "Accept-Language": "en" }, "?lang=zh-CN", "zh-CN"],
      [{ "Accept-Language": "en" }, "?lang=xx", "en"],
    ];
    for (const [headers, query, want] of cases) {
      const r = await w.fetch(`/multi${query}`, { headers });
      const what = `${JSON.stringify(headers)} ${query}`;
      assert.equal(r.status, 200, what);
      assert.match(r.headers.get("vary"), /Accept-Language/, what);
      assert.match(r.headers.get("vary"), /LXD-Server-Architectures/, what);
      assert.equal(r.headers.get("content-language"), want, what);
      const html = await r.text();
      assert.match(html, new RegExp(`<html lang="${want}">`), what);
      // The command lines are the same in every language; the words around them are not.
      assert.match(html, /lxc image import http:\/\/127\.0\.0\.1:\d+\/multi --alias multi/, what);
      if (want === "zh-CN") {
        assert.match(html, /镜像“multi”/, what);
        assert.match(html, /指纹 <code>[0-9a-f]{64}<\/code>/, what);
        assert.match(html, /别名：/, what);
        assert.match(html, /<a href="\/multi\?lang=en" lang="en" hreflang="en">English<\/a>/, what);
        assert.doesNotMatch(html, /This address is an LXD\/Incus image URL/, what);
      } else {
        assert.match(html, /Image “multi”/, what);
        assert.match(html, /This address is an LXD\/Incus image URL/, what);
        assert.match(html, /<a href="\/multi\?lang=zh-CN" lang="zh-CN" hreflang="zh-CN">简体中文<\/a>/, what);
      }
    }
    // The fingerprint page too.
    const r = await w.fetch(`/${fp.amd64}`, { headers: { "Accept-Language": "zh-CN" } });
    assert.match(await r.text(), new RegExp(`镜像 ${fp.amd64.slice(0, 12)}`));
  });
});

describe("bytes", () => {
  const path = () => `/images/${fp.amd64}/unified`;

  it("full GET: 200, exact length, the stored bytes, no Content-Encoding even when gzip is offered", async () => {
    const r = await raw(path(), { "accept-encoding": "gzip, deflate, br" });
    const want = img("unified-amd64.tar.xz");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-length"], String(want.length));
    assert.equal(r.headers["content-encoding"], undefined);
    assert.equal(r.headers["transfer-encoding"], undefined);
    assert.ok(r.body.equals(want));
    assert.equal(sha256(r.body), fp.amd64);
    assert.equal(r.headers.etag, `"${fp.amd64}"`);
    assert.match(r.headers["cache-control"], /immutable/);
    assert.match(r.headers["cache-control"], /no-transform/);
    assert.match(r.headers["cache-control"], /max-age=31536000/);
    assert.equal(r.headers["content-type"], "application/octet-stream");
    assert.equal(r.headers["accept-ranges"], "bytes");
  });

  it("HEAD: headers and length, no body", async () => {
    const r = await raw(path(), {}, "HEAD");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-length"], String(img("unified-amd64.tar.xz").length));
    assert.equal(r.body.length, 0);
  });

  it("Range: 206 with Content-Range; suffix and open ranges; 416 beyond the end; junk ignored", async () => {
    const want = img("unified-amd64.tar.xz");
    const n = want.length;
    let r = await raw(path(), { range: "bytes=0-99" });
    assert.equal(r.status, 206);
    assert.equal(r.headers["content-range"], `bytes 0-99/${n}`);
    assert.equal(r.headers["content-length"], "100");
    assert.ok(r.body.equals(want.subarray(0, 100)));
    r = await raw(path(), { range: "bytes=-10" });
    assert.equal(r.status, 206);
    assert.ok(r.body.equals(want.subarray(n - 10)));
    r = await raw(path(), { range: `bytes=${n - 5}-` });
    assert.ok(r.body.equals(want.subarray(n - 5)));
    for (const bad of [`bytes=${n}-`, "bytes=99999999999999999999-", "bytes=-0"]) {
      r = await raw(path(), { range: bad });
      assert.equal(r.status, 416, bad);
      assert.equal(r.headers["content-range"], `bytes */${n}`);
    }
    for (const junk of ["bytes=abc", "bytes=5-1", "bytes=0-1,4-5", "lines=1-2", "bytes=" + "9".repeat(500)]) {
      r = await raw(path(), { range: junk });
      assert.equal(r.status, 200, junk);
      assert.equal(r.body.length, n);
    }
    r = await raw(path(), { range: "bytes=0-9", "if-range": '"stale"' });
    assert.equal(r.status, 200);
  });

  it("conditional GET: 304 on a matching ETag", async () => {
    const r = await raw(path(), { "if-none-match": `"${fp.amd64}"` });
    assert.equal(r.status, 304);
  });

  it("split files are served by role; unknown files are 404", async () => {
    let r = await raw(`/images/${fp.split}/rootfs`);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(img("split-rootfs.squashfs")));
    r = await raw(`/images/${fp.split}/unified`);
    assert.equal(r.status, 404);
    r = await raw(`/images/${fp.split}/other`);
    assert.equal(r.status, 404);
  });
});

describe("simplestreams", () => {
  it("index.json points at images.json and lists every product", async () => {
    const r = await w.fetch("/streams/v1/index.json");
    assert.equal(r.status, 200);
    const idx = await r.json();
    assert.equal(idx.format, "index:1.0");
    const e = idx.index.images;
    assert.equal(e.datatype, "image-downloads");
    assert.equal(e.path, "streams/v1/images.json");
    assert.equal(e.format, "products:1.0");
    const products = (await (await w.fetch("/streams/v1/images.json")).json()).products;
    assert.deepEqual(e.products, Object.keys(products).sort());
  });

  it("images.json: both item families, correct combined hashes, dated versions, aliases", async () => {
    const doc = await (await w.fetch("/streams/v1/images.json")).json();
    assert.equal(doc.format, "products:1.0");
    assert.equal(doc.datatype, "image-downloads");
    const byFp = {};
    for (const p of Object.values(doc.products)) {
      const versions = Object.entries(p.versions);
      assert.equal(versions.length, 1);
      const [name, v] = versions[0];
      assert.match(name, /^\d{8}_\d{4}$/);
      for (const item of Object.values(v.items)) {
        assert.ok(!item.path.startsWith("/") && !item.path.includes("://"), item.path);
        assert.match(item.sha256, /^[0-9a-f]{64}$/);
        const r = await raw("/" + item.path);
        assert.equal(r.status, 200);
        assert.equal(sha256(r.body), item.sha256);
        assert.equal(r.body.length, item.size);
      }
      const combined = v.items["lxd_combined.tar.gz"]?.sha256 ?? v.items["lxd.tar.xz"][Object.keys(v.items["lxd.tar.xz"]).find((k) => k.startsWith("combined_"))];
      byFp[combined] = p;
    }
    const unified = byFp[fp.amd64];
    assert.equal(unified.arch, "x86_64");
    assert.equal(unified.os, "testos");
    assert.equal(unified.release, "one");
    assert.deepEqual(unified.aliases.split(",").sort(), ["again", "multi", "testos", "testos/one"].sort());
    const uv = Object.values(unified.versions)[0];
    assert.deepEqual(Object.keys(uv.items).sort(), ["incus_combined.tar.gz", "lxd_combined.tar.gz"]);
    assert.equal(uv.items["lxd_combined.tar.gz"].sha256, fp.amd64);
    assert.equal(Object.keys(unified.versions)[0], "20240101_0000");

    const split = Object.values(byFp[fp.split].versions)[0].items;
    assert.deepEqual(Object.keys(split).sort(), ["incus.tar.xz", "lxd.tar.xz", "squashfs"]);
    for (const k of ["lxd.tar.xz", "incus.tar.xz"]) {
      assert.equal(split[k].combined_squashfs_sha256, fp.split);
      assert.equal(split[k].sha256, sha256(img("split-meta.tar.xz")));
    }
    assert.equal(split.squashfs.ftype, "squashfs");
    assert.equal(split.squashfs.sha256, sha256(img("split-rootfs.squashfs")));
    assert.equal(byFp[fp.split].aliases, "splitc");

    const vm = Object.values(byFp[fp.vm].versions)[0].items;
    assert.deepEqual(Object.keys(vm).sort(), ["disk-kvm.img", "incus.tar.xz", "lxd.tar.xz"]);
    assert.equal(vm["lxd.tar.xz"]["combined_disk-kvm-img_sha256"], fp.vm);
    assert.equal(byFp[fp.arm64].arch, "aarch64");
  });
});

describe("listing and delete", () => {
  it("lists images as JSON without storage keys", async () => {
    const r = await w.fetch("/api/images");
    assert.equal(r.status, 200);
    const { images: list } = await r.json();
    assert.equal(list.length, 6);
    const a = list.find((i) => i.fingerprint === fp.amd64);
    assert.equal(a.architecture, "x86_64");
    assert.equal(a.url, `${w.url}/images/${fp.amd64}/unified`);
    assert.equal(a.files[0].r2_key, undefined);
    assert.equal(a.upload_id, undefined);
    assert.equal(a.properties.os, "testos");
    assert.ok(Array.isArray(a.templates));
    const one = await (await w.fetch(`/api/images/${fp.split}`)).json();
    assert.equal(one.format, "split");
    assert.equal((await w.fetch(`/api/images/${"1".repeat(64)}`)).status, 404);
    assert.equal((await w.fetch("/api/images/xyz")).status, 400);
  });

  it("delete needs the token, removes rows, aliases and R2 objects", async () => {
    let r = await w.fetch(`/api/images/${fp.arm64}`, { method: "DELETE" });
    assert.equal(r.status, 401);
    const before = (await w.objects()).length;
    r = await w.fetch(`/api/images/${fp.arm64}`, { method: "DELETE", headers: auth });
    assert.equal(r.status, 200);
    assert.equal((await w.objects()).length, before - 1);
    r = await w.fetch("/armonly", { method: "HEAD", headers: ARM });
    assert.equal(r.status, 404);
    r = await w.fetch(`/api/images/${fp.arm64}`, { method: "DELETE", headers: auth });
    assert.equal(r.status, 404);
    r = await w.fetch(`/api/aliases/again`, { method: "DELETE", headers: auth });
    assert.equal(r.status, 200);
    r = await w.fetch("/again", { method: "HEAD", headers: X86 });
    assert.equal(r.status, 404);
  });

  it("the scheduled sweep deletes orphaned upload objects and keeps indexed ones", async () => {
    const sw = await start({ SWEEP_AFTER_SECONDS: "0" });
    try {
      const r = await sw.fetch("/api/images?alias=kept", { method: "POST", body: img("unified-i386.tar.gz"), headers: auth });
      assert.equal(r.status, 201);
      const kept = await sw.objects();
      await sw.bucket.put("uploads/00000000-orphan/unified", "left behind by an evicted isolate");
      assert.equal((await sw.objects()).length, kept.length + 1);
      const worker = await sw.mf.getWorker();
      await worker.scheduled({ cron: "17 3 * * *" });
      await settle(async () => assert.deepEqual(await sw.objects(), kept));
    } finally {
      await sw.close();
    }
  });

  it("wrong methods and unknown API paths", async () => {
    assert.equal((await w.fetch("/streams/v1/index.json", { method: "POST" })).status, 405);
    assert.equal((await w.fetch(`/images/${fp.amd64}/unified`, { method: "DELETE" })).status, 405);
    assert.equal((await w.fetch("/api/nothing")).status, 404);
    const v = await (await w.fetch("/api/version")).json();
    assert.match(v.core, /^\d+\.\d+\.\d+/);
  });
});

/**
 * `POST /api/images`: a validated, streaming upload.
 *
 * Body: a unified image as the raw bytes (any Content-Type but multipart), or a split image as
 * `multipart/form-data` exactly like `lxc image import META ROOTFS` sends it (facts §3): part
 * `metadata`, then part `rootfs` (container) or `rootfs.img` (virtual machine); later parts are
 * ignored. Query: `alias=NAME` (repeatable), `filename=NAME` (unified file name for the report).
 *
 * The bytes go through the core and into R2 at the same time (the request body is never held
 * whole; the metadata part of a split upload is kept until the rootfs part says which type it
 * is, up to METADATA_BUFFER bytes). The D1 rows are written only once the core's verdict for the
 * reference target (`referenceTarget()`, LXD 5.0) accepts the image; any other ending — rejection
 * or a verdict lxdimg cannot give (422 + Report), a client that goes away, a body over
 * MAX_UPLOAD_BYTES (413), a malformed multipart body (400), a storage failure — removes what was
 * put in R2.
 */
import { Inspection, CoreError, referenceTarget, targets } from "./core.js";
import { R2Sink } from "./r2sink.js";
import { readLarge } from "./bodyread.js";
import { MultipartReader, MultipartError, multipartBoundary, MAX_BOUNDARY } from "./multipart.js";
import { commitImage } from "./db.js";
import { HttpError, json, requireToken, publicOrigin, remoteName } from "./http.js";
import { validateAliases, validateFilename, checkAliasFree, quote } from "./names.js";
import { checkDeclaredLength, counter, wholeNumber } from "./limits.js";

export const DEFAULT_MAX_UPLOAD = 8 * 1024 ** 3;
export const METADATA_BUFFER = 32 * 1024 * 1024;

/** The upload size limit from the environment (bytes). */
export function uploadLimit(env) {
  const n = Number(env.MAX_UPLOAD_BYTES);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_MAX_UPLOAD;
}

/**
 * The core's expansion limits from the environment: `MAX_DECODED_BYTES` and `MAX_EXPANSION_RATIO`
 * (whole numbers; empty or unset: the core's defaults, 1 GiB and 100). A file that decodes past
 * both gets a `decompression-bomb` error finding and is decoded no further.
 */
export function expansionLimits(env) {
  return { maxDecodedBytes: wholeNumber(env, "MAX_DECODED_BYTES"), maxExpansionRatio: wholeNumber(env, "MAX_EXPANSION_RATIO") };
}

function tooLarge(limit) {
  return new HttpError(413, `Upload exceeds the size limit of ${limit} bytes (MAX_UPLOAD_BYTES)`);
}

async function* chunks(stream) {
  try {
    yield* readLarge(stream, { reuse: true });
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, `Upload aborted: the request body ended with an error (${e?.message ?? e})`);
  }
}

/** Wraps multipart errors and body read failures into HTTP errors. */
function wrapRead(e) {
  if (e instanceof MultipartError) return new HttpError(400, e.message);
  if (e instanceof HttpError || e instanceof CoreError) return e;
  return new HttpError(400, `Upload aborted: the request body ended with an error (${e?.message ?? e})`);
}

/**
 * Handles one upload. `dryRun`: inspect only (`POST /api/inspect`), nothing is stored.
 * Returns a Response; throws HttpError for the router to render.
 */
/**
 * The target whose verdict gates uploads: the `VERDICT_TARGET` var (a key of `targets()`, e.g.
 * `incus-6.0` for a server that feeds Incus hosts), else the core's reference target (`lxd-5.0`).
 */
export function gateTarget(env) {
  const key = String(env.VERDICT_TARGET ?? "").trim();
  if (!key) return referenceTarget();
  const keys = targets().map((t) => t.key);
  if (!keys.includes(key)) {
    throw new HttpError(500, `VERDICT_TARGET ${JSON.stringify(key)} is not a verdict target; use one of ${keys.join(", ")}`);
  }
  return key;
}

export async function handleUpload(request, env, { dryRun = false } = {}) {
  await requireToken(request, env);
  const gate = gateTarget(env);
  const expansion = expansionLimits(env);
  // The core's early verdict is the reference target's: stop reading early only when that gates.
  const early = gate === referenceTarget();
  const url = new URL(request.url);
  const aliases = validateAliases(url.searchParams.getAll("alias"));
  if (!dryRun) for (const a of aliases) await checkAliasFree(a, env, request);
  const limit = uploadLimit(env);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  // The per-request cap (MAX_REQUEST_BYTES): a larger image goes through an upload session.
  const what = dryRun ? "A single-request inspection (POST /api/inspect)" : "A single-request upload (POST /api/images)";
  checkDeclaredLength(request, env, what);
  const countRequest = counter(env, what);
  if (!request.body) throw new HttpError(400, "Empty upload: send the image as the request body");

  const contentType = request.headers.get("content-type") ?? "";
  const boundary = multipartBoundary(contentType);
  if (/^\s*multipart\//i.test(contentType) && !boundary) {
    throw new HttpError(400, "Invalid multipart image: multipart/form-data without a boundary");
  }
  if (boundary && boundary.length > MAX_BOUNDARY) {
    throw new HttpError(400, `Invalid multipart image: the boundary is ${boundary.length} characters long; at most ${MAX_BOUNDARY} (RFC 2046)`);
  }

  // A unified upload's file name (a split one's come with its parts): checked before any byte is read.
  if (!boundary) {
    if (url.searchParams.get("filename")) validateFilename(url.searchParams.get("filename"), "filename=");
    else validateFilename(request.headers.get("x-lxd-filename"), "X-LXD-filename");
  }

  const uploadId = crypto.randomUUID();
  const sinks = [];
  let total = 0;
  const count = (n) => {
    total += n;
    if (total > limit) throw tooLarge(limit);
    countRequest(n);
  };
  const newSink = (role) => {
    if (dryRun) return null;
    const s = new R2Sink(env.IMAGES, `uploads/${uploadId}/${role}`);
    s.role = role;
    sinks.push(s);
    return s;
  };
  const cleanup = () => Promise.all(sinks.map((s) => s.abort().catch(() => {})));

  let inspection = null;
  let rejectedEarly = false;
  let mp = null;
  try {
    if (!boundary) {
      const filename = url.searchParams.get("filename") || request.headers.get("x-lxd-filename") || null;
      inspection = new Inspection({ names: [filename], ...expansion });
      const sink = newSink("unified");
      rejectedEarly = await feed(inspection, chunks(request.body), { sink, early, count });
    } else {
      mp = new MultipartReader(request.body, boundary, { onBytes: count });
      const meta = await mp.next();
      if (!meta || meta.name !== "metadata") {
        throw new MultipartError(`Invalid multipart image: the first part must be named "metadata" (got ${quote(meta?.name ?? null)})`);
      }
      validateFilename(meta.filename, "metadata part");
      // Until the rootfs part's name says container or VM, keep the metadata bytes (and store them).
      const metaSink = newSink("metadata");
      const held = [];
      let heldBytes = 0;
      for await (const chunk of meta.body()) {
        heldBytes += chunk.byteLength;
        if (heldBytes > METADATA_BUFFER) {
          throw new HttpError(413, `The metadata part exceeds ${METADATA_BUFFER} bytes; a metadata tarball is normally a few KiB`);
        }
        const copy = chunk.slice();
        held.push(copy);
        if (metaSink) await metaSink.write(copy);
      }
      if (metaSink) await metaSink.close();
      const root = await mp.next();
      if (!root || (root.name !== "rootfs" && root.name !== "rootfs.img")) {
        throw new MultipartError(`Invalid multipart image: the second part must be named "rootfs" or "rootfs.img" (got ${quote(root?.name ?? null)})`);
      }
      validateFilename(root.filename, `${root.name} part`);
      inspection = new Inspection({
        names: [meta.filename || null, root.filename || null],
        splitType: root.name === "rootfs.img" ? "virtual-machine" : "container",
        ...expansion,
      });
      for (const c of held) inspection.push(c);
      held.length = 0;
      inspection.startRootfs();
      {
        const rootSink = newSink("rootfs");
        rejectedEarly = await feed(inspection, root.body(), { sink: rootSink, early });
      }
      if (!rejectedEarly) await mp.cancel(); // parts after the second are ignored, as LXD does
    }
  } catch (e) {
    inspection?.free();
    await mp?.cancel();
    await cleanup();
    throw wrapRead(e);
  }

  let report;
  try {
    report = rejectedEarly ? inspection.finishEarly() : inspection.finish();
  } catch (e) {
    await cleanup();
    throw e;
  }
  if (rejectedEarly) {
    await mp?.cancel();
    request.body?.cancel?.().catch?.(() => {});
  }
  if (dryRun) {
    const outcome = uploadOutcome(report, report.verdicts?.[gate]);
    return json(outcome === "accepted" ? 200 : 422, report, { "x-lxdimg-verdict": outcome });
  }
  const keys = Object.fromEntries(sinks.map((s) => [s.role, s.key]));
  const answer = await settleUpload(env, { report, gate, uploadId, keys, aliases, origin: publicOrigin(request, env), cleanup });
  return json(answer.status, answer.body, answer.headers);
}

/**
 * Feeds one file's bytes into the core (and into `sink`, if any): the one loop of both the
 * single-request upload and the validation of an upload session (sessions.js), so both judge
 * exactly alike. `count(n)` sees each chunk's size first (limits). Returns true when reading
 * stopped early because the verdict is known and is not an acceptance (`early`); otherwise the
 * sink is closed (the object is complete).
 */
export async function feed(inspection, chunks, { sink = null, early = true, count = null } = {}) {
  for await (const chunk of chunks) {
    if (count) count(chunk.byteLength);
    const fed = inspection.push(chunk);
    if (sink) await sink.write(chunk);
    if (fed && early && earlyReject(inspection)) return true;
  }
  if (sink) await sink.close();
  return false;
}

/**
 * The end of an upload whose bytes are stored under `keys` (role → R2 key) and whose Report is
 * known: the verdict of `gate` decides. Anything but an acceptance calls `cleanup` (which removes
 * the objects) and answers 422 with the Report; an acceptance writes the index rows in one batch
 * (`commitImage`) and answers 201, or 200 when the same image was stored already (then `cleanup`
 * removes this upload's redundant copy). Returns `{status, body, headers, outcome}`; shared by
 * `POST /api/images` and `POST /api/uploads/{id}/complete`.
 */
export async function settleUpload(env, { report, gate, uploadId, keys, aliases, origin, cleanup, expectFingerprint = null }) {
  const verdict = report.verdicts?.[gate];
  let outcome = uploadOutcome(report, verdict);
  if (outcome === "accepted" && expectFingerprint && report.fingerprint !== expectFingerprint) {
    outcome = "fingerprint-mismatch";
  }
  if (outcome !== "accepted") {
    await cleanup();
    return { status: 422, body: report, headers: { "x-lxdimg-verdict": outcome }, outcome };
  }

  // The architecture as the gating target stores it (the Report's top-level one is lxd-5.0's).
  const architecture = verdict.architecture ?? report.architecture;
  if (!report.fingerprint || !architecture || !report.type) {
    await cleanup();
    throw new HttpError(500, "The core accepted the image but reported no fingerprint, architecture or type");
  }
  const files = report.files.map((f) => ({
    role: f.role,
    name: f.name ?? null,
    size: f.size,
    sha256: f.sha256,
    compression: f.compression,
    r2_key: keys[f.role],
  }));
  const image = {
    fingerprint: report.fingerprint,
    upload_id: uploadId,
    format: report.format,
    type: report.type,
    architecture,
    size: report.files.reduce((a, f) => a + f.size, 0),
    creation_date: report.metadata?.creation_date ?? 0,
    expiry_date: report.metadata?.expiry_date ?? 0,
    properties: report.metadata?.properties ?? {},
    templates: report.templates ?? [],
    uploaded_at: Math.floor(Date.now() / 1000),
  };
  let created;
  try {
    ({ created } = await commitImage(env.DB, image, files, aliases));
  } catch (e) {
    await cleanup();
    throw new HttpError(500, `Could not write the index: ${e?.message ?? e}`);
  }
  if (!created) await cleanup(); // the same image was already stored: keep the first copy
  // Import succeeds (that is what the index requires); say so if creating an instance would not.
  const creatable = verdict.creatable;
  const warnings = creatable && creatable.ok === false && creatable.code !== "architecture" ? [`lxc launch would fail: ${creatable.error}`] : [];
  return {
    status: created ? 201 : 200,
    body: { ...storedAnswer(origin, image, aliases), created, warnings, report },
    headers: {},
    outcome,
  };
}

/**
 * The fields of an upload's answer that describe the stored image (`created`, `warnings` and
 * `report` are the upload's own): also the `image` of an upload session for an image that was
 * already stored.
 */
export function storedAnswer(origin, image, aliases) {
  return {
    created: false,
    fingerprint: image.fingerprint,
    architecture: image.architecture,
    type: image.type,
    format: image.format,
    aliases,
    url: `${origin}/${image.fingerprint}`,
    import: importCommand(origin, image, aliases),
    warnings: [],
  };
}

/**
 * What the reference target's `Verdict` means for an upload: `"accepted"` (stored), `"rejected"`
 * (the target refuses it; `error` has its words) or `"not-judged"` (`accepted: null`: lxdimg
 * cannot tell, `reason` says why). Only an acceptance is stored; the other two answer 422.
 */
export function uploadVerdict(verdict) {
  if (verdict?.accepted === true) return "accepted";
  if (verdict?.accepted === false) return "rejected";
  return "not-judged";
}

/**
 * The core's error finding for a file that expanded past its limits while decoding
 * (`Options.max_decoded_bytes` and `max_expansion_ratio`). LXD's import may still take such an
 * image (it reads only the metadata), but `lxc launch` would unpack all of it: never stored.
 */
export function bombFinding(report) {
  return (report?.findings ?? []).find((f) => f.code === "decompression-bomb" && f.severity === "error") ?? null;
}

/**
 * How an upload ends: `uploadVerdict` of the gating target, except that an image the core
 * stopped decoding as a decompression bomb is `"decompression-bomb"` (422) even when the target
 * would import it.
 */
export function uploadOutcome(report, verdict) {
  const outcome = uploadVerdict(verdict);
  return outcome === "accepted" && bombFinding(report) ? "decompression-bomb" : outcome;
}

/**
 * The verdict is already known and is not an acceptance: stop reading (LXD would stop there too;
 * an image lxdimg cannot judge is not stored either). Once the verdict is known to be an
 * acceptance it is not asked again.
 */
export function earlyReject(inspection) {
  if (inspection.settledAccepted) return false;
  if (!inspection.verdictKnown) return false;
  const v = inspection.verdict;
  if (v === undefined) return false;
  if (uploadVerdict(v) === "accepted") {
    inspection.settledAccepted = true;
    return false;
  }
  return true;
}

/**
 * How to get the image into LXD: a URL import for a unified image; a split one needs the
 * simplestreams remote (a URL names one file).
 */
function importCommand(origin, image, aliases) {
  const name = aliases[0] ?? image.fingerprint;
  if (image.format === "unified") return `lxc image import ${origin}/${name} --alias ${aliases[0] ?? image.fingerprint.slice(0, 12)}`;
  const remote = remoteName(origin);
  return `lxc remote add ${remote} ${origin} --protocol simplestreams --public && lxc image copy ${remote}:${aliases[0] ?? image.fingerprint.slice(0, 12)} local:`;
}

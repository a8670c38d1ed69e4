/**
 * The index in D1 (schema: migrations/0001_index.sql). All writes of one upload go in one
 * `batch()`, which D1 runs as a single transaction.
 */

const IMAGE_COLUMNS =
  "fingerprint, upload_id, format, type, architecture, size, creation_date, expiry_date, properties, templates, uploaded_at";

function parseImage(row) {
  if (!row) return null;
  return {
    ...row,
    properties: JSON.parse(row.properties || "{}"),
    templates: JSON.parse(row.templates || "[]"),
  };
}

/** One image with its files and aliases, or null. */
export async function getImage(db, fingerprint) {
  const [img, files, aliases] = await db.batch([
    db.prepare(`SELECT ${IMAGE_COLUMNS} FROM images WHERE fingerprint = ?`).bind(fingerprint),
    db.prepare("SELECT role, name, size, sha256, compression, r2_key FROM files WHERE fingerprint = ? ORDER BY role = 'rootfs'").bind(fingerprint),
    db.prepare("SELECT name FROM aliases WHERE fingerprint = ? ORDER BY name").bind(fingerprint),
  ]);
  const image = parseImage(img.results[0]);
  if (!image) return null;
  image.files = files.results;
  image.aliases = aliases.results.map((a) => a.name);
  return image;
}

/** Every image with files and aliases, newest upload first. */
export async function listImages(db) {
  const [imgs, files, aliases] = await db.batch([
    db.prepare(`SELECT ${IMAGE_COLUMNS} FROM images ORDER BY uploaded_at DESC, fingerprint`),
    db.prepare("SELECT fingerprint, role, name, size, sha256, compression, r2_key FROM files ORDER BY role = 'rootfs'"),
    db.prepare("SELECT name, architecture, fingerprint FROM aliases ORDER BY name"),
  ]);
  const byFp = new Map();
  for (const row of imgs.results) {
    const image = parseImage(row);
    image.files = [];
    image.aliases = [];
    byFp.set(image.fingerprint, image);
  }
  for (const f of files.results) {
    const { fingerprint, ...rest } = f;
    byFp.get(fingerprint)?.files.push(rest);
  }
  for (const a of aliases.results) byFp.get(a.fingerprint)?.aliases.push(a.name);
  return [...byFp.values()];
}

/**
 * URL-import answers look an alias up on every request; a D1 round trip dominates their cost.
 * Results are kept in the isolate for `ANSWER_CACHE_SECONDS` (default 10): an alias moved or an
 * image deleted by another isolate shows up here within that time (files are immutable, so a
 * stale answer still downloads — unless the image was deleted). Writes in this isolate clear it.
 */
const answerCache = new Map();
const ANSWER_CACHE_MAX = 10000;
let answerTtlMs = 10000;

export function configureAnswerCache(env) {
  const s = Number(env.ANSWER_CACHE_SECONDS ?? 10);
  answerTtlMs = Number.isFinite(s) && s >= 0 ? s * 1000 : 10000;
}

export function clearAnswerCache() {
  answerCache.clear();
}

async function cached(key, load) {
  if (answerTtlMs === 0) return load();
  const now = Date.now();
  const hit = answerCache.get(key);
  if (hit && hit.until > now) return hit.value;
  const value = await load();
  if (answerCache.size >= ANSWER_CACHE_MAX) answerCache.clear();
  answerCache.set(key, { until: now + answerTtlMs, value });
  return value;
}

/** `aliasTargets`, through the isolate cache. */
export function aliasTargetsCached(db, name) {
  return cached(`a:${name}`, () => aliasTargets(db, name));
}

/** `getImage`, through the isolate cache. */
export function getImageCached(db, fingerprint) {
  return cached(`i:${fingerprint}`, () => getImage(db, fingerprint));
}

/** The images an alias names, one per architecture: `[{architecture, fingerprint, format, type}]`. */
export async function aliasTargets(db, name) {
  const { results } = await db
    .prepare(
      "SELECT a.architecture, a.fingerprint, i.format, i.type, i.size FROM aliases a JOIN images i ON i.fingerprint = a.fingerprint WHERE a.name = ?",
    )
    .bind(name)
    .all();
  return results;
}

/** The file row for a fingerprint and role, or null. */
export async function getFile(db, fingerprint, role) {
  return db
    .prepare("SELECT f.role, f.name, f.size, f.sha256, f.compression, f.r2_key, i.architecture, i.type, i.format FROM files f JOIN images i ON i.fingerprint = f.fingerprint WHERE f.fingerprint = ? AND f.role = ?")
    .bind(fingerprint, role)
    .first();
}

/** The statements that point `aliases` at `image` for its architecture (an alias moves). */
function aliasStatements(db, image, aliases) {
  return aliases.map((name) =>
    db
      .prepare("INSERT INTO aliases (name, architecture, fingerprint) VALUES (?, ?, ?) ON CONFLICT (name, architecture) DO UPDATE SET fingerprint = excluded.fingerprint")
      .bind(name, image.architecture, image.fingerprint),
  );
}

/** Points `aliases` at an image already in the index (a repeated upload's or a session's aliases). */
export async function addAliases(db, image, aliases) {
  if (aliases.length === 0) return;
  clearAnswerCache();
  await db.batch(aliasStatements(db, image, aliases));
}

/**
 * Commits an accepted upload: the image row (unless the fingerprint is already indexed), its
 * files (only if this upload's image row is the one that exists) and the aliases (which move to
 * this fingerprint for its architecture). Returns `{created}`: false when another upload of the
 * same image got there first, in which case this upload's R2 objects are redundant.
 */
export async function commitImage(db, image, files, aliases) {
  clearAnswerCache();
  const stmts = [
    db
      .prepare(
        `INSERT INTO images (${IMAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING`,
      )
      .bind(
        image.fingerprint,
        image.upload_id,
        image.format,
        image.type,
        image.architecture,
        image.size,
        image.creation_date,
        image.expiry_date,
        JSON.stringify(image.properties),
        JSON.stringify(image.templates),
        image.uploaded_at,
      ),
  ];
  for (const f of files) {
    stmts.push(
      db
        .prepare(
          "INSERT INTO files (fingerprint, role, name, size, sha256, compression, r2_key) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM images WHERE fingerprint = ? AND upload_id = ?) ON CONFLICT DO NOTHING",
        )
        .bind(image.fingerprint, f.role, f.name, f.size, f.sha256, f.compression, f.r2_key, image.fingerprint, image.upload_id),
    );
  }
  stmts.push(...aliasStatements(db, image, aliases));
  stmts.push(db.prepare("SELECT upload_id FROM images WHERE fingerprint = ?").bind(image.fingerprint));
  const results = await db.batch(stmts);
  const winner = results[results.length - 1].results[0]?.upload_id;
  return { created: winner === image.upload_id };
}

/** Deletes an image's rows; returns the R2 keys of its files (empty if it did not exist). */
export async function deleteImage(db, fingerprint) {
  clearAnswerCache();
  const [files] = await db.batch([
    db.prepare("SELECT r2_key FROM files WHERE fingerprint = ?").bind(fingerprint),
    db.prepare("DELETE FROM aliases WHERE fingerprint = ?").bind(fingerprint),
    db.prepare("DELETE FROM files WHERE fingerprint = ?").bind(fingerprint),
    db.prepare("DELETE FROM images WHERE fingerprint = ?").bind(fingerprint),
  ]);
  return files.results.map((r) => r.r2_key);
}

/** Removes one alias (for one architecture, or all); returns how many rows went. */
export async function deleteAlias(db, name, architecture = null) {
  clearAnswerCache();
  const r = architecture
    ? await db.prepare("DELETE FROM aliases WHERE name = ? AND architecture = ?").bind(name, architecture).run()
    : await db.prepare("DELETE FROM aliases WHERE name = ?").bind(name).run();
  return r.meta.changes;
}

/** Whether the upload id owns an image row (used by the orphan sweep). */
export async function referencedUploadIds(db) {
  const { results } = await db.prepare("SELECT DISTINCT upload_id FROM images").all();
  return new Set(results.map((r) => r.upload_id));
}

/**
 * Simplestreams (facts §6): `/streams/v1/index.json` and `/streams/v1/images.json`, so that
 * `lxc remote add NAME https://… --protocol simplestreams` (and `incus remote add …`) lists,
 * copies and launches the images.
 *
 * The JSON comes from the core (src/simplestreams.rs, the same definition `lxdimg stream`
 * writes): one product per image (its aliases are per image, and simplestreams aliases belong to
 * a product), one version named `YYYYMMDD_hhmm` from the creation date (else the upload time),
 * both item families (`lxd.*` for LXD, `incus.*` for Incus), the `combined_*` field chosen by the
 * root's ftype. This file only maps the index rows onto the core's input: paths are relative to
 * the server root (`images/<fingerprint>/<role>`, served by serve.js).
 */
import { listImages } from "./db.js";
import { simplestreamsIndex, simplestreamsProducts } from "./core.js";

/** The core's input for the stored images. */
export function servedImages(images) {
  return images.map((img) => ({
    fingerprint: img.fingerprint,
    type: img.type,
    architecture: img.architecture,
    properties: img.properties ?? {},
    creation_date: Number(img.creation_date) || 0,
    expiry_date: Number(img.expiry_date) || 0,
    fallback_date: Number(img.uploaded_at) || 0,
    aliases: img.aliases,
    files: img.files.map((f) => ({
      role: f.role,
      path: `images/${img.fingerprint}/${f.role}`,
      sha256: f.sha256,
      size: f.size,
      compression: f.compression ?? "",
    })),
  }));
}

export async function handleStreams(request, env, file) {
  const images = await listImages(env.DB);
  const products = simplestreamsProducts(servedImages(images));
  const latest = images.reduce((a, i) => Math.max(a, i.uploaded_at), 0);
  const body = file === "index.json" ? simplestreamsIndex(products, new Date(latest * 1000).toUTCString()) : products;
  return new Response(request.method === "HEAD" ? null : body, {
    headers: { "content-type": "application/json", "cache-control": "public, max-age=60, no-transform" },
  });
}

/**
 * Simplestreams (facts §6): `/streams/v1/index.json` and `/streams/v1/images.json`, so that
 * `lxc remote add NAME https://… --protocol simplestreams` lists, copies and launches the images.
 *
 * One product per image (its aliases are per image and architecture, and simplestreams aliases
 * belong to a product), one version per product, named `YYYYMMDD_hhmm` from the image's
 * creation date (LXD skips versions that do not start with a date). Every version carries both
 * item families: LXD reads only `lxd.tar.xz` / `lxd_combined.tar.gz`, Incus only `incus.tar.xz` /
 * `incus_combined.tar.gz`. A split image's fingerprint goes in the metadata items' `combined_*`
 * field chosen by the root item's ftype; a unified image's fingerprint is its item's `sha256`.
 * Paths are relative to the server root (LXD joins them onto the remote's URL path).
 */
import { listImages } from "./db.js";

/** `YYYYMMDD_hhmm` in UTC. */
export function versionName(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

function dateOk(t) {
  // Years 1000..9999 only: the version name must start with 8 digits.
  return Number.isFinite(t) && t >= -30610224000 && t <= 253402300799;
}

/** The root item's ftype and the metadata item's combined field, by image type and rootfs format. */
export function rootFtype(image, rootfs) {
  if (image.type === "virtual-machine") return ["disk-kvm.img", ["combined_disk-kvm-img_sha256"]];
  if (rootfs.compression === "squashfs") return ["squashfs", ["combined_squashfs_sha256"]];
  return ["root.tar.xz", ["combined_rootxz_sha256", "combined_sha256"]];
}

const clean = (s) => String(s ?? "").replace(/[:,\s]+/g, "-");

/** The products file for a list of images (each with files and aliases, as db.listImages). */
export function productsJson(images) {
  const products = {};
  for (const img of images) {
    const p = img.properties ?? {};
    const os = p.os || "unknown";
    const release = p.release || "unknown";
    const variant = p.variant || "default";
    const created = dateOk(img.creation_date) && img.creation_date > 0 ? img.creation_date : img.uploaded_at;
    const items = {};
    const path = (role) => `images/${img.fingerprint}/${role}`;
    if (img.format === "unified") {
      const f = img.files.find((x) => x.role === "unified");
      if (!f) continue;
      const item = { path: path("unified"), sha256: f.sha256, size: f.size };
      items["lxd_combined.tar.gz"] = { ftype: "lxd_combined.tar.gz", ...item };
      items["incus_combined.tar.gz"] = { ftype: "incus_combined.tar.gz", ...item, combined_type: img.type };
    } else {
      const meta = img.files.find((x) => x.role === "metadata");
      const root = img.files.find((x) => x.role === "rootfs");
      if (!meta || !root) continue;
      const [ftype, combinedKeys] = rootFtype(img, root);
      const combined = Object.fromEntries(combinedKeys.map((k) => [k, img.fingerprint]));
      const item = { path: path("metadata"), sha256: meta.sha256, size: meta.size, ...combined };
      items["lxd.tar.xz"] = { ftype: "lxd.tar.xz", ...item };
      items["incus.tar.xz"] = { ftype: "incus.tar.xz", ...item };
      items[ftype] = { ftype, path: path("rootfs"), sha256: root.sha256, size: root.size };
    }
    const product = {
      aliases: img.aliases.join(","),
      arch: img.architecture,
      os,
      release,
      release_title: p.release_title || release,
      variant,
      versions: {
        [versionName(created)]: {
          label: p.label || "lxdimg",
          items,
        },
      },
    };
    if (p.version) product.version = p.version;
    if (img.expiry_date > 0 && dateOk(img.expiry_date)) product.support_eol = new Date(img.expiry_date * 1000).toISOString().slice(0, 10);
    const key = `${clean(os)}:${clean(release)}:${clean(variant)}:${img.architecture}:${img.fingerprint.slice(0, 12)}`;
    products[key] = product;
  }
  return { content_id: "images", datatype: "image-downloads", format: "products:1.0", products };
}

export function indexJson(images, products) {
  const latest = images.reduce((a, i) => Math.max(a, i.uploaded_at), 0);
  return {
    format: "index:1.0",
    index: {
      images: {
        datatype: "image-downloads",
        path: "streams/v1/images.json",
        format: "products:1.0",
        updated: new Date((latest || 0) * 1000).toUTCString(),
        products: Object.keys(products.products).sort(),
      },
    },
  };
}

export async function handleStreams(request, env, file) {
  const images = await listImages(env.DB);
  const products = productsJson(images);
  const body = file === "index.json" ? indexJson(images, products) : products;
  return new Response(request.method === "HEAD" ? null : JSON.stringify(body, null, 1) + "\n", {
    headers: { "content-type": "application/json", "cache-control": "public, max-age=60, no-transform" },
  });
}

/**
 * URL-import answers (facts §5): `HEAD`/`GET /{alias}` and `/{fingerprint}`.
 *
 * LXD's daemon sends a HEAD with `LXD-Server-Architectures` (Incus: `Incus-Server-Architectures`)
 * and needs `LXD-Image-Hash` (64 lowercase hex) and `LXD-Image-URL` (absolute) back; Incus needs
 * the `Incus-` pair, so both families are always sent. The hash must be of the exact bytes the URL
 * serves, and the image must be unified (a URL names one file). A request without either
 * architecture header is a person with a browser: it gets a small page instead.
 */
import { canonicalArchitecture, escapeControls, personalities } from "./core.js";
import { SECURITY_HEADERS } from "../../www/csp.js";
import { aliasTargetsCached, getImageCached, aliasTargets, getImage } from "./db.js";
import { escapeHtml, publicOrigin, remoteName, text } from "./http.js";
import { aliasProblem, quote } from "./names.js";
import { LANGS, acceptLanguages, format, knownLang, pickLang } from "../../www/i18n/catalogue.js";

/** The file URL LXD downloads for a unified image. */
export function imageUrl(origin, fingerprint) {
  return `${origin}/images/${fingerprint}/unified`;
}

const VARY = "LXD-Server-Architectures, Incus-Server-Architectures";

/** The header families the worker reads, in order of preference. */
const ARCH_HEADERS = ["lxd-server-architectures", "incus-server-architectures"];

/** Longest header value parsed; LXD's is about 20 bytes. */
const MAX_ARCH_HEADER = 1024;

/**
 * Reads the client's architectures from a request's headers (facts §5.3, §2.3): the daemon's
 * architectures joined by ", " — canonical names since LXD 4.3 / 4.0.2, numeric IDs (`2, 1`)
 * before. Names are case-insensitive in the Fetch API, so `Lxd-Server-Architectures`, as Go sends
 * it, matches. The core resolves each token (names, any version's aliases, numeric IDs).
 *
 * Returns `null` when neither header is present (a browser), or
 * `{ family, raw, archs, unknown, error }`: `archs` in the client's order of preference, then the
 * personalities of those architectures the client did not list itself; `unknown`: tokens that
 * name no architecture; `error`: a message when the header is unusable (empty, too long, or no
 * token names an architecture).
 */
export function clientArchitectures(headers) {
  let family = null;
  let raw = null;
  for (const h of ARCH_HEADERS) {
    const v = headers.get(h);
    if (v !== null) {
      family = h.startsWith("incus") ? "Incus" : "LXD";
      raw = v;
      break;
    }
  }
  if (raw === null) return null;
  const name = `${family}-Server-Architectures`;
  if (raw.length > MAX_ARCH_HEADER) {
    return { family, raw: raw.slice(0, 64), archs: [], unknown: [], error: `${name} header is too long (${raw.length} bytes)` };
  }
  const tokens = raw.split(/[,\s]+/).filter((t) => t !== "");
  const archs = [];
  const unknown = [];
  for (const t of tokens) {
    const a = canonicalArchitecture(t);
    if (a === null) unknown.push(t);
    else if (!archs.includes(a)) archs.push(a);
  }
  if (archs.length === 0) {
    const what = tokens.length === 0 ? "is empty" : `names no known architecture: ${JSON.stringify(raw)}`;
    return { family, raw, archs, unknown, error: `${name} header ${what}` };
  }
  for (const a of [...archs]) {
    for (const p of personalities(a)) if (!archs.includes(p)) archs.push(p);
  }
  return { family, raw, archs, unknown, error: null };
}

/**
 * `name` is the path without its leading slash (an alias, or a fingerprint in any case).
 * Returns null when the name is neither a known alias nor a stored fingerprint and the request is
 * from a browser (the router then falls through to its 404).
 */
export async function handleAnswer(request, env, name) {
  const client = clientArchitectures(request.headers);
  const origin = publicOrigin(request, env);
  const isFp = /^[0-9a-fA-F]{64}$/.test(name);
  const fp = isFp ? name.toLowerCase() : null;

  // A name no upload could have given is answered without a lookup, so a flood of made-up names
  // (each up to the URL's length) costs no query and fills no cache entry.
  const notAlias = fp ? null : aliasProblem(name);
  if (client === null) return notAlias ? null : page(request, env, origin, name, fp);
  if (notAlias) return text(404, `No image with alias ${quote(name)} (not an alias: ${notAlias})`, { vary: VARY });
  if (client.error) return text(400, `${client.error}; expected names (x86_64, i686), aliases (amd64) or numeric IDs (2, 1)`, { vary: VARY });

  let chosen = null;
  if (fp) {
    const img = await getImageCached(env.DB, fp);
    if (!img) return text(404, `No image with fingerprint ${fp}`, { vary: VARY });
    if (!client.archs.includes(img.architecture)) {
      return text(404, `Image ${fp} is for ${img.architecture}; the client runs ${client.archs.join(", ")}`, { vary: VARY });
    }
    chosen = { architecture: img.architecture, fingerprint: fp, format: img.format };
  } else {
    const targets = await aliasTargetsCached(env.DB, name);
    if (targets.length === 0) return text(404, `No image with alias "${name}"`, { vary: VARY });
    const available = targets.map((t) => t.architecture).sort();
    const matching = client.archs.map((a) => targets.find((t) => t.architecture === a)).filter(Boolean);
    if (matching.length === 0) {
      return text(
        404,
        `No image for alias "${name}" matches the client's architectures (${client.archs.join(", ")}); it exists for: ${available.join(", ")}`,
        { vary: VARY },
      );
    }
    chosen = matching.find((t) => t.format === "unified") ?? matching[0];
  }
  if (chosen.format !== "unified") {
    return text(
      404,
      `Image ${chosen.fingerprint} (${chosen.architecture}) is a split image (metadata + rootfs); a URL import needs one unified file. ` +
        `Use the simplestreams remote instead: lxc remote add NAME ${origin} --protocol simplestreams --public`,
      { vary: VARY },
    );
  }
  const url = imageUrl(origin, chosen.fingerprint);
  const headers = {
    "LXD-Image-Hash": chosen.fingerprint,
    "LXD-Image-URL": url,
    "Incus-Image-Hash": chosen.fingerprint,
    "Incus-Image-URL": url,
    vary: VARY,
    "cache-control": "no-cache",
  };
  return new Response(request.method === "HEAD" ? null : `${chosen.fingerprint} ${chosen.architecture} ${url}\n`, {
    status: 200,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function fmtSize(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

/**
 * The language of the page a browser gets: `?lang=en|zh-CN` if given (the page's switch links),
 * else from Accept-Language (any `zh…` → Simplified Chinese), else English. The same catalogues
 * as the page (www/i18n/*.js).
 */
export function pageLang(request) {
  const asked = knownLang(new URL(request.url).searchParams.get("lang"));
  return asked ?? pickLang(acceptLanguages(request.headers.get("accept-language")));
}

const TYPE_KEYS = { container: "worker.image.type.container", "virtual-machine": "worker.image.type.virtualMachine" };
const FORMAT_KEYS = { unified: "worker.image.format.unified", split: "worker.image.format.split" };

/** The page varies with these request headers (and with `?lang=`, which is in the URL). */
const PAGE_VARY = `${VARY}, Accept-Language`;

/** The page a browser gets at /{alias} or /{fingerprint}. */
async function page(request, env, origin, name, fp) {
  let images = [];
  if (fp) {
    const img = await getImage(env.DB, fp);
    if (img) images = [img];
  } else {
    const targets = await aliasTargets(env.DB, name);
    images = (await Promise.all(targets.map((t) => getImage(env.DB, t.fingerprint)))).filter(Boolean);
  }
  if (images.length === 0) return null;
  const remote = remoteName(origin);
  const alias = fp ? null : name;
  const lang = pageLang(request);
  const named = (keys, value) => (keys[value] ? t(keys[value]) : escapeHtml(value));
  // Catalogue text is HTML-escaped; params are escaped by the caller (already HTML) before they
  // are put in, so image data is escaped exactly once, as before.
  const t = (key, params = {}) => {
    const marked = {};
    for (const k of Object.keys(params)) marked[k] = `\u0000${k}\u0000`;
    return escapeHtml(format(lang, key, marked)).replace(/\u0000([A-Za-z0-9_]+)\u0000/g, (_, k) => params[k]);
  };
  const rows = images
    .map((img) => {
      const props = Object.entries(img.properties ?? {})
        .map(([k, v]) => `<li><code>${shown(k)}</code>: ${shown(v)}</li>`)
        .join("");
      const files = img.files
        .map((f) => `<li><a href="/images/${img.fingerprint}/${f.role}">${escapeHtml(f.role)}</a> ${shown(f.name ?? "")} — ${fmtSize(f.size)}, ${escapeHtml(f.compression)}, sha256 <code>${f.sha256}</code></li>`)
        .join("");
      const cmd =
        img.format === "unified"
          ? `lxc image import ${origin}/${alias ?? img.fingerprint} --alias ${alias ?? img.fingerprint.slice(0, 12)}`
          : `lxc image copy ${remote}:${alias ?? img.fingerprint.slice(0, 12)} local:`;
      return `<section>
<h2>${shown(img.architecture)} · ${named(TYPE_KEYS, img.type)} · ${named(FORMAT_KEYS, img.format)}</h2>
<p>${t("worker.image.fingerprint", { fingerprint: `<code>${img.fingerprint}</code>`, size: fmtSize(img.size), created: new Date(img.creation_date * 1000).toISOString().slice(0, 16).replace("T", " ") })}
${t("worker.image.aliases", { aliases: img.aliases.map((a) => `<code>${shown(a)}</code>`).join(", ") || t("worker.image.noAliases") })}</p>
<ul>${props}</ul>
<p>${t("worker.image.files")}</p><ul>${files}</ul>
<p>${t("worker.image.import")}</p><pre>${shown(cmd)}</pre>
</section>`;
    })
    .join("\n");
  const title = alias ? t("worker.image.title.alias", { alias: shown(alias) }) : t("worker.image.title.fingerprint", { fingerprint: fp.slice(0, 12) });
  // The switch: links to this address with ?lang= (no script on this page).
  const here = `/${encodeURIComponent(name)}`;
  const switcher = LANGS.map((l) =>
    l.code === lang
      ? `<strong lang="${l.code}" aria-current="true">${escapeHtml(l.name)}</strong>`
      : `<a href="${escapeHtml(here)}?lang=${encodeURIComponent(l.code)}" lang="${l.code}" hreflang="${l.code}">${escapeHtml(l.name)}</a>`,
  ).join(" · ");
  const html = `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — lxdimg</title>
<link rel="stylesheet" href="/image-page.css">
</head><body>
<nav class="lang" aria-label="${t("worker.lang.label")}">${switcher}</nav>
<h1>${title}</h1>
<p>${t("worker.image.intro")}</p>
<pre>lxc remote add ${escapeHtml(remote)} ${escapeHtml(origin)} --protocol simplestreams --public</pre>
${rows}
<p><a href="/">${t("worker.image.inspect")}</a> · <a href="/api/images">${t("worker.image.listing")}</a></p>
</body></html>
`;
  return new Response(request.method === "HEAD" ? null : html, {
    status: 200,
    headers: {
      ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8", "content-language": lang, "cache-control": "no-cache", vary: PAGE_VARY,
    },
  });
}

/** Image data for the page: control characters escaped (as the CLI prints them), then HTML-escaped. */
function shown(s) {
  return escapeHtml(escapeControls(s));
}

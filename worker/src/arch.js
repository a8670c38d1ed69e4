/**
 * Architecture negotiation for URL imports (facts §5.3, §2.3).
 *
 * LXD sends `LXD-Server-Architectures` (Incus: `Incus-Server-Architectures`) on its HEAD request:
 * the daemon's architectures joined by ", " — canonical names since LXD 4.3 / 4.0.2, numeric IDs
 * (`2, 1`) before. The table mirrors `src/arch.rs` (the test `arch.test.js` checks that it does):
 * every name, every alias any LXD or Incus version knows, and the numeric IDs.
 */

/** `[id, canonical name, aliases]`, from src/arch.rs plus the version-dependent aliases. */
export const ARCHITECTURES = [
  [1, "i686", ["i386", "i586", "386", "x86", "generic_32"]],
  [2, "x86_64", ["amd64", "generic_64", "amd64v3", "x86_64_v1", "x86_64_v2", "x86_64_v3", "x86_64_v4"]],
  [3, "armv7l", ["armhf", "armhfp", "armv7a_hardfp", "armv7", "armv7a_vfpv3_hardfp"]],
  [4, "aarch64", ["arm64", "arm64_generic"]],
  [5, "ppc", ["powerpc"]],
  [6, "ppc64", ["powerpc64", "ppc64"]],
  [7, "ppc64le", ["ppc64el"]],
  [8, "s390x", []],
  [9, "mips", ["mipsel", "mipsle"]],
  [10, "mips64", ["mips64el", "mips64le"]],
  [11, "riscv32", []],
  [12, "riscv64", []],
  [13, "armv6l", ["armel", "arm"]],
  [14, "armv8l", []],
  [15, "loongarch64", ["loong64"]],
];

/** What a host of each architecture can also run (src/arch.rs `personalities`). */
export const PERSONALITIES = {
  x86_64: ["x86_64", "i686"],
  aarch64: ["aarch64", "armv7l", "armv6l"],
  ppc64: ["ppc64", "ppc"],
  mips64: ["mips64", "mips"],
  i686: ["i686"],
  armv7l: ["armv7l", "armv6l"],
  ppc64le: ["ppc64le"],
  s390x: ["s390x"],
  riscv64: ["riscv64"],
  loongarch64: ["loongarch64"],
};

const BY_TOKEN = new Map();
for (const [id, name, aliases] of ARCHITECTURES) {
  BY_TOKEN.set(String(id), name);
  BY_TOKEN.set(name, name);
  for (const a of aliases) if (!BY_TOKEN.has(a)) BY_TOKEN.set(a, name);
}

/** The canonical name for a name, alias or numeric ID (any case, surrounding blanks ignored). */
export function canonicalArchitecture(token) {
  const t = String(token).trim().toLowerCase();
  if (/^0*\d{1,3}$/.test(t)) return BY_TOKEN.get(String(Number(t))) ?? null;
  return BY_TOKEN.get(t) ?? null;
}

/** The header families the worker reads, in order of preference. */
export const ARCH_HEADERS = ["lxd-server-architectures", "incus-server-architectures"];

/** Longest header value parsed; LXD's is about 20 bytes. */
const MAX_HEADER = 1024;

/**
 * Reads the client's architectures from a request's headers (names are case-insensitive in the
 * Fetch API, so `Lxd-Server-Architectures`, as Go sends it, matches).
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
  if (raw.length > MAX_HEADER) {
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
    for (const p of PERSONALITIES[a] ?? []) if (!archs.includes(p)) archs.push(p);
  }
  return { family, raw, archs, unknown, error: null };
}

// LXD's and Incus's own error texts are shown word for word, never translated. Beside each, the
// page shows an explanation in the page's language: this table says which one (the catalogue
// keys `lxderror.*`, in www/i18n/*.js). The first pattern that matches wins; texts no pattern
// knows get no explanation (the findings below still explain what lxdimg found).
const PATTERNS = [
  [/^Failed creating instance record: Requested architecture isn't supported by this host/, "lxderror.hostArch"],
  [/Unsupported image format: \.qcow2|Unexpected image format "raw"/, "lxderror.diskFormat"],
  [/^Failed creating instance from image: Unpack failed/, "lxderror.unpackFailed"],
  [/^Fetch image /, "lxderror.fetch"],
  [/Metadata tarball is missing metadata\.yaml/, "lxderror.noMetadata"],
  [/^Missing creation date/, "lxderror.noCreationDate"],
  [/^Invalid instance type/, "lxderror.invalidType"],
  [/^Architecture (isn't|is not) supported/, "lxderror.architecture"],
  [/^Cannot read non-regular file/, "lxderror.nonRegular"],
  [/^yaml: /, "lxderror.yaml"],
  [/sqfs2tar/, "lxderror.sqfs2tar"],
  [/Unsupported compression/, "lxderror.unsupportedCompression"],
  [/(^|: )EOF$/, "lxderror.eof"],
  [/^(gzip|bzip2|xz|lzma|zstd|lz4|flate|unexpected EOF|archive\/tar)|[Cc]orrupt|checksum|invalid tar header/, "lxderror.corrupt"],
];

/** The catalogue key explaining an LXD/Incus error text, or null. */
export function lxdErrorKey(message) {
  if (typeof message !== "string") return null;
  for (const [re, key] of PATTERNS) if (re.test(message)) return key;
  return null;
}

/** Every key the table can give (for the catalogue test). */
export const LXD_ERROR_KEYS = [...new Set(PATTERNS.map(([, k]) => k))];

#!/usr/bin/env bash
# The streaming rewrite of a unified image (src/rewrite/) against the real daemons, as root:
# a unified image whose metadata.yaml names an architecture LXD does not know and which carries a
# second, broken metadata.yaml at the end is refused by LXD 5.0.2 and Incus 6.0.4, in every codec;
# `lxdimg rewrite` (what `lxdimg repair` calls) replaces the first metadata.yaml, drops the
# duplicate and adds a template, in the same codec; the result is imported by both daemons under
# the fingerprint lxdimg printed, `init` works, and `lxdimg inspect` accepts it.
# Everything created is named h-rewrite-… and deleted at the end; every client call has a timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=$ROOT/target/rewrite-real
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }

[ "$(id -u)" -eq 0 ] || { echo "rewrite-real: must run as root"; exit 1; }
[ -x "$LXDIMG" ] || { echo "rewrite-real: $LXDIMG missing (make build)"; exit 1; }
source "$ROOT/scripts/test-image-lib.sh"

rm -rf "$OUT" && mkdir -p "$OUT/src"
S=$OUT/src
make_meta "$S" amd64 lxdimgtest rewrite
cp "$S/metadata.yaml" "$OUT/good.yaml"
make_rootfs "$S/rootfs"
sed -i 's/^architecture: amd64/architecture: amd65/' "$S/metadata.yaml"
mkdir -p "$S/dup" && printf 'architecture: [broken\n' > "$S/dup/metadata.yaml"
printf '{{ instance.name }} rewritten\n' > "$OUT/extra.tpl"
# metadata.yaml, templates, rootfs, then a second metadata.yaml (GNU tar appends it under the same name).
"${TAR[@]}" -C "$S" -cf "$OUT/broken.tar" metadata.yaml templates rootfs
tar --owner=0 --group=0 --numeric-owner --mtime=@1704067200 -C "$S/dup" -rf "$OUT/broken.tar" metadata.yaml

cleanup() {
  for cli in lxc incus; do
    for c in gz xz zst bz2 tar; do
      timeout 60 $cli delete -f "h-rewrite-c-$c" >/dev/null 2>&1 || true
      for a in "h-rewrite-$c" "h-rewrite-bad-$c"; do timeout 60 $cli image delete "$a" >/dev/null 2>&1 || true; done
    done
  done
}
trap cleanup EXIT
cleanup

fp_of() { # CLI ALIAS
  timeout 60 $1 image info "$2" 2>/dev/null | awk '/^Fingerprint:/ {print $2}'
}

for c in gz xz zst bz2 tar; do
  in=$OUT/broken.tar.$c
  case $c in
    gz) gzip -n -6 -c "$OUT/broken.tar" > "$in" ;;
    xz) xz -T1 -6 -c "$OUT/broken.tar" > "$in" ;;
    zst) zstd -q -3 -c "$OUT/broken.tar" > "$in" ;;
    bz2) bzip2 -9 -c "$OUT/broken.tar" > "$in" ;;
    tar) in=$OUT/broken.tar ;;
  esac
  fixed=$OUT/fixed.$c
  if ! summary=$("$LXDIMG" rewrite "$in" --replace 'metadata.yaml#0'="$OUT/good.yaml" --drop 'metadata.yaml#1' \
        --add templates/extra.tpl="$OUT/extra.tpl" --out "$fixed" --json); then
    bad "$c: lxdimg rewrite"; continue
  fi
  fp=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])' <<<"$summary")
  [ "$fp" = "$(sha256sum "$fixed" | cut -d' ' -f1)" ] && ok "$c: the printed fingerprint is the file's SHA-256" || bad "$c: fingerprint $fp is not the file's SHA-256"
  [ "$("$LXDIMG" fingerprint "$in")" != "$fp" ] || bad "$c: the fingerprint did not change"
  # The same codec: the same magic (and the ustar magic of a plain tar at offset 257).
  if [ "$c" = tar ]; then n=262; else n=4; fi
  head -c $n "$in" | tail -c 5 | cmp -s - <(head -c $n "$fixed" | tail -c 5) && ok "$c: same codec" || bad "$c: the codec changed"
  if "$LXDIMG" inspect "$fixed" >/dev/null; then ok "$c: lxdimg inspect accepts the rewritten image"; else bad "$c: lxdimg inspect refuses the rewritten image"; fi
  if "$LXDIMG" inspect "$in" >/dev/null 2>&1; then bad "$c: lxdimg inspect accepts the broken image"; fi
  for cli in lxc incus; do
    if out=$(timeout 120 $cli image import "$in" --alias "h-rewrite-bad-$c" 2>&1); then
      bad "$c/$cli: the broken image was imported"
    else
      ok "$c/$cli: the broken image is refused: $(tail -1 <<<"$out")"
    fi
    if out=$(timeout 120 $cli image import "$fixed" --alias "h-rewrite-$c" 2>&1); then
      got=$(fp_of $cli "h-rewrite-$c")
      [ "$got" = "$fp" ] && ok "$c/$cli: the rewritten image is imported as $fp" || bad "$c/$cli: imported as $got, lxdimg said $fp"
      if out=$(timeout 120 $cli init "h-rewrite-$c" "h-rewrite-c-$c" 2>&1); then
        ok "$c/$cli: init works"
      else
        bad "$c/$cli: init failed: $out"
      fi
      timeout 60 $cli delete -f "h-rewrite-c-$c" >/dev/null 2>&1 || true
      timeout 60 $cli image delete "h-rewrite-$c" >/dev/null 2>&1 || true
    else
      bad "$c/$cli: the rewritten image is refused: $out"
    fi
  done
done

echo "rewrite-real: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

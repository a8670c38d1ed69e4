#!/usr/bin/env bash
# Images published through upload sessions (`lxdimg publish`, issue 10), imported by the real
# clients: LXD 5.0.2 (`lxc`) and Incus 6.0.4 (`incus`), over HTTPS with the local CA
# (scripts/test-ca.sh).
#
#   1. `wrangler dev --local-protocol https` with a 6 MB per-request cap (PART_BYTES 5 MiB);
#   2. a realistic unified image (~13 MB, .tar.gz) and a split one (metadata.tar.xz + ~13 MB
#      squashfs), published by `lxdimg publish` through sessions (several parts each, --jobs 3);
#   3. URL import: `lxc image import https://localhost:PORT/ALIAS` and `incus image import …` —
#      each stores the fingerprint lxdimg printed;
#   4. simplestreams: `lxc remote add … --protocol simplestreams` / `incus remote add …`, then
#      `image copy REMOTE:ALIAS local:` of the unified and the split image — the printed fingerprints;
#   5. cleanup: only what this script created (its images by fingerprint, its remotes), the worker
#      (by its PID), its state.
# Every lxc/incus call has a timeout (the client can hang after the server already answered).
# Needs root, LXD and Incus set up (make lxd-setup), target/release/lxdimg, worker/node_modules, pkg/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
W=$ROOT/worker
OUT=$W/test/out/sessions-real
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
REMOTE=h-publish-sessions
TOKEN=sessions-real-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')
export WRANGLER_SEND_METRICS=false
pass=0
fail=0
log() { echo "sessions-real: $*"; }
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ "$(id -u)" -eq 0 ] || { echo "sessions-real: must run as root (installs a CA)"; exit 1; }
command -v lxc >/dev/null || { echo "sessions-real: lxc missing (make lxd-setup)"; exit 1; }
command -v incus >/dev/null || { echo "sessions-real: incus missing (make lxd-setup)"; exit 1; }
[ -x "$LXDIMG" ] || { echo "sessions-real: $LXDIMG missing (make build)"; exit 1; }

TEST_CA_INCUS=1 source "$ROOT/scripts/test-ca.sh"
source "$ROOT/scripts/test-image-lib.sh"

# --- 1. the worker -------------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ORIGIN=https://localhost:$PORT
rm -rf "$OUT" && mkdir -p "$OUT/state"
WPID=
FP_U=
FP_S=
cleanup() {
  set +e
  for c in lxc incus; do
    for f in $FP_U $FP_S; do timeout 60 $c image delete "$f" >/dev/null 2>&1; done
    timeout 30 $c remote remove "$REMOTE" >/dev/null 2>&1
  done
  if [ -n "$WPID" ]; then kill -- -"$WPID" 2>/dev/null || kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; fi
  rm -rf "$OUT/state"
}
trap cleanup EXIT
(cd "$W" && ./node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$OUT/state" >"$OUT/migrate.log" 2>&1)
set -m
(cd "$W" && exec ./node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" \
  --local-protocol https --https-key-path "$TLS/server.key" --https-cert-path "$TLS/server.crt" \
  --persist-to "$OUT/state" --var "UPLOAD_TOKEN:$TOKEN" --var "PUBLIC_URL:$ORIGIN" \
  --var MAX_REQUEST_BYTES:6000000 --var PART_BYTES:5242880 \
  --show-interactive-dev-session=false </dev/null >"$OUT/wrangler.log" 2>&1) &
WPID=$!
set +m
for _ in $(seq 1 240); do
  curl -sf "$ORIGIN/api/version" >/dev/null 2>&1 && break
  kill -0 "$WPID" 2>/dev/null || { tail -30 "$OUT/wrangler.log"; echo "sessions-real: wrangler dev died"; exit 1; }
  sleep 0.25
done
curl -sf "$ORIGIN/api/version" >/dev/null || { tail -20 "$OUT/wrangler.log"; echo "sessions-real: the system CA store does not trust the worker"; exit 1; }
log "worker at $ORIGIN (pid $WPID)"

# --- 2. images, published through sessions -------------------------------------------------------
S=$OUT/src
filler() { head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$1" -iv 0 2>/dev/null; }
mkdir -p "$S/u" "$S/s"
make_meta "$S/u" x86_64 lxdimgtest sessions-unified; make_rootfs "$S/u/rootfs"
filler 3132333435363738393a3b3c3d3e3f40 13000000 > "$S/u/rootfs/usr/lib/big.bin"
"${TAR[@]}" -C "$S/u" -cf - metadata.yaml templates rootfs | gzip -1 -n -c > "$OUT/unified.tar.gz"
make_meta "$S/s" x86_64 lxdimgtest sessions-split
"${TAR[@]}" -C "$S/s" -cf - metadata.yaml templates | xz -T1 -c > "$OUT/split-meta.tar.xz"
make_rootfs "$S/s/rootfs"
filler 4142434445464748494a4b4c4d4e4f50 13000000 > "$S/s/rootfs/usr/lib/big.bin"
mksquashfs "$S/s/rootfs" "$OUT/split-rootfs.squashfs" -noappend -quiet -all-root -mkfs-time 1704067200 -all-time 1704067200 >/dev/null

publish() { # NAME ALIAS FILE [ROOTFS] → the fingerprint lxdimg printed
  local name=$1 alias=$2; shift 2
  if "$LXDIMG" publish --server "$ORIGIN" --token "$TOKEN" --jobs 3 --alias "$alias" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; then
    sed -n 's/^\(already \)\{0,1\}published \([0-9a-f]\{64\}\) .*/\2/p' "$OUT/$name.out"
  fi
}
FP_U=$(publish unified sessions/unified "$OUT/unified.tar.gz")
check "lxdimg publish (unified) printed a fingerprint: ${FP_U:-none} ($(tail -1 "$OUT/unified.err"))" test -n "$FP_U"
check "unified went through a session in $(grep -c '^stored part ' "$OUT/unified.err" || true) parts" test "$(grep -c '^stored part unified ' "$OUT/unified.err" || true)" -ge 2
FP_S=$(publish split sessions/split "$OUT/split-meta.tar.xz" "$OUT/split-rootfs.squashfs")
check "lxdimg publish (split) printed a fingerprint: ${FP_S:-none} ($(tail -1 "$OUT/split.err"))" test -n "$FP_S"
check "split went through a session, rootfs in $(grep -c '^stored part rootfs ' "$OUT/split.err" || true) parts" test "$(grep -c '^stored part rootfs ' "$OUT/split.err" || true)" -ge 2
check "printed fingerprints = SHA-256 of the files" test "$FP_U:$FP_S" = "$(sha256sum < "$OUT/unified.tar.gz" | cut -d' ' -f1):$(cat "$OUT/split-meta.tar.xz" "$OUT/split-rootfs.squashfs" | sha256sum | cut -d' ' -f1)"
[ -n "$FP_U" ] && [ -n "$FP_S" ] || { echo "$pass passed, $fail failed"; exit 1; }

# Leftovers of an interrupted run would let a daemon answer from its own store.
for c in lxc incus; do for f in "$FP_U" "$FP_S"; do timeout 60 $c image delete "$f" >/dev/null 2>&1 || true; done; done
image_fp() { timeout 60 "$1" image info "$2" 2>/dev/null | sed -n 's/^Fingerprint: //p'; }

# --- 3. URL import --------------------------------------------------------------------------------
for c in lxc incus; do
  if timeout 240 $c image import "$ORIGIN/sessions/unified" >"$OUT/import-$c.log" 2>&1; then
    ok "$c image import $ORIGIN/sessions/unified"
  else
    bad "$c image import $ORIGIN/sessions/unified: $(tail -1 "$OUT/import-$c.log")"
  fi
  check "$c: the imported image has lxdimg's fingerprint" test "$(image_fp $c "$FP_U")" = "$FP_U"
  timeout 60 $c image delete "$FP_U" >/dev/null 2>&1 || true
done

# --- 4. simplestreams remote ------------------------------------------------------------------------
rm -rf /var/cache/lxd/simplestreams /var/lib/lxd/cache/simplestreams /var/cache/incus/simplestreams /var/lib/incus/cache/simplestreams 2>/dev/null || true
for c in lxc incus; do
  timeout 30 $c remote remove "$REMOTE" >/dev/null 2>&1 || true
  if timeout 60 $c remote add "$REMOTE" "$ORIGIN" --protocol simplestreams --public >"$OUT/remote-$c.log" 2>&1; then
    ok "$c remote add $REMOTE $ORIGIN --protocol simplestreams"
  else
    bad "$c remote add: $(tail -1 "$OUT/remote-$c.log")"
  fi
  for what in unified split; do
    fp=$FP_U; [ $what = split ] && fp=$FP_S
    if timeout 240 $c image copy "$REMOTE:sessions/$what" local: >"$OUT/copy-$c-$what.log" 2>&1; then
      ok "$c image copy $REMOTE:sessions/$what local:"
    else
      bad "$c image copy $REMOTE:sessions/$what local:: $(tail -1 "$OUT/copy-$c-$what.log")"
    fi
    check "$c: the copied $what image has lxdimg's fingerprint" test "$(image_fp $c "$fp")" = "$fp"
  done
  timeout 30 $c remote remove "$REMOTE" >/dev/null 2>&1 || true
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

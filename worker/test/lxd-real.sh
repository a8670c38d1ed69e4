#!/usr/bin/env bash
# The worker against the real LXD 5.0.2 client and daemon, over HTTPS.
#
#   1. a local CA and a localhost certificate (openssl, kept in /var/lib/lxdimg-test/tls); the CA is
#      installed into /usr/local/share/ca-certificates and, if that changed anything, LXD is
#      restarted so that its Go TLS stack loads the new system pool (it reads it once);
#   2. `wrangler dev` with --local-protocol https on a free port, fresh R2/D1 state;
#   3. a realistic image (host binaries, os-release, templates) published through the upload
#      endpoint (unified; split = metadata.tar.xz + squashfs; an arm64-only one); the worker's
#      fingerprint must equal the native CLI's;
#   4. `lxc image import https://localhost:PORT/ALIAS --alias X` imports it with that fingerprint;
#   5. `lxc remote add … --protocol simplestreams` + `lxc image copy REMOTE:ALIAS local:` copies the
#      split image with its fingerprint;
#   6. the arm64-only alias fails on this x86_64 host, and the worker says why;
#   7. cleanup: images, remote, the worker (by its PID), its state.
#
# Every lxc call has a timeout (the client can hang after the server already failed).
# Needs root, LXD set up (scripts/lxd-setup.sh), target/release/lxdimg and worker/.build.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
W=$ROOT/worker
OUT=$W/test/out/lxd
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
REMOTE=lxdimg-test
TOKEN=lxd-real-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')
export WRANGLER_SEND_METRICS=false
pass=0
fail=0

log() { echo "lxd-real: $*"; }
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ "$(id -u)" -eq 0 ] || { echo "lxd-real: must run as root (installs a CA, restarts LXD)"; exit 1; }
command -v lxc >/dev/null || { echo "lxd-real: lxc missing (make lxd-setup)"; exit 1; }
[ -x "$LXDIMG" ] || { echo "lxd-real: $LXDIMG missing (make build)"; exit 1; }
[ "$(uname -m)" = x86_64 ] || log "warning: not an x86_64 host; the arm64 case assumes one"

# --- 1. CA and certificate (scripts/test-ca.sh) --------------------------------------------------
source "$ROOT/scripts/test-ca.sh"

# --- 2. the worker under wrangler dev, HTTPS ---------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ORIGIN=https://localhost:$PORT
rm -rf "$OUT" && mkdir -p "$OUT/state"
WPID=
cleanup() {
  set +e
  for i in lxdimg-real-unified lxdimg-real-split lxdimg-real-arm; do timeout 60 lxc image delete "$i" >/dev/null 2>&1; done
  timeout 30 lxc remote remove "$REMOTE" >/dev/null 2>&1
  if [ -n "$WPID" ]; then kill -- -"$WPID" 2>/dev/null || kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; fi
  rm -rf "$OUT/state"
}
trap cleanup EXIT
(cd "$W" && ./node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$OUT/state" >"$OUT/migrate.log" 2>&1)
set -m
(cd "$W" && exec ./node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" \
  --local-protocol https --https-key-path "$TLS/server.key" --https-cert-path "$TLS/server.crt" \
  --persist-to "$OUT/state" --var "UPLOAD_TOKEN:$TOKEN" --var "PUBLIC_URL:$ORIGIN" \
  --show-interactive-dev-session=false >"$OUT/wrangler.log" 2>&1) &
WPID=$!
set +m
for i in $(seq 1 120); do
  curl -sf --cacert "$TLS/ca.crt" "$ORIGIN/api/version" >/dev/null 2>&1 && break
  kill -0 "$WPID" 2>/dev/null || { cat "$OUT/wrangler.log"; echo "lxd-real: wrangler dev died"; exit 1; }
  sleep 0.5
done
curl -sf "$ORIGIN/api/version" >/dev/null || { tail -20 "$OUT/wrangler.log"; echo "lxd-real: the system CA store does not trust the worker"; exit 1; }
log "worker at $ORIGIN (pid $WPID)"

# --- 3. realistic images, published ------------------------------------------------------------
source "$ROOT/scripts/test-image-lib.sh"
S=$OUT/src
mkdir -p "$S/u" "$S/s" "$S/a"
make_meta "$S/u" amd64; make_rootfs "$S/u/rootfs"
"${TAR[@]}" -C "$S/u" -cf - metadata.yaml templates rootfs | xz -T1 -c > "$OUT/unified.tar.xz"
make_meta "$S/s" x86_64
"${TAR[@]}" -C "$S/s" -cf - metadata.yaml templates | xz -T1 -c > "$OUT/split-meta.tar.xz"
make_rootfs "$S/s/rootfs"
mksquashfs "$S/s/rootfs" "$OUT/split-rootfs.squashfs" -noappend -quiet -all-root -mkfs-time 1704067200 -all-time 1704067200 >/dev/null
make_meta "$S/a" arm64; mkdir -p "$S/a/rootfs/etc"; echo arm > "$S/a/rootfs/etc/hostname"
"${TAR[@]}" -C "$S/a" -cf - metadata.yaml templates rootfs | gzip -n -c > "$OUT/arm64.tar.gz"

core_fp() { "$LXDIMG" inspect --json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; }
upload() { # ALIAS FILE [ROOTFS]
  if [ $# -eq 2 ]; then
    curl -sS -o "$OUT/up.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/octet-stream' --data-binary "@$2" "$ORIGIN/api/images?alias=$1"
  else
    curl -sS -o "$OUT/up.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
      -F "metadata=@$2;type=application/octet-stream" -F "rootfs=@$3;type=application/octet-stream" "$ORIGIN/api/images?alias=$1"
  fi
}
json_fp() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fingerprint"])' "$OUT/up.json"; }

FP_U=$(core_fp "$OUT/unified.tar.xz")
FP_S=$(core_fp "$OUT/split-meta.tar.xz" "$OUT/split-rootfs.squashfs")
FP_A=$(core_fp "$OUT/arm64.tar.gz")
if "$LXDIMG" publish --help >/dev/null 2>&1; then
  # The CLI's publish (src/publish.rs), trusting the CA through the system store.
  check "lxdimg publish (unified)" "$LXDIMG" publish --server "$ORIGIN" --token "$TOKEN" "$OUT/unified.tar.xz" --alias realunified
  curl -sS -o "$OUT/up.json" "$ORIGIN/api/images/$FP_U"
else
  code=$(upload realunified "$OUT/unified.tar.xz")
  check "publish unified (HTTP $code)" test "$code" = 201 -o "$code" = 200
fi
check "worker fingerprint = core fingerprint (unified)" test "$(json_fp)" = "$FP_U"
code=$(upload realsplit "$OUT/split-meta.tar.xz" "$OUT/split-rootfs.squashfs")
check "publish split (HTTP $code)" test "$code" = 201 -o "$code" = 200
check "worker fingerprint = core fingerprint (split)" test "$(json_fp)" = "$FP_S"
code=$(upload realarm "$OUT/arm64.tar.gz")
check "publish arm64-only (HTTP $code)" test "$code" = 201 -o "$code" = 200

# Leftovers of an earlier, interrupted run would make LXD answer from its own store.
for f in "$FP_U" "$FP_S" "$FP_A"; do timeout 60 lxc image delete "$f" >/dev/null 2>&1 || true; done

image_fp() { timeout 60 lxc image info "$1" 2>/dev/null | sed -n 's/^Fingerprint: //p'; }

# --- 4. URL import -----------------------------------------------------------------------------
log "lxc image import $ORIGIN/realunified"
if timeout 180 lxc image import "$ORIGIN/realunified" --alias lxdimg-real-unified >"$OUT/import.log" 2>&1; then
  ok "lxc image import https://localhost:$PORT/realunified"
else
  bad "lxc image import https://localhost:$PORT/realunified: $(tail -1 "$OUT/import.log")"
fi
check "imported fingerprint = core fingerprint" test "$(image_fp lxdimg-real-unified)" = "$FP_U"
check "imported image type is container" bash -c "timeout 60 lxc image info lxdimg-real-unified | grep -q '^Type: container'"

# --- 5. simplestreams remote, split image ------------------------------------------------------
rm -rf /var/cache/lxd/simplestreams /var/lib/lxd/cache/simplestreams 2>/dev/null || true
timeout 30 lxc remote remove "$REMOTE" >/dev/null 2>&1 || true
if timeout 60 lxc remote add "$REMOTE" "$ORIGIN" --protocol simplestreams --public >"$OUT/remote.log" 2>&1; then
  ok "lxc remote add $REMOTE $ORIGIN --protocol simplestreams"
else
  bad "lxc remote add: $(tail -1 "$OUT/remote.log")"
fi
check "lxc image list $REMOTE: shows the split image" bash -c "timeout 60 lxc image list $REMOTE: --format csv -c f | grep -q '^${FP_S:0:12}'"
log "lxc image copy $REMOTE:realsplit local:"
if timeout 240 lxc image copy "$REMOTE:realsplit" local: --alias lxdimg-real-split >"$OUT/copy.log" 2>&1; then
  ok "lxc image copy $REMOTE:realsplit local:"
else
  bad "lxc image copy $REMOTE:realsplit local:: $(tail -1 "$OUT/copy.log")"
fi
check "copied fingerprint = core fingerprint (split)" test "$(image_fp lxdimg-real-split)" = "$FP_S"

# --- 6. an alias that exists only for aarch64 --------------------------------------------------
if timeout 120 lxc image import "$ORIGIN/realarm" --alias lxdimg-real-arm >"$OUT/arm.log" 2>&1; then
  bad "lxc image import of the aarch64-only alias should fail on x86_64"
else
  ok "lxc image import of the aarch64-only alias fails: $(tail -1 "$OUT/arm.log")"
fi
reason=$(curl -s -H "Lxd-Server-Architectures: x86_64, i686" "$ORIGIN/realarm")
check "the worker's reason: $reason" bash -c "[[ \"$reason\" == *'matches the client'*'aarch64'* ]]"

# --- the page is served at / --------------------------------------------------------------------
if [ -f "$ROOT/www/index.html" ]; then
  check "GET / serves the page (www/index.html)" bash -c "curl -sf $ORIGIN/ | cmp -s - $ROOT/www/index.html"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

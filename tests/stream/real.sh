#!/usr/bin/env bash
# `lxdimg stream` against the real clients and the peer tool (issue 11), as root:
#   1. realistic images: unified container (.tar.xz), split squashfs, split root.tar.xz, split VM
#      (qcow2), and an aarch64-only unified image under its own alias;
#   2. `lxdimg stream init/add` writes a tree; `stream verify` passes on it;
#   3. nginx (Debian) serves it over HTTPS with a local CA the system trusts (scripts/test-ca.sh);
#   4. LXD 5.0.2 and Incus 6.0.4: `remote add … --protocol simplestreams`, `image list`,
#      `image copy REMOTE:ALIAS local:` of each image with the fingerprint the core computed,
#      `init` of the container images (VMs: import only; instances cannot start here); the
#      aarch64-only alias resolves to the aarch64 image (facts §6.5) and `init` then fails;
#   5. the peer: `incus-simplestreams add` writes its own tree of the same images; `lxdimg stream
#      verify` runs on it (clean for Incus, and says that LXD clients see nothing); Incus lists the
#      same images and fingerprints from both trees;
#   6. cleanup: images, instances, remotes, nginx.
# Every lxc/incus call has a timeout (the client can hang after the server already answered).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=$ROOT/target/stream-real
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
pass=0
fail=0
log() { echo "stream-real: $*"; }
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ "$(id -u)" -eq 0 ] || { echo "stream-real: must run as root"; exit 1; }
[ -x "$LXDIMG" ] || { echo "stream-real: $LXDIMG missing (make build)"; exit 1; }
command -v nginx >/dev/null || { echo "stream-real: nginx missing"; exit 1; }
command -v incus-simplestreams >/dev/null || { echo "stream-real: incus-simplestreams missing (make lxd-setup)"; exit 1; }

TEST_CA_INCUS=1 source "$ROOT/scripts/test-ca.sh"
source "$ROOT/scripts/test-image-lib.sh"

rm -rf "$OUT" && mkdir -p "$OUT/src"
S=$OUT/src
# --- 1. images ----------------------------------------------------------------------------------
mkdir -p "$S/u" "$S/s" "$S/t" "$S/v" "$S/a"
make_meta "$S/u" amd64 lxdimgtest unified; make_rootfs "$S/u/rootfs"
"${TAR[@]}" -C "$S/u" -cf - metadata.yaml templates rootfs | xz -T1 -c > "$OUT/unified.tar.xz"
make_meta "$S/s" amd64 lxdimgtest squash
"${TAR[@]}" -C "$S/s" -cf - metadata.yaml templates | xz -T1 -c > "$OUT/sq-meta.tar.xz"
make_rootfs "$S/s/rootfs"
mksquashfs "$S/s/rootfs" "$OUT/sq-rootfs.squashfs" -noappend -quiet -all-root -mkfs-time 1704067200 -all-time 1704067200 >/dev/null
make_meta "$S/t" amd64 lxdimgtest rootxz
"${TAR[@]}" -C "$S/t" -cf - metadata.yaml templates | xz -T1 -c > "$OUT/tx-meta.tar.xz"
make_rootfs "$S/t/rootfs"
"${TAR[@]}" -C "$S/t/rootfs" -cf - . | xz -T1 -c > "$OUT/tx-rootfs.tar.xz"
make_meta "$S/v" amd64 lxdimgtest vm
"${TAR[@]}" -C "$S/v" -cf - metadata.yaml templates | xz -T1 -c > "$OUT/vm-meta.tar.xz"
qemu-img create -q -f qcow2 "$OUT/vm-disk.qcow2" 64M
make_meta "$S/a" arm64 lxdimgtest armonly; mkdir -p "$S/a/rootfs/etc"; echo arm > "$S/a/rootfs/etc/hostname"
"${TAR[@]}" -C "$S/a" -cf - metadata.yaml templates rootfs | gzip -n -c > "$OUT/arm64.tar.gz"

core_fp() { "$LXDIMG" inspect --json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; }
FP_U=$(core_fp "$OUT/unified.tar.xz")
FP_S=$(core_fp "$OUT/sq-meta.tar.xz" "$OUT/sq-rootfs.squashfs")
FP_T=$(core_fp "$OUT/tx-meta.tar.xz" "$OUT/tx-rootfs.tar.xz")
FP_V=$(core_fp "$OUT/vm-meta.tar.xz" "$OUT/vm-disk.qcow2")
FP_A=$(core_fp "$OUT/arm64.tar.gz")

# --- 2. the tree ----------------------------------------------------------------------------------
T=$OUT/tree
check "stream init" "$LXDIMG" stream init "$T"
check "stream add unified" "$LXDIMG" stream add "$T" "$OUT/unified.tar.xz" --alias st-unified
check "stream add split squashfs" "$LXDIMG" stream add "$T" "$OUT/sq-meta.tar.xz" "$OUT/sq-rootfs.squashfs" --alias st-squash
check "stream add split root.tar.xz" "$LXDIMG" stream add "$T" "$OUT/tx-meta.tar.xz" "$OUT/tx-rootfs.tar.xz" --alias st-rootxz
check "stream add split VM" "$LXDIMG" stream add "$T" "$OUT/vm-meta.tar.xz" "$OUT/vm-disk.qcow2" --alias st-vm
check "stream add aarch64-only" "$LXDIMG" stream add "$T" "$OUT/arm64.tar.gz" --alias st-arm
cp "$T/streams/v1/images.json" "$OUT/images.before"
check "a second add of the same image is a no-op" bash -c "'$LXDIMG' stream add '$T' '$OUT/unified.tar.xz' --alias st-unified | grep -q 'already in the tree' && cmp -s '$T/streams/v1/images.json' '$OUT/images.before'"
"$LXDIMG" stream verify "$T" > "$OUT/verify.log" 2>&1 && ok "stream verify (own tree): $(tail -1 "$OUT/verify.log")" || { bad "stream verify (own tree)"; cat "$OUT/verify.log"; }
"$LXDIMG" stream list "$T"

# --- 5a. the peer's tree (incus-simplestreams, run inside its server root) ------------------------
P=$OUT/peer
mkdir -p "$P"
peer_add() { # NAME ARGS...
  local name=$1; shift
  if (cd "$P" && timeout 120 incus-simplestreams add "$@") >"$OUT/peer-$name.log" 2>&1; then
    echo "  incus-simplestreams add ($name): ok"; echo ok > "$OUT/peer-$name.status"
  else
    echo "  incus-simplestreams add ($name): refused: $(tail -1 "$OUT/peer-$name.log")"; echo refused > "$OUT/peer-$name.status"
  fi
}
peer_add unified "$OUT/unified.tar.xz" --alias pe-unified
peer_add squash "$OUT/sq-meta.tar.xz" "$OUT/sq-rootfs.squashfs" --alias pe-squash
peer_add rootxz "$OUT/tx-meta.tar.xz" "$OUT/tx-rootfs.tar.xz" --alias pe-rootxz
peer_add vm "$OUT/vm-meta.tar.xz" "$OUT/vm-disk.qcow2" --alias pe-vm
check "incus-simplestreams added the unified and split squashfs images" bash -c "grep -qx ok '$OUT/peer-unified.status' && grep -qx ok '$OUT/peer-squash.status'"
"$LXDIMG" stream verify "$P" --client incus > "$OUT/peer-verify-incus.log" 2>&1 && ok "stream verify --client incus (peer tree): $(tail -1 "$OUT/peer-verify-incus.log")" || { bad "stream verify --client incus (peer tree)"; cat "$OUT/peer-verify-incus.log"; }
if "$LXDIMG" stream verify "$P" > "$OUT/peer-verify.log" 2>&1; then
  bad "stream verify (peer tree, both clients) should say LXD sees nothing"
else
  check "stream verify (peer tree): LXD clients do not see its images" grep -q "LXD clients do not see image" "$OUT/peer-verify.log"
fi
cat "$OUT/peer-verify.log"

# --- 3. nginx over HTTPS ------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ORIGIN=https://localhost:$PORT
mkdir -p "$OUT/nginx/logs"
cat > "$OUT/nginx/nginx.conf" <<CONF
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/logs/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  types { application/json json; text/html html; }
  default_type application/octet-stream;
  access_log $OUT/nginx/logs/access.log;
  server {
    listen 127.0.0.1:$PORT ssl;
    server_name localhost;
    # nginx 1.22's default still lacks TLS 1.3, which the LXD and Incus clients require.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $TLS/server.crt;
    ssl_certificate_key $TLS/server.key;
    location /ours/ { alias $T/; }
    location /peer/ { alias $P/; }
  }
}
CONF
NPID=
cleanup() {
  set +e
  for c in lxc incus; do
    for i in st-u st-s st-t st-arm pe-u pe-s; do timeout 60 $c delete -f "$i" >/dev/null 2>&1; done
    for f in "$FP_U" "$FP_S" "$FP_T" "$FP_V" "$FP_A"; do timeout 60 $c image delete "$f" >/dev/null 2>&1; done
    for r in lxdimg-ours lxdimg-peer; do timeout 30 $c remote remove "$r" >/dev/null 2>&1; done
  done
  [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
}
trap cleanup EXIT
nginx -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" &
NPID=$!
for i in $(seq 1 50); do curl -sf "$ORIGIN/ours/streams/v1/index.json" >/dev/null 2>&1 && break; sleep 0.2; done
check "nginx serves the tree over HTTPS (system CA)" curl -sf "$ORIGIN/ours/streams/v1/index.json" -o /dev/null
# Leftovers of an earlier, interrupted run would make the daemons answer from their own stores.
for c in lxc incus; do for f in "$FP_U" "$FP_S" "$FP_T" "$FP_V" "$FP_A"; do timeout 60 $c image delete "$f" >/dev/null 2>&1 || true; done; done

# --- 4. the real clients ------------------------------------------------------------------------
image_fp() { timeout 60 $1 image info "$2" 2>/dev/null | sed -n 's/^Fingerprint: //p'; }
for c in lxc incus; do
  name=$([ $c = lxc ] && echo "LXD 5.0.2" || echo "Incus 6.0.4")
  timeout 30 $c remote remove lxdimg-ours >/dev/null 2>&1 || true
  if timeout 60 $c remote add lxdimg-ours "$ORIGIN/ours" --protocol simplestreams --public >"$OUT/$c-remote.log" 2>&1; then
    ok "$name: remote add $ORIGIN/ours --protocol simplestreams"
  else
    bad "$name: remote add: $(tail -1 "$OUT/$c-remote.log")"; continue
  fi
  timeout 60 $c image list lxdimg-ours: --format csv -c f > "$OUT/$c-list.csv" 2>&1 || true
  for fp in "$FP_U" "$FP_S" "$FP_T" "$FP_V"; do
    check "$name: image list shows ${fp:0:12}" grep -q "^${fp:0:12}" "$OUT/$c-list.csv"
  done
  for pair in "st-unified:$FP_U:st-u" "st-squash:$FP_S:st-s" "st-rootxz:$FP_T:st-t" "st-vm:$FP_V:"; do
    IFS=: read -r alias fp inst <<<"$pair"
    vmflag=$([ -z "$inst" ] && echo --vm || true)
    if timeout 300 $c image copy "lxdimg-ours:$alias" local: $vmflag >"$OUT/$c-copy-$alias.log" 2>&1; then
      ok "$name: image copy lxdimg-ours:$alias local:"
    else
      bad "$name: image copy lxdimg-ours:$alias: $(tail -1 "$OUT/$c-copy-$alias.log")"; continue
    fi
    check "$name: $alias copied with the core's fingerprint" test "$(image_fp $c "$fp")" = "$fp"
    if [ -n "$inst" ]; then
      if timeout 300 $c init "$fp" "$inst" >"$OUT/$c-init-$alias.log" 2>&1; then
        ok "$name: init $alias"
      else
        bad "$name: init $alias: $(tail -1 "$OUT/$c-init-$alias.log")"
      fi
    fi
  done
  # The aarch64-only alias resolves to the aarch64 image on this x86_64 host (facts §6.5); the
  # instance cannot be created.
  if timeout 300 $c image copy lxdimg-ours:st-arm local: >"$OUT/$c-copy-arm.log" 2>&1; then
    ok "$name: the aarch64-only alias resolves (image copy)"
    check "$name: it is the aarch64 image" bash -c "timeout 60 $c image info $FP_A | grep -q '^Architecture: aarch64'"
    if timeout 120 $c init "$FP_A" st-arm >"$OUT/$c-init-arm.log" 2>&1; then
      bad "$name: init of the aarch64 image should fail on x86_64"
    else
      ok "$name: init of the aarch64 image fails: $(tail -1 "$OUT/$c-init-arm.log")"
    fi
  else
    bad "$name: image copy lxdimg-ours:st-arm: $(tail -1 "$OUT/$c-copy-arm.log")"
  fi
done

# --- 5b. Incus reads both trees ---------------------------------------------------------------------
timeout 30 incus remote remove lxdimg-peer >/dev/null 2>&1 || true
if timeout 60 incus remote add lxdimg-peer "$ORIGIN/peer" --protocol simplestreams --public >"$OUT/peer-remote.log" 2>&1; then
  ok "Incus: remote add the peer's tree"
  timeout 60 incus image list lxdimg-peer: --format csv -c f > "$OUT/peer-list.csv" 2>&1 || true
  for st in unified:$FP_U squash:$FP_S rootxz:$FP_T vm:$FP_V; do
    IFS=: read -r what fp <<<"$st"
    if grep -qx ok "$OUT/peer-$what.status"; then
      check "Incus sees the peer's $what image with the same fingerprint as ours" grep -q "^${fp:0:12}" "$OUT/peer-list.csv"
    fi
  done
else
  bad "Incus: remote add peer: $(tail -1 "$OUT/peer-remote.log")"
fi
for st in unified squash rootxz vm; do log "incus-simplestreams add ($st): $(cat "$OUT/peer-$st.status")"; done

# --- 5c. `lxdimg stream serve --https` (local testing) in front of the real client ---------------
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$LXDIMG" stream serve "$T" --https --cert "$TLS/server.crt" --key "$TLS/server.key" --listen "127.0.0.1:$PORT2" 2>"$OUT/serve.log" &
SPID=$!
for i in $(seq 1 50); do curl -sf "https://localhost:$PORT2/streams/v1/index.json" >/dev/null 2>&1 && break; sleep 0.2; done
timeout 30 lxc remote remove lxdimg-serve >/dev/null 2>&1 || true
if timeout 60 lxc remote add lxdimg-serve "https://localhost:$PORT2" --protocol simplestreams --public >"$OUT/serve-remote.log" 2>&1; then
  timeout 60 lxc image list lxdimg-serve: --format csv -c f > "$OUT/serve-list.csv" 2>&1 || true
  check "LXD 5.0.2 lists the tree through lxdimg stream serve --https" grep -q "^${FP_S:0:12}" "$OUT/serve-list.csv"
else
  bad "lxc remote add (lxdimg stream serve --https): $(tail -1 "$OUT/serve-remote.log")"
fi
timeout 30 lxc remote remove lxdimg-serve >/dev/null 2>&1 || true
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# `lxdimg publish` against the real worker (wrangler dev, workerd) through upload sessions.
#
# The worker runs with a small per-request cap (MAX_REQUEST_BYTES 6 000 000, PART_BYTES 5 MiB), so
# a ~26 MB image needs several parts, as a 300 MB one does on Cloudflare's 100 MB cap.
#
#   1. a client killed (SIGKILL) right after its 2nd part is stored; the re-run answers "resuming",
#      sends only the missing parts (counted from its per-part lines) and publishes;
#   2. the stored image is downloaded: its SHA-256 is the fingerprint lxdimg printed and the file's;
#   3. the image deleted and published again with --jobs 4: the same fingerprint, the same bytes;
#   4. published again: "already published", no session, no part;
#   5. a split image (metadata + squashfs rootfs) through a session, both files downloaded intact;
#   6. the worker killed mid-upload and restarted on the same port and state: the client retries
#      with backoff through the outage and finishes;
#   7. an image LXD refuses: refused locally, nothing sent (no request in the worker's log); with
#      --no-local-check it goes through a session and the worker refuses it at completion (422,
#      exit 1, nothing indexed);
#   8. an image under the cap goes in one request (no session);
#   9. a worker from before sessions (a stand-in without maxRequestBytes): one request, any size.
#
# Needs target/debug or target/release lxdimg (LXDIMG=…), worker/node_modules, pkg/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
W=$ROOT/worker
OUT=$W/test/out/publish-cli
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
TOKEN=publish-cli-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')
export WRANGLER_SEND_METRICS=false
export LXDIMG_TOKEN=$TOKEN
# Retries: first wait 0.3 s, doubling (the outage in step 6 lasts a few seconds).
export LXDIMG_RETRY_BASE_MS=300
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
log() { echo "publish-cli: $*"; }

[ -x "$LXDIMG" ] || { echo "publish-cli: $LXDIMG missing (make build)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT/state"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ORIGIN=http://127.0.0.1:$PORT
WPID=
start_worker() {
  set -m
  (cd "$W" && exec ./node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" \
    --persist-to "$OUT/state" --var "UPLOAD_TOKEN:$TOKEN" \
    --var MAX_REQUEST_BYTES:6000000 --var PART_BYTES:5242880 \
    --show-interactive-dev-session=false </dev/null >>"$OUT/wrangler.log" 2>&1) &
  WPID=$!
  set +m
  for _ in $(seq 1 240); do
    curl -sf "$ORIGIN/api/version" >/dev/null 2>&1 && return 0
    kill -0 "$WPID" 2>/dev/null || { tail -30 "$OUT/wrangler.log"; echo "publish-cli: wrangler dev died"; exit 1; }
    sleep 0.25
  done
  echo "publish-cli: wrangler dev did not answer"; exit 1
}
stop_worker() {
  if [ -n "$WPID" ]; then kill -- -"$WPID" 2>/dev/null || kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null || true; WPID=; fi
}
CPID=
cleanup() {
  set +e
  [ -n "$CPID" ] && kill "$CPID" 2>/dev/null
  stop_worker
  rm -rf "$OUT/state"
}
trap cleanup EXIT
(cd "$W" && ./node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$OUT/state" >"$OUT/migrate.log" 2>&1)
start_worker
log "worker at $ORIGIN: $(curl -s "$ORIGIN/api/version")"

# --- images ------------------------------------------------------------------------------------
source "$ROOT/scripts/test-image-lib.sh"
S=$OUT/src
filler() { head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$1" -iv 0 2>/dev/null; }
mkdir -p "$S/u" "$S/s" "$S/bad" "$S/small"
make_meta "$S/u" x86_64; make_rootfs "$S/u/rootfs"
filler 0102030405060708090a0b0c0d0e0f10 26000000 > "$S/u/rootfs/usr/lib/big.bin"
"${TAR[@]}" -C "$S/u" -cf - metadata.yaml templates rootfs | gzip -1 -n -c > "$OUT/unified.tar.gz"
make_meta "$S/s" x86_64
"${TAR[@]}" -C "$S/s" -cf - metadata.yaml templates | xz -T1 -c > "$OUT/split-meta.tar.xz"
make_rootfs "$S/s/rootfs"
filler 1112131415161718191a1b1c1d1e1f20 13000000 > "$S/s/rootfs/usr/lib/big.bin"
mksquashfs "$S/s/rootfs" "$OUT/split-rootfs.squashfs" -noappend -quiet -all-root -mkfs-time 1704067200 -all-time 1704067200 >/dev/null
mkdir -p "$S/bad/rootfs"; filler 2122232425262728292a2b2c2d2e2f30 9000000 > "$S/bad/rootfs/big.bin"
"${TAR[@]}" -C "$S/bad" -cf - rootfs | gzip -1 -n -c > "$OUT/no-metadata.tar.gz"
make_meta "$S/small" x86_64; make_rootfs "$S/small/rootfs"
"${TAR[@]}" -C "$S/small" -cf - metadata.yaml templates rootfs | xz -T1 -c > "$OUT/small.tar.xz"

sha() { cat "$@" | sha256sum | cut -d' ' -f1; }
FP_U=$(sha "$OUT/unified.tar.gz")
FP_S=$(sha "$OUT/split-meta.tar.xz" "$OUT/split-rootfs.squashfs")
SIZE_U=$(stat -c %s "$OUT/unified.tar.gz")
PARTS_U=$(( (SIZE_U + 5242879) / 5242880 ))
log "unified image: $SIZE_U bytes, $PARTS_U parts of 5 MiB"
[ "$PARTS_U" -ge 4 ] || { echo "publish-cli: the test image is too small for several parts"; exit 1; }
stored_lines() { grep -c '^stored part ' "$1" || true; }

# --- 1. killed after two parts, resumed --------------------------------------------------------
mkfifo "$OUT/err.fifo"
"$LXDIMG" publish --server "$ORIGIN" --jobs 1 --alias cli/unified "$OUT/unified.tar.gz" >"$OUT/run1.out" 2>"$OUT/err.fifo" &
CPID=$!
n=0
while IFS= read -r line; do
  echo "$line" >>"$OUT/run1.err"
  case $line in "stored part "*) n=$((n + 1)); if [ "$n" -eq 2 ]; then kill -9 "$CPID"; break; fi ;; esac
done <"$OUT/err.fifo"
wait "$CPID" 2>/dev/null || true
CPID=
check "first run: killed after 2 of $PARTS_U parts (printed $(grep -c '^stored part ' "$OUT/run1.err" || true) part lines)" test "$n" -eq 2
check "first run: a session was opened" grep -q '^upload session .*: '"$PARTS_U"' parts' "$OUT/run1.err"

"$LXDIMG" publish --server "$ORIGIN" --jobs 1 --alias cli/unified "$OUT/unified.tar.gz" >"$OUT/run2.out" 2>"$OUT/run2.err" || true
resumed=$(sed -n 's/^resuming upload session .*: \([0-9]*\) of \([0-9]*\) parts already stored.*/\1/p' "$OUT/run2.err")
sent=$(stored_lines "$OUT/run2.err")
log "re-run: $(head -1 "$OUT/run2.err")"
check "re-run resumed the session with ≥ 2 parts stored (${resumed:-none})" test "${resumed:-0}" -ge 2
check "re-run sent only the missing parts ($sent = $PARTS_U - ${resumed:-?})" test "$sent" -eq $((PARTS_U - ${resumed:-0}))
check "re-run printed the fingerprint" grep -q "^published $FP_U " "$OUT/run2.out"
check "re-run printed the URL import command" grep -q "^lxc image import $ORIGIN/cli/unified --alias cli/unified$" "$OUT/run2.out"
check "re-run printed the remote command" grep -q "^lxc remote add 127-0-0-1 $ORIGIN --protocol simplestreams --public$" "$OUT/run2.out"

# --- 2. the stored bytes ----------------------------------------------------------------------
dl_sha() { curl -sf "$ORIGIN/images/$1/$2" | sha256sum | cut -d' ' -f1; }
check "downloaded unified file's SHA-256 = fingerprint" test "$(dl_sha "$FP_U" unified)" = "$FP_U"
check "URL import answer names the image" bash -c "curl -sfI -H 'Lxd-Server-Architectures: x86_64' $ORIGIN/cli/unified | grep -qi '^lxd-image-hash: $FP_U'"

# --- 3. --jobs 4 makes the same image ----------------------------------------------------------
curl -sf -X DELETE -H "Authorization: Bearer $TOKEN" "$ORIGIN/api/images/$FP_U" >/dev/null
check "deleted before the --jobs 4 run" test "$(curl -s -o /dev/null -w '%{http_code}' "$ORIGIN/api/images/$FP_U")" = 404
t0=$(date +%s.%N)
"$LXDIMG" publish --server "$ORIGIN" --jobs 4 --alias cli/unified "$OUT/unified.tar.gz" >"$OUT/run3.out" 2>"$OUT/run3.err" || true
t1=$(date +%s.%N)
check "--jobs 4: a new session, all $PARTS_U parts sent" test "$(stored_lines "$OUT/run3.err")" -eq "$PARTS_U"
check "--jobs 4: same fingerprint" grep -q "^published $FP_U " "$OUT/run3.out"
check "--jobs 4: downloaded SHA-256 = fingerprint" test "$(dl_sha "$FP_U" unified)" = "$FP_U"
log "--jobs 4: $SIZE_U bytes in $(python3 -c "print(f'{$t1-$t0:.2f}')") s (local check included)"

# --- 4. already stored --------------------------------------------------------------------------
"$LXDIMG" publish --server "$ORIGIN" --alias cli/again "$OUT/unified.tar.gz" >"$OUT/run4.out" 2>"$OUT/run4.err" || true
check "again: already published" grep -q "^already published $FP_U " "$OUT/run4.out"
check "again: no part sent" test "$(stored_lines "$OUT/run4.err")" -eq 0
check "again: the new alias points at it" bash -c "curl -sfI -H 'Lxd-Server-Architectures: x86_64' $ORIGIN/cli/again | grep -qi '^lxd-image-hash: $FP_U'"

# --- 5. split image ---------------------------------------------------------------------------
"$LXDIMG" publish --server "$ORIGIN" --jobs 3 --alias cli/split "$OUT/split-meta.tar.xz" "$OUT/split-rootfs.squashfs" >"$OUT/run5.out" 2>"$OUT/run5.err" || true
check "split: through a session, rootfs in several parts" test "$(grep -c '^stored part rootfs ' "$OUT/run5.err" || true)" -ge 2
check "split: metadata sent as one part" test "$(grep -c '^stored part metadata 1/1 ' "$OUT/run5.err" || true)" -eq 1
check "split: fingerprint printed" grep -q "^published $FP_S " "$OUT/run5.out"
check "split: metadata bytes intact" test "$(dl_sha "$FP_S" metadata)" = "$(sha "$OUT/split-meta.tar.xz")"
check "split: rootfs bytes intact" test "$(dl_sha "$FP_S" rootfs)" = "$(sha "$OUT/split-rootfs.squashfs")"
check "split: the command is the simplestreams remote" grep -q "^lxc remote add .* --protocol simplestreams --public && lxc image copy .*:cli/split local:$" "$OUT/run5.out"

# --- 6. the worker goes away mid-upload and comes back -----------------------------------------
curl -sf -X DELETE -H "Authorization: Bearer $TOKEN" "$ORIGIN/api/images/$FP_U" >/dev/null
rm -f "$OUT/err.fifo"; mkfifo "$OUT/err.fifo"
"$LXDIMG" publish --server "$ORIGIN" --jobs 2 --alias cli/unified "$OUT/unified.tar.gz" >"$OUT/run6.out" 2>"$OUT/err.fifo" &
CPID=$!
restarted=no
while IFS= read -r line; do
  echo "$line" >>"$OUT/run6.err"
  if [ "$restarted" = no ] && [[ $line == "stored part "* ]]; then
    stop_worker; log "worker stopped after the first part"; sleep 1; start_worker; log "worker restarted"; restarted=yes
  fi
done <"$OUT/err.fifo"
wait "$CPID" && rc=0 || rc=$?
CPID=
check "outage: the worker was restarted mid-upload" test "$restarted" = yes
check "outage: the client retried" grep -q 'retrying in ' "$OUT/run6.err"
check "outage: published anyway (exit $rc)" grep -q "^published $FP_U " "$OUT/run6.out"
check "outage: downloaded SHA-256 = fingerprint" test "$(dl_sha "$FP_U" unified)" = "$FP_U"

# --- 7. an image LXD refuses ---------------------------------------------------------------------
before=$(grep -c 'api/uploads\|api/images' "$OUT/wrangler.log" || true)
"$LXDIMG" publish --server "$ORIGIN" "$OUT/no-metadata.tar.gz" >"$OUT/run7.out" 2>"$OUT/run7.err" && rc=0 || rc=$?
sleep 0.5
after=$(grep -c 'api/uploads\|api/images' "$OUT/wrangler.log" || true)
check "refused locally: exit 1 ($rc)" test "$rc" -eq 1
check "refused locally: LXD's reason printed ($(tail -1 "$OUT/run7.err"))" grep -q '^Error: the image is refused (checked locally; nothing was sent): .*metadata.yaml' "$OUT/run7.err"
check "refused locally: no upload request reached the worker" test "$before" -eq "$after"
"$LXDIMG" publish --server "$ORIGIN" --no-local-check "$OUT/no-metadata.tar.gz" >"$OUT/run8.out" 2>"$OUT/run8.err" && rc=0 || rc=$?
check "--no-local-check: sent through a session" test "$(stored_lines "$OUT/run8.err")" -ge 2
check "--no-local-check: the worker refuses it, exit 1 ($rc)" test "$rc" -eq 1
check "--no-local-check: the worker's reason ($(tail -1 "$OUT/run8.err"))" grep -q '^Error: .*metadata.yaml' "$OUT/run8.err"
check "--no-local-check: the report printed" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT/run8.out"
check "--no-local-check: the worker's log shows its requests (so the count above means something)" test "$(grep -c 'api/uploads\|api/images' "$OUT/wrangler.log" || true)" -gt "$after"
check "--no-local-check: nothing indexed" test "$(curl -s -o /dev/null -w '%{http_code}' "$ORIGIN/api/images/$(sha "$OUT/no-metadata.tar.gz")")" = 404

# --- 8. under the cap: one request --------------------------------------------------------------
"$LXDIMG" publish --server "$ORIGIN" --alias cli/small "$OUT/small.tar.xz" >"$OUT/run9.out" 2>"$OUT/run9.err" || true
check "small image: published" grep -q "^published $(sha "$OUT/small.tar.xz") " "$OUT/run9.out"
check "small image: no session" bash -c "! grep -q 'upload session' $OUT/run9.err"

# --- 9. a worker from before sessions (no maxRequestBytes): one request, whatever the size -------
# A stand-in that answers /api/version as the old worker did and records what it is sent.
cat >"$OUT/old-worker.py" <<'PY'
import hashlib, http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        with open(sys.argv[2], "a") as log: log.write(f"GET {self.path}\n")
        if self.path == "/api/version": return self.answer(200, {"core": "0.1.0", "max_upload_bytes": 8589934592})
        self.answer(404, {"error": "no"})
    def do_POST(self):
        n = int(self.headers["Content-Length"]); h = hashlib.sha256(); left = n
        while left: chunk = self.rfile.read(min(left, 1 << 20)); h.update(chunk); left -= len(chunk)
        with open(sys.argv[2], "a") as log: log.write(f"POST {self.path.split('?')[0]} {n} {h.hexdigest()}\n")
        if not self.path.startswith("/api/images"): return self.answer(404, {"error": "no such route"})
        fp = h.hexdigest()
        self.answer(201, {"created": True, "fingerprint": fp, "architecture": "x86_64", "type": "container", "format": "unified",
                          "url": f"http://old/{fp}", "import": f"lxc image import http://old/{fp} --alias old"})
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$OUT/old-worker.py" "$OUT/old.port" "$OUT/old.log" &
OLDPID=$!
for _ in $(seq 1 50); do [ -s "$OUT/old.port" ] && break; sleep 0.1; done
"$LXDIMG" publish --server "http://127.0.0.1:$(cat "$OUT/old.port")" "$OUT/unified.tar.gz" >"$OUT/run10.out" 2>"$OUT/run10.err" || true
kill "$OLDPID" 2>/dev/null; wait "$OLDPID" 2>/dev/null || true
check "old worker: published in one request ($(tr '\n' ';' <"$OUT/old.log"))" grep -qx "POST /api/images $SIZE_U $FP_U" "$OUT/old.log"
check "old worker: no session route asked" bash -c "! grep -q uploads $OUT/old.log"
check "old worker: the result printed" grep -q "^published $FP_U " "$OUT/run10.out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# `lxdimg publish` of a ~300 MB image against the worker under wrangler dev (local R2/D1
# emulation): one request (a worker whose cap is above the image) beside upload sessions at the
# default cap (MAX_REQUEST_BYTES 100 000 000, PART_BYTES 64 MiB) with --jobs 1, 2 and 4, and the
# same with the local check. Wall time of the whole command (best of RUNS), MB/s, ratio to the
# single request. The image is deleted between runs, so each run stores it anew.
#
#   make bench-publish            (part of `make bench`; results also in bench/out/publish.txt)
#   SIZE_MB=300 RUNS=2 bash worker/bench/publish.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
W=$ROOT/worker
OUT=$W/bench/out/publish
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
SIZE_MB=${SIZE_MB:-300}
RUNS=${RUNS:-2}
TOKEN=bench-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')
export WRANGLER_SEND_METRICS=false LXDIMG_TOKEN=$TOKEN
[ -x "$LXDIMG" ] || { echo "bench-publish: $LXDIMG missing (make build)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$OUT"/state-*; }
trap cleanup EXIT
start() { # NAME MAX_REQUEST_BYTES → prints the origin
  local name=$1 cap=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$W" && ./node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$OUT/state-$name" >/dev/null 2>&1)
  set -m
  (cd "$W" && exec ./node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$port" --persist-to "$OUT/state-$name" \
    --var "UPLOAD_TOKEN:$TOKEN" --var "MAX_REQUEST_BYTES:$cap" --show-interactive-dev-session=false \
    </dev/null >"$OUT/wrangler-$name.log" 2>&1) &
  PIDS+=($!)
  set +m
  for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$port/api/version" >/dev/null 2>&1 && break; sleep 0.25; done
  ORIGIN=http://127.0.0.1:$port
}

# The image: a small rootfs and SIZE_MB of incompressible bytes, gzip -1 (a .tar.gz of that size).
source "$ROOT/scripts/test-image-lib.sh"
S=$OUT/src
mkdir -p "$S"
make_meta "$S" x86_64; make_rootfs "$S/rootfs"
head -c "$((SIZE_MB * 1000000))" /dev/zero | openssl enc -aes-128-ctr -nosalt -K 5152535455565758595a5b5c5d5e5f60 -iv 0 2>/dev/null > "$S/rootfs/usr/lib/big.bin"
"${TAR[@]}" -C "$S" -cf - metadata.yaml templates rootfs | gzip -1 -n -c > "$OUT/image.tar.gz"
rm -rf "$S"
BYTES=$(stat -c %s "$OUT/image.tar.gz")
FP=$(sha256sum < "$OUT/image.tar.gz" | cut -d' ' -f1)

start single 2000000000; SINGLE=$ORIGIN
start sessions 100000000; SESSIONS=$ORIGIN

run() { # ORIGIN ARGS… → best wall seconds of RUNS
  local origin=$1 best= t0 t1 s; shift
  for _ in $(seq 1 "$RUNS"); do
    curl -sf -X DELETE -H "Authorization: Bearer $TOKEN" "$origin/api/images/$FP" >/dev/null 2>&1 || true
    t0=$(date +%s.%N)
    "$LXDIMG" publish --server "$origin" "$@" "$OUT/image.tar.gz" >"$OUT/last.out" 2>"$OUT/last.err" || { cat "$OUT/last.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    grep -q "^published $FP " "$OUT/last.out" || { echo "bench-publish: not published" >&2; cat "$OUT/last.out" "$OUT/last.err" >&2; exit 1; }
    s=$(python3 -c "print($t1 - $t0)")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $s < $best else 1)"; then
      best=$s
      # The session's own split: sending the parts, then the server's check at completion.
      split=$(sed -n 's/^sent [0-9]* parts in \([0-9.]*\) s; the server checked the image in \([0-9.]*\) s.*/\1 \2/p' "$OUT/last.err")
    fi
  done
  echo "$best ${split:--- --}"
}

{
  echo "lxdimg publish, $BYTES bytes (.tar.gz), wrangler dev on loopback (local R2/D1 emulation), best of $RUNS, load $(cut -d' ' -f1-3 /proc/loadavg):"
  printf '  %-44s %8s %7s %6s %8s %9s\n' "" "seconds" "MB/s" "ratio" "sending" "checking"
  read -r base _ _ < <(run "$SINGLE" --no-local-check)
  row() { # LABEL SECONDS SEND CHECK
    printf '  %-44s %8.2f %7.1f %6.2f %8s %9s\n' "$1" "$2" "$(python3 -c "print($BYTES/1e6/$2)")" "$(python3 -c "print($base/$2)")" "$3" "$4"
  }
  row "one request, --no-local-check" "$base" -- --
  for j in 1 2 4; do
    row "session, --jobs $j, --no-local-check" $(run "$SESSIONS" --no-local-check --jobs "$j")
  done
  row "session, --jobs 4, local check first" $(run "$SESSIONS" --jobs 4)
  echo "  one request: a worker with MAX_REQUEST_BYTES 2 GB; sessions: the default 100 000 000, PART_BYTES 64 MiB."
  echo "  ratio: the one request's time / this row's (above 1 is faster); sending / checking: the session's"
  echo "  parts, then the worker's validation of the assembled files at completion (from lxdimg's stderr)."
} | tee "$ROOT/bench/out/publish.txt"

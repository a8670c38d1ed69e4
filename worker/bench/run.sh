#!/usr/bin/env bash
# Worker benchmarks, printed side by side (make bench-worker):
#   1. upload validation throughput: the wasm core in Node vs the worker in workerd on the same
#      file (POST /api/inspect: validate only; POST /api/images: validate + store in local R2);
#   2. upload sessions (bench/sessions.mjs): the same file through one request and through an
#      upload session in 64 MiB parts (throughput ratio, target >= 0.8), and the workerd CPU time
#      of the part requests (the core reads each part as it arrives) and of `complete`, CPU ms per
#      MB and peak memory, for a 300 MB .tar.xz and a ~1 GB split image, sent in order and with
#      part 1 last (then `complete` reads the image back from R2); the same two routes again with the client's uplink capped (RATES Mbit/s,
#      default 100 and 1000: a token bucket in the Node client, shared by the session's parallel
#      parts); and (bench/r2-readback.mjs) what reading 300 MB back from the local R2
#      costs as a one-part object and as a session's multipart object;
#   3. URL-import answers under 64 concurrent connections (wrk, loopback): the worker (D1 alias
#      lookup + negotiation) vs nginx serving the same two headers statically (the "poor man's
#      image server"); requests/s, p99 latency, CPU time per answer (server processes only).
# Results also go to worker/bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
W=$ROOT/worker
OUT=$W/bench/out
DURATION=${DURATION:-10s}
mkdir -p "$OUT"
export WRANGLER_SEND_METRICS=false
HZ=$(getconf CLK_TCK)

# The upload file is the benches' shared input (bench/make-inputs.sh); the small image for the
# URL-import answers comes from the worker tests' generator.
QUIET=1 bash "$ROOT/bench/make-inputs.sh"
bash "$W/bench/make-session-inputs.sh"
BIG=$ROOT/bench/data/big-256m.tar.gz
IMG=$(bash "$W/test/make-images.sh" "$W/test/out/images")
SMALL=$IMG/unified-amd64.tar.xz

# CPU ticks (user+system) of a set of PIDs.
ticks() { local t=0 p; for p in "$@"; do [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
descendants() { local p=$1 c; echo "$p"; for c in $(pgrep -P "$p"); do descendants "$c"; done; }

NODE_PID=
NGINX_PID=
cleanup() {
  set +e
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
}
trap cleanup EXIT

# --- the worker in workerd ---------------------------------------------------------------------
rm -f "$OUT/serve.json"
node "$W/bench/serve.mjs" "$SMALL" > "$OUT/serve.json" 2>"$OUT/serve.log" &
NODE_PID=$!
for i in $(seq 1 120); do [ -s "$OUT/serve.json" ] && break; sleep 0.5; done
[ -s "$OUT/serve.json" ] || { cat "$OUT/serve.log"; echo "bench: worker did not start"; exit 1; }
read -r URL TOKEN FP < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["url"], d["token"], d["fingerprint"])' "$OUT/serve.json")
WORKERD_PIDS=$(descendants "$NODE_PID" | grep -v "^$NODE_PID$" | tr '\n' ' ')

# --- 1. validation throughput ------------------------------------------------------------------
echo "bench: validation throughput on $(basename "$BIG") ($(du -m "$BIG" | cut -f1) MiB)"
node "$W/bench/node-inspect.mjs" "$BIG" 1048576 3 > "$OUT/node.json"
NODE_MBS=$(python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["mb_per_s"])' "$OUT/node.json")
post_best() { # PATH -> best MB/s of 3 (sent from memory by a Node client: curl -T costs more than the worker)
  node "$W/bench/post.mjs" "$URL$1" "$BIG" "$TOKEN" 3 | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["mb_per_s"])'
}
INSPECT_MBS=$(post_best /api/inspect)
UPLOAD_MBS=$(post_best "/api/images?alias=big")

# --- 2. upload sessions ------------------------------------------------------------------------
echo "bench: upload sessions (single request vs parts; validation CPU)"
D=$ROOT/bench/data
node "$W/bench/sessions.mjs" --throughput "$D/random-300M.tar.xz" \
  --validate "300 MB unified .tar.xz" "$D/random-300M.tar.xz" \
  --validate "1 GB split, squashfs rootfs" "$D/split-1g-meta.tar.xz" "$D/split-1g-rootfs.squashfs" > "$OUT/sessions.jsonl"
# What reading the session's object back costs in Miniflare's local R2, beside a one-part object.
node "$W/bench/r2-readback.mjs" "$D/random-300M.tar.xz" >> "$OUT/sessions.jsonl"
SESSIONS=$(python3 - "$OUT/sessions.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = []
for r in rows:
    if r["kind"] == "throughput":
        out += [f"Upload throughput, {r['file']} ({r['bytes']/1e6:.0f} MB), best of 3, workerd's own socket:",
                f"  {'one request, POST /api/images':40s} {r['single_mb_s']:8.1f} MB/s",
                f"  {'session, 64 MiB parts, %d at a time' % r['jobs']:40s} {r['session_mb_s']:8.1f} MB/s   {r['ratio']:5.2f}x one request   (target >= 0.80x)",
                f"  {'':40s} (parts {r['session_parts_s']:.1f} s + complete {r['session_complete_s']:.1f} s)", ""]
paced = [r for r in rows if r["kind"] == "paced"]
if paced:
    def up(m):
        return f"{m/1000:g} Gbit/s" if m >= 1000 else f"{m:g} Mbit/s"
    out += [f"Upload throughput at a fixed client uplink, {paced[0]['file']} ({paced[0]['bytes']/1e6:.0f} MB): the Node client paces",
            f"  each body with a token bucket (both routes alike; the session's {paced[0]['jobs']} parallel parts share one cap), best of {paced[0]['runs']}:",
            f"  {'client uplink':20s} {'one request MB/s':>17s} {'session MB/s':>13s} {'ratio':>6s}   session parts + complete"]
    for r in rows:
        if r["kind"] == "throughput":
            out.append(f"  {'loopback (no cap)':20s} {r['single_mb_s']:17.1f} {r['session_mb_s']:13.1f} {r['ratio']:6.2f}   {r['session_parts_s']:.1f} s + {r['session_complete_s']:.1f} s")
    for r in paced:
        out.append(f"  {up(r['uplink_mbit_s']) + ' (%g MB/s)' % r['uplink_mb_s']:20s} {r['single_mb_s']:17.1f} {r['session_mb_s']:13.1f} {r['ratio']:6.2f}   {r['session_parts_s']:.1f} s + {r['session_complete_s']:.1f} s")
    out += ["  (target: ratio >= 0.80)", ""]
out.append("Session validation CPU in workerd (parts sent one at a time; the core reads each part as it arrives in order,")
out.append("and complete reads from R2 what it did not: \"part 1 last\" leaves nearly all of it to complete):")
out.append(f"  {'':30s} {'sent':12s} {'MB':>5s} {'parts':>5s} {'largest part':>12s} {'all parts':>9s} {'complete':>8s} {'CPU ms/MB':>9s} {'peak RSS':>8s} {'wasm':>5s}")
for r in rows:
    if r["kind"] == "validate":
        out.append(f"  {r['name']:30s} {r['sent']:12s} {r['bytes']/1e6:5.0f} {r['parts']:5d} {r['part_cpu_ms_max']:9.0f} ms {r['parts_cpu_ms']:6.0f} ms {r['complete_cpu_ms']:5.0f} ms {r['cpu_ms_per_mb']:9.2f} {max(r['parts_peak_rss_mb'], r['complete_peak_rss_mb']):5.0f} MB {r['core_wasm_memory_mb']:3.0f} MB")
out.append("  (CPU ms and RSS of the whole workerd process: Miniflare's local R2 and D1 emulation included; CPU ms/MB over parts + complete)")
back = [r for r in rows if r["kind"] == "readback"]
if back:
    out += ["", f"Reading {back[0]['bytes']/1e6:.0f} MB back from local R2 in workerd (½–1 MiB BYOB reads, as complete does; nothing else):",
            f"  {'object':26s} {'read':32s} {'wall ms':>8s} {'CPU ms':>7s} {'CPU ms/MB':>10s}"]
    out += [f"  {r['object']:26s} {r['read']:32s} {r['wall_ms']:8.0f} {r['cpu_ms']:7.0f} {r['cpu_ms_per_mb']:10.2f}" for r in back]
print("\n".join(out))
PY
)
echo "$SESSIONS"

# --- 3. URL-import answers ---------------------------------------------------------------------
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$OUT/nginx/logs"
cat > "$OUT/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NPORT;
    location = /bench {
      add_header LXD-Image-Hash $FP always;
      add_header LXD-Image-URL http://127.0.0.1:$NPORT/images/$FP/unified always;
      return 200 "$FP\n";
    }
  }
}
EOF
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" &
NGINX_PID=$!
for i in $(seq 1 50); do curl -sf "http://127.0.0.1:$NPORT/bench" >/dev/null 2>&1 && break; sleep 0.1; done
NGINX_PIDS=$(descendants "$NGINX_PID" | tr '\n' ' ')

# Sanity: the worker really answers with the headers.
curl -sfI -H 'Lxd-Server-Architectures: x86_64, i686' "$URL/bench" | grep -qi "^lxd-image-hash: $FP" || { echo "bench: worker answer has no hash"; exit 1; }

run_wrk() { # NAME URL PIDS... -> "req/s p99_ms cpu_us_per_answer"
  local name=$1 url=$2; shift 2
  curl -s -o /dev/null -H 'Lxd-Server-Architectures: x86_64, i686' "$url" # warm up
  wrk -t2 -c64 -d3s -H 'Lxd-Server-Architectures: x86_64, i686' "$url" >/dev/null
  local t0 t1
  t0=$(ticks "$@")
  wrk -t2 -c64 -d"$DURATION" --latency -H 'Lxd-Server-Architectures: x86_64, i686' "$url" > "$OUT/wrk-$name.txt"
  t1=$(ticks "$@")
  python3 - "$OUT/wrk-$name.txt" "$t0" "$t1" "$HZ" <<'PY'
import re, sys
txt = open(sys.argv[1]).read()
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", txt).group(1))
n = int(re.search(r"(\d+) requests in", txt).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", txt)
p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
if non2xx:
    sys.exit(f"{sys.argv[1]}: {non2xx.group(1)} non-2xx answers")
cpu_us = (t1 - t0) / hz * 1e6 / max(n, 1)
print(f"{rps:.0f} {p99:.2f} {cpu_us:.1f}")
PY
}
read -r W_RPS W_P99 W_CPU < <(run_wrk worker "$URL/bench" $WORKERD_PIDS)
read -r N_RPS N_P99 N_CPU < <(run_wrk nginx "http://127.0.0.1:$NPORT/bench" $NGINX_PIDS)

echo "$SESSIONS" > "$OUT/sessions.txt"
python3 - "$OUT/results.txt" <<PY
import sys
node, insp, upl = $NODE_MBS, $INSPECT_MBS, $UPLOAD_MBS
w_rps, w_p99, w_cpu = $W_RPS, $W_P99, $W_CPU
n_rps, n_p99, n_cpu = $N_RPS, $N_P99, $N_CPU
lines = [
  "lxdimg worker benchmark ($(nproc) cores, $(date -u +%Y-%m-%d))",
  "",
  "Upload validation, $(basename "$BIG") ($(du -m "$BIG" | cut -f1) MiB), best of 3:",
  f"  {'wasm core in Node':40s} {node:8.1f} MB/s",
  f"  {'worker in workerd, POST /api/inspect':40s} {insp:8.1f} MB/s   {insp/node:5.2f}x Node   (target >= 0.80x)",
  f"  {'worker in workerd, POST /api/images':40s} {upl:8.1f} MB/s   {upl/node:5.2f}x Node   (validate + store in local R2)",
  "",
  *open("$OUT/sessions.txt").read().splitlines(),
  "",
  "URL-import answers, wrk 64 connections, $DURATION, loopback:",
  f"  {'':40s} {'req/s':>9s} {'p99 ms':>8s} {'CPU us/answer':>14s}",
  f"  {'worker (workerd, negotiation, alias cache)':40s} {w_rps:9.0f} {w_p99:8.2f} {w_cpu:14.1f}",
  f"  {'nginx, the same two headers, static':40s} {n_rps:9.0f} {n_p99:8.2f} {n_cpu:14.1f}",
  f"  {'ratio worker / nginx':40s} {w_rps/n_rps:9.2f} {w_p99/n_p99:8.2f} {w_cpu/max(n_cpu,1e-9):14.2f}",
]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

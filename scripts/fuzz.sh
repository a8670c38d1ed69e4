#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/) for FUZZ_SECONDS, one at a time, from a corpus seeded by the
# tests' fixture generators; prints executions and findings per target. Every crash, timeout or
# out-of-memory input is moved to tests/regressions/<target>/, which `cargo test` replays.
#
#   FUZZ_SECONDS=60 FUZZ_TARGETS="yaml tar_walk" bash scripts/fuzz.sh
#
# Used by `make fuzz` (mk/fuzz.mk), which installs cargo-fuzz and the nightly toolchain first.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ALL="unified split tar_walk yaml rootfs decode_gzip decode_bzip2 decode_xz decode_lzma decode_zstd"
FUZZ_TARGETS=${FUZZ_TARGETS:-$ALL}
CARGO_FUZZ="cargo +nightly fuzz"
# -O: optimised; -a: debug assertions and overflow checks on, so arithmetic overflow is a crash.
BUILD_FLAGS="-O -a"
LOGS=target/fuzz-logs
mkdir -p "$LOGS"

# Longest input per target: enough to cross the 16 KiB decoder pieces and, for the inspector,
# the 64 KiB verdict granules; small enough to keep executions fast.
max_len() {
  case $1 in
    unified | split) echo 131072 ;;
    yaml) echo 32768 ;;
    *) echo 65536 ;;
  esac
}

echo "== seeds: fuzz/corpus/<target>/ (LXDIMG_FUZZ_SEEDS=fuzz/corpus cargo test --test regressions fuzz_seeds)"
LXDIMG_FUZZ_SEEDS=fuzz/corpus cargo test --quiet --locked --test regressions fuzz_seeds >"$LOGS/seeds.log" 2>&1 ||
  { tail -30 "$LOGS/seeds.log"; exit 1; }

echo "== build: $CARGO_FUZZ build $BUILD_FLAGS"
$CARGO_FUZZ build $BUILD_FLAGS --fuzz-dir fuzz >"$LOGS/build.log" 2>&1 || { tail -30 "$LOGS/build.log"; exit 1; }

found=0
printf '%-14s %12s %10s %8s  %s\n' target executions exec/s found "regression files"
for t in $FUZZ_TARGETS; do
  corpus=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  log=$LOGS/$t.log
  # libFuzzer exits non-zero on a finding; the summary below reports it.
  $CARGO_FUZZ run $BUILD_FLAGS --fuzz-dir fuzz "$t" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  new=()
  for a in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*; do
    [ -e "$a" ] || continue
    mkdir -p "tests/regressions/$t"
    mv "$a" "tests/regressions/$t/"
    new+=("tests/regressions/$t/$(basename "$a")")
  done
  found=$((found + ${#new[@]}))
  printf '%-14s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${#new[@]}" "${new[*]:-}"
  # One line per run, for fuzz/RESULTS.md: when, commit, target, seconds, executions, findings.
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo +dirty)" \
    "$t" "$FUZZ_SECONDS" "${execs:-?}" "${#new[@]}" >>"$LOGS/history.tsv"
  if [ ${#new[@]} -gt 0 ]; then
    grep -m1 -E "^==[0-9]+== ERROR|panicked at|deadly signal|timeout after|out-of-memory" "$log" || true
    echo "   (log: $log)"
  fi
done
if [ "$found" -gt 0 ]; then
  echo "$found finding(s) moved to tests/regressions/; \`cargo test --test regressions\` replays them"
  exit 1
fi

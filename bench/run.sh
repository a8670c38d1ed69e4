#!/usr/bin/env bash
# `make bench`: the shared inputs (bench/make-inputs.sh, once; kept in bench/data, git-ignored),
# then bench/bench.py, which prints lxdimg beside the reference tools in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/make-inputs.sh
[ -x /usr/bin/time ] || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null; }
python3 bench/bench.py "$@"

#!/usr/bin/env bash
# `make bench`: builds the realistic inputs (once; kept in bench/data, git-ignored), then runs
# bench/bench.py, which prints lxdimg beside the reference tools in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
D=bench/data
mkdir -p "$D"
need() { command -v "$1" >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }; }
need debootstrap debootstrap; need zstd zstd; need xz xz-utils; need bzip2 bzip2; need openssl openssl; [ -x /usr/bin/time ] || need nonexistent-tool time

# A realistic rootfs: a debootstrapped Debian bookworm (minbase + systemd, ssh, python3; ~300 MB).
if [ ! -f "$D/rootfs/etc/os-release" ]; then
  echo "bench: debootstrapping Debian bookworm into $D/rootfs (a few minutes)" >&2
  rm -rf "$D/rootfs"
  debootstrap --variant=minbase --include=systemd,iproute2,openssh-server,python3 bookworm "$D/rootfs" http://deb.debian.org/debian >"$D/debootstrap.log" 2>&1
fi
if [ ! -f "$D/debian.tar" ]; then
  mkdir -p "$D/meta/templates"
  cat > "$D/meta/metadata.yaml" <<YAML
architecture: x86_64
creation_date: $(date -d 2024-01-01 +%s)
properties:
  description: Debian bookworm amd64 (bench)
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
YAML
  echo '{{ instance.name }}' > "$D/meta/templates/hostname.tpl"
  tar --numeric-owner -cf "$D/debian.tar" -C "$D/meta" metadata.yaml templates -C "$PWD/$D" rootfs
fi
[ -f "$D/debian.tar.gz" ] || gzip -6 -c "$D/debian.tar" > "$D/debian.tar.gz"
[ -f "$D/debian.tar.xz" ] || xz -6 -T1 -c "$D/debian.tar" > "$D/debian.tar.xz"   # one xz block
[ -f "$D/debian.tar.zst" ] || zstd -q -3 -c "$D/debian.tar" > "$D/debian.tar.zst"
[ -f "$D/debian.tar.bz2" ] || bzip2 -9 -c "$D/debian.tar" > "$D/debian.tar.bz2"
[ -f "$D/random-1g.bin" ] || head -c 1G /dev/urandom > "$D/random-1g.bin"
if [ ! -f "$D/big-4g.tar.zst" ]; then
  mkdir -p "$D/big/rootfs" && cp "$D/meta/metadata.yaml" "$D/big/" && truncate -s 4G "$D/big/rootfs/zeros"
  tar -cf - -C "$D/big" metadata.yaml rootfs | zstd -q -1 -T2 -c > "$D/big-4g.tar.zst"
fi
python3 bench/bench.py "$@"

#!/usr/bin/env bash
# The one set of benchmark inputs, shared by every bench (make bench, bench-www, bench-worker).
# Idempotent: what exists is kept. Reproducible: fixed times, owners and order in every tarball,
# pseudo-random data from a fixed key (not /dev/urandom), compressors without timestamps; the
# Debian rootfs comes from debootstrap with this machine's own apt mirror. Prints what it has,
# with sizes and SHA-256, so two machines can compare.
#
#   bench/data/rootfs/                  debootstrapped Debian bookworm (minbase + systemd, ssh, python3)
#   bench/data/debian.tar               that rootfs as a unified LXD image (~304 MB)
#   bench/data/debian.tar.{gz,xz,zst,bz2}   gzip -6 -n, xz -6 -T1 (one block), zstd -3, bzip2 -9
#   bench/data/rootfs.tar{,.gz,.xz,.zst}  the rootfs alone (lxdimg make)
#   bench/data/random-1g.bin            1 GiB of pseudo-random bytes (the fingerprint bench)
#   bench/data/random-300M.tar.xz       300 MB of pseudo-random rootfs data, one xz block, 8 MiB window
#   bench/data/big-4g.tar.zst           a 4 GiB tar stream (a sparse 4 GiB file of zeros), zstd -1
#   bench/data/big-256m.tar.gz          256 MiB of pseudo-random rootfs data, gzip -1 (worker uploads)
set -euo pipefail
cd "$(dirname "$0")/.."
D=bench/data
mkdir -p "$D"

need() { command -v "$1" >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }; }
need zstd zstd; need xz xz-utils; need bzip2 bzip2; need openssl openssl

# TAR, random, metadata, atomic and random_300m.
source bench/inputs-lib.sh

scripts/debian-rootfs.sh "$D/rootfs" --include=systemd,iproute2,openssh-server,python3
metadata "$D/meta"
atomic "$D/debian.tar" "${TAR[@]}" -cf - -C "$D/meta" metadata.yaml templates -C "$PWD/$D" rootfs
atomic "$D/debian.tar.gz" gzip -6 -n -c "$D/debian.tar"
atomic "$D/debian.tar.xz" xz -6 -T1 -c "$D/debian.tar"
atomic "$D/debian.tar.zst" zstd -q -3 -c "$D/debian.tar"
atomic "$D/debian.tar.bz2" bzip2 -9 -c "$D/debian.tar"
# The rootfs alone (lxdimg make's input), as GNU tar writes it from the debootstrap directory.
atomic "$D/rootfs.tar" "${TAR[@]}" -cf - -C "$D/rootfs" .
atomic "$D/rootfs.tar.gz" gzip -6 -n -c "$D/rootfs.tar"
atomic "$D/rootfs.tar.xz" xz -6 -T1 -c "$D/rootfs.tar"
atomic "$D/rootfs.tar.zst" zstd -q -3 -c "$D/rootfs.tar"
atomic "$D/random-1g.bin" random $((1 << 30))

random_300m
if [ ! -s "$D/big-256m.tar.gz" ]; then
  s=$D/work-256m; rm -rf "$s"; metadata "$s"; mkdir -p "$s/rootfs/data"
  random $((256 << 20)) > "$s/rootfs/data/random.bin"
  atomic "$D/big-256m.tar.gz" sh -c '"$@" | gzip -1 -n' _ "${TAR[@]}" -cf - -C "$s" metadata.yaml templates rootfs
  rm -rf "$s"
fi
if [ ! -s "$D/big-4g.tar.zst" ]; then
  s=$D/work-4g; rm -rf "$s"; metadata "$s"; mkdir -p "$s/rootfs"
  truncate -s 4G "$s/rootfs/zeros"
  atomic "$D/big-4g.tar.zst" sh -c '"$@" | zstd -q -1 -T2' _ "${TAR[@]}" -cf - -C "$s" metadata.yaml rootfs
  rm -rf "$s"
fi

if [ "${QUIET:-}" != 1 ]; then
  echo "bench inputs ($D):" >&2
  for f in rootfs.tar rootfs.tar.gz rootfs.tar.xz rootfs.tar.zst debian.tar debian.tar.gz debian.tar.xz debian.tar.zst debian.tar.bz2 random-1g.bin random-300M.tar.xz big-256m.tar.gz big-4g.tar.zst; do
    [ -f "$D/$f" ] || continue
    sum=$(cat "$D/$f.sha256" 2>/dev/null || true)
    if [ -z "$sum" ] || [ "$D/$f" -nt "$D/$f.sha256" ]; then
      sum=$(sha256sum "$D/$f" | cut -c1-16); echo "$sum" > "$D/$f.sha256"
    fi
    printf '  %-20s %12d bytes  sha256 %s…\n' "$f" "$(stat -c %s "$D/$f")" "$sum" >&2
  done
fi

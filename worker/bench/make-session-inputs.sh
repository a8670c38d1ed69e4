#!/usr/bin/env bash
# Inputs of the upload-session benchmark (make bench-worker), made only when missing, with the
# recipe and fixed key of bench/make-inputs.sh (same bytes on every machine):
#   bench/data/random-300M.tar.xz        unified, 300 MB of pseudo-random rootfs data, one xz block
#                                        (the very file bench/make-inputs.sh makes)
#   bench/data/split-1g-meta.tar.xz      a split container image of ~1 GB: metadata tarball
#   bench/data/split-1g-rootfs.squashfs  + a squashfs rootfs holding 1000 MB of pseudo-random data
#                                        (data blocks stored uncompressed, -noD: random data would
#                                        not compress anyway, and the build stays quick)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=bench/data
mkdir -p "$D"
# TAR, random, metadata, atomic and random_300m: the recipes of bench/make-inputs.sh.
source bench/inputs-lib.sh
random_300m
if [ ! -s "$D/split-1g-rootfs.squashfs" ]; then
  s=$D/work-split-1g; rm -rf "$s"; metadata "$s"; mkdir -p "$s/rootfs/etc" "$s/rootfs/data"
  echo bench > "$s/rootfs/etc/hostname"
  random 1000000000 > "$s/rootfs/data/random.bin"
  "${TAR[@]}" -cJf "$D/split-1g-meta.tar.xz" -C "$s" metadata.yaml templates
  mksquashfs "$s/rootfs" "$D/split-1g-rootfs.squashfs.tmp" -noappend -quiet -all-root -noD -mkfs-time 1704067200 >/dev/null
  mv "$D/split-1g-rootfs.squashfs.tmp" "$D/split-1g-rootfs.squashfs"
  rm -rf "$s"
fi

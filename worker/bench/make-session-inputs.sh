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
TAR=(tar --sort=name --mtime=@1704067200 --owner=0 --group=0 --numeric-owner --format=gnu)
random() { { openssl enc -aes-128-ctr -nosalt -K 6c7864696d672d62656e63682d6b6579 -iv 0 -in /dev/zero 2>/dev/null || true; } | head -c "$1"; }
metadata() {
  mkdir -p "$1/templates"
  cat > "$1/metadata.yaml" <<YAML
architecture: x86_64
creation_date: 1704067200
properties:
  description: Debian bookworm amd64 (bench)
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
YAML
  echo '{{ instance.name }}' > "$1/templates/hostname.tpl"
}
if [ ! -s "$D/random-300M.tar.xz" ]; then
  s=$D/work-300m; rm -rf "$s"; metadata "$s"; mkdir -p "$s/rootfs"
  random 300000000 > "$s/rootfs/random.bin"
  "${TAR[@]}" -cf - -C "$s" metadata.yaml templates rootfs | xz -T1 --lzma2=preset=0,dict=8MiB > "$D/random-300M.tar.xz.tmp"
  mv "$D/random-300M.tar.xz.tmp" "$D/random-300M.tar.xz"
  rm -rf "$s"
fi
if [ ! -s "$D/split-1g-rootfs.squashfs" ]; then
  s=$D/work-split-1g; rm -rf "$s"; metadata "$s"; mkdir -p "$s/rootfs/etc" "$s/rootfs/data"
  echo bench > "$s/rootfs/etc/hostname"
  random 1000000000 > "$s/rootfs/data/random.bin"
  "${TAR[@]}" -cJf "$D/split-1g-meta.tar.xz" -C "$s" metadata.yaml templates
  mksquashfs "$s/rootfs" "$D/split-1g-rootfs.squashfs.tmp" -noappend -quiet -all-root -noD -mkfs-time 1704067200 >/dev/null
  mv "$D/split-1g-rootfs.squashfs.tmp" "$D/split-1g-rootfs.squashfs"
  rm -rf "$s"
fi

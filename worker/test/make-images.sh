#!/usr/bin/env bash
# Makes the test images for the worker tests in DIR (default worker/test/out/images).
# Nothing binary is committed; every file is built here with tar/xz/gzip/mksquashfs/qemu-img.
#
#   unified-amd64.tar.xz      container, amd64 (x86_64), templates, os-release   (accepted)
#   unified-amd64-b.tar.gz    another x86_64 container (for the concurrent-duplicate test)
#   unified-arm64.tar.gz      container, arm64 (aarch64)                          (accepted)
#   unified-i386.tar.gz       container, i386 (i686)                              (accepted)
#   split-meta.tar.xz + split-rootfs.squashfs   split container, x86_64          (accepted)
#   vm-meta.tar.xz + vm-rootfs.img              split VM (qcow2), x86_64         (accepted)
#   truncated.tar.gz          cut short: imported by LXD, but launch would fail  (accepted, warning)
#   not-an-image.txt          text                          -> Unsupported compression
#   no-date.tar.xz            metadata.yaml without creation_date -> Missing creation date
#   large-24m.tar.gz          x86_64 container with 24 MiB of incompressible rootfs data: three
#                             R2 parts (aborted-upload and concurrency tests, attack.test.js)
#   bomb-4g.tar.zst           x86_64 container whose rootfs holds one 4 GiB file of zeros: about
#                             130 KB of zstd that decodes to 4 GiB (decompression bomb, issue 9)
#   big.tar.gz                BIG_MB MiB of incompressible rootfs data (only if BIG_MB is set)
set -euo pipefail
dir=${1:-$(dirname "$0")/out/images}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TAR=(tar --owner=0 --group=0 --numeric-owner --mtime=@1704067200 --sort=name)

# meta DIR ARCH DESCRIPTION [no-date]
meta() {
  local d=$1 arch=$2 desc=$3
  mkdir -p "$d/templates"
  {
    echo "architecture: $arch"
    [ "${4:-}" = no-date ] || echo "creation_date: 1704067200"
    echo "properties:"
    echo "  description: $desc"
    echo "  os: testos"
    echo "  release: one"
    echo "  variant: default"
    echo "templates:"
    echo "  /etc/hostname:"
    echo "    when: [create, copy]"
    echo "    template: hostname.tpl"
  } > "$d/metadata.yaml"
  echo '{{ instance.name }}' > "$d/templates/hostname.tpl"
}

# rootfs DIR SEED
rootfs() {
  local d=$1/rootfs
  mkdir -p "$d/etc" "$d/usr/lib" "$d/bin"
  printf 'ID=testos\nVERSION_ID="1"\nNAME="Test OS"\nPRETTY_NAME="Test OS %s"\n' "$2" > "$d/usr/lib/os-release"
  ln -sf ../usr/lib/os-release "$d/etc/os-release"
  echo "$2" > "$d/etc/hostname"
  head -c 20000 /dev/urandom > "$d/bin/blob"
}

unified() { # NAME ARCH COMPRESSOR SEED
  local s=$work/$1
  meta "$s" "$2" "Test $2 $4"
  rootfs "$s" "$4"
  "${TAR[@]}" -C "$s" -cf - metadata.yaml templates rootfs | $3 > "$dir/$1"
}

[ -s "$dir/unified-amd64.tar.xz" ] || unified unified-amd64.tar.xz amd64 "xz -T1 -c" a
# loong64: an alias Debian's Incus 6.0.4 knows and Debian's LXD 5.0.2 does not (VERDICT_TARGET test).
[ -s "$dir/unified-loong64.tar.gz" ] || unified unified-loong64.tar.gz loong64 "gzip -n -c" l
[ -s "$dir/unified-amd64-b.tar.gz" ] || unified unified-amd64-b.tar.gz x86_64 "gzip -c" b
[ -s "$dir/unified-arm64.tar.gz" ] || unified unified-arm64.tar.gz arm64 "gzip -c" c
[ -s "$dir/unified-i386.tar.gz" ] || unified unified-i386.tar.gz i386 "gzip -c" d

if [ ! -s "$dir/split-rootfs.squashfs" ]; then
  s=$work/split
  meta "$s" x86_64 "Test split"
  "${TAR[@]}" -C "$s" -cJf "$dir/split-meta.tar.xz" metadata.yaml templates
  rootfs "$s" split
  mksquashfs "$s/rootfs" "$dir/split-rootfs.squashfs" -noappend -quiet -all-root -mkfs-time 1704067200 >/dev/null
fi

if [ ! -s "$dir/vm-rootfs.img" ]; then
  s=$work/vm
  meta "$s" x86_64 "Test VM"
  "${TAR[@]}" -C "$s" -cJf "$dir/vm-meta.tar.xz" metadata.yaml templates
  qemu-img create -q -f qcow2 "$dir/vm-rootfs.img" 64M
fi

# LXD imports it (its walk stops after metadata.yaml and rootfs/), but unpacking fails.
[ -s "$dir/truncated.tar.gz" ] || head -c 15000 "$dir/unified-amd64-b.tar.gz" > "$dir/truncated.tar.gz"

[ -s "$dir/not-an-image.txt" ] || echo "this is not an LXD image" > "$dir/not-an-image.txt"

if [ ! -s "$dir/no-date.tar.xz" ]; then
  s=$work/nodate
  meta "$s" x86_64 "No date" no-date
  rootfs "$s" nodate
  "${TAR[@]}" -C "$s" -cJf "$dir/no-date.tar.xz" metadata.yaml templates rootfs
fi

if [ ! -s "$dir/large-24m.tar.gz" ]; then
  s=$work/large
  meta "$s" x86_64 "Large"
  rootfs "$s" large
  head -c $((24 << 20)) /dev/urandom > "$s/rootfs/bin/large"
  "${TAR[@]}" -C "$s" -cf - metadata.yaml templates rootfs | gzip -1 -c > "$dir/large-24m.tar.gz"
fi

if [ ! -s "$dir/bomb-4g.tar.zst" ]; then
  s=$work/bomb
  meta "$s" x86_64 "Bomb"
  rootfs "$s" bomb
  truncate -s 4G "$s/rootfs/bin/zero" # sparse on disk; tar reads 4 GiB of zeros
  "${TAR[@]}" -C "$s" -cf - metadata.yaml templates rootfs | zstd -q -T1 -3 -c > "$dir/bomb-4g.tar.zst.part"
  mv "$dir/bomb-4g.tar.zst.part" "$dir/bomb-4g.tar.zst"
  rm -f "$s/rootfs/bin/zero"
fi

if [ -n "${BIG_MB:-}" ] && [ ! -s "$dir/big-$BIG_MB.tar.gz" ]; then
  s=$work/big
  meta "$s" x86_64 "Big"
  mkdir -p "$s/rootfs/data"
  # Incompressible data, so the file is about BIG_MB MiB and gzip decoding is not the only cost.
  for i in $(seq 1 $(( (BIG_MB + 63) / 64 ))); do head -c $((64 << 20)) /dev/urandom > "$s/rootfs/data/$i.bin"; done
  "${TAR[@]}" -C "$s" -cf - metadata.yaml templates rootfs | gzip -1 -c > "$dir/big-$BIG_MB.tar.gz"
fi
echo "$dir"

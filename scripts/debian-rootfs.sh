#!/usr/bin/env bash
# The one recipe for a real Debian rootfs (bench/make-inputs.sh, tests/make/real.sh):
#   scripts/debian-rootfs.sh DIR [debootstrap options...]
# debootstraps Debian bookworm (minbase plus the options) into DIR from this machine's own apt
# mirror (the URIs: line of /etc/apt/sources.list.d/debian.sources; no host name is written here).
# Idempotent: an existing DIR/etc/os-release is kept; an interrupted run leaves only DIR.tmp.
set -euo pipefail
dir=$1; shift
[ -f "$dir/etc/os-release" ] && exit 0
command -v debootstrap >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "debian-rootfs: no Debian mirror in the apt sources" >&2; exit 1; }
echo "debian-rootfs: debootstrapping Debian bookworm into $dir (a few minutes)" >&2
rm -rf "$dir.tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase "$@" bookworm "$dir.tmp" "$mirror" >"$dir.debootstrap.log" 2>&1 \
  || { echo "debian-rootfs: debootstrap failed, see $dir.debootstrap.log" >&2; exit 1; }
rm -rf "$dir"
mv "$dir.tmp" "$dir"

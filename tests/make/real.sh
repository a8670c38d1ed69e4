#!/usr/bin/env bash
# `lxdimg make` and `lxdimg repair` against the real LXD 5.0.2 and Incus 6.0.4 (issue 12), as root:
#   1. a Debian bookworm minbase rootfs (scripts/debian-rootfs.sh, cached in target/make-real),
#      packed as tar, tar.gz, tar.xz, tar.zst, a squashfs, and a tarball laid out like
#      `docker export` (no ./, no /dev nodes, .dockerenv);
#   2. `lxdimg make` on each; the architecture it reads from the ELF header of /bin/sh equals
#      `dpkg --print-architecture` in LXD's name; both daemons import the pair with the fingerprint
#      lxdimg printed and `init` an instance from it;
#   3. (repair) each repairable class: a broken split image the daemons refuse (or whose init or
#      first start fails), `lxdimg repair --yes`, the repaired pair imported and created by both,
#      and `lxdimg inspect --strict` of it clean.
# Everything created is named h-make-…; every lxc/incus call has a timeout.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
W=$ROOT/target/make-real
LXDIMG=${LXDIMG:-$ROOT/target/release/lxdimg}
P=h-make
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ "$(id -u)" -eq 0 ] || { echo "make-real: must run as root"; exit 1; }
[ -x "$LXDIMG" ] || { echo "make-real: $LXDIMG missing (make build)"; exit 1; }
command -v mksquashfs >/dev/null || { echo "make-real: mksquashfs missing"; exit 1; }

cleanup() {
  for c in lxc incus; do
    for i in $(timeout 60 $c list --format csv -c n 2>/dev/null | grep "^$P-" || true); do
      timeout 120 $c delete -f "$i" >/dev/null 2>&1 || true
    done
    for a in $(timeout 60 $c image alias list --format csv 2>/dev/null | cut -d, -f1 | grep "^$P-" || true); do
      timeout 120 $c image delete "$a" >/dev/null 2>&1 || true
    done
  done
}
cleanup
trap cleanup EXIT

# --- 1. the rootfs in every layout ---------------------------------------------------------------
scripts/debian-rootfs.sh "$W/rootfs" || exit 1
TAR=(tar --sort=name --mtime=@1704067200 --owner=0 --group=0 --numeric-owner --format=gnu)
atomic() { # OUT CMD...: CMD > OUT.tmp, then rename (cached between runs)
  local out=$1; shift
  [ -s "$out" ] && return 0
  "$@" > "$out.tmp" && mv "$out.tmp" "$out"
}
mkdir -p "$W/in"
atomic "$W/in/debian.tar" "${TAR[@]}" -cf - -C "$W/rootfs" .
atomic "$W/in/debian.tar.gz" gzip -1 -n -c "$W/in/debian.tar"
atomic "$W/in/debian.tar.xz" xz -1 -T2 -c "$W/in/debian.tar"
atomic "$W/in/debian.tar.zst" zstd -q -3 -c "$W/in/debian.tar"
if [ ! -s "$W/in/debian.squashfs" ]; then
  mksquashfs "$W/rootfs" "$W/in/debian.squashfs.tmp" -noappend -quiet -no-progress -all-root >/dev/null \
    && mv "$W/in/debian.squashfs.tmp" "$W/in/debian.squashfs"
fi
if [ ! -s "$W/in/docker.tar" ]; then
  # `docker export`: member names without ./, .dockerenv first, /dev empty.
  : > "$W/dockerenv"
  # shellcheck disable=SC2046
  "${TAR[@]}" -cf "$W/in/docker.tar.tmp" --transform 's,^dockerenv$,.dockerenv,' -C "$W" dockerenv \
    -C "$W/rootfs" --exclude='dev/*' $(cd "$W/rootfs" && ls -A) && mv "$W/in/docker.tar.tmp" "$W/in/docker.tar"
fi

# LXD's name for this machine's Debian architecture.
lxd_arch() {
  case $1 in
    amd64) echo x86_64 ;; i386) echo i686 ;; arm64) echo aarch64 ;; armhf) echo armv7l ;;
    armel) echo armv6l ;; ppc64el) echo ppc64le ;; ppc64) echo ppc64 ;; powerpc) echo ppc ;;
    s390x) echo s390x ;; riscv64) echo riscv64 ;; mips64el) echo mips64 ;; mipsel) echo mips ;;
    loong64) echo loongarch64 ;; *) echo "unknown-$1" ;;
  esac
}
want_arch=$(lxd_arch "$(dpkg --print-architecture)")

# import_create CLIENT META ROOTFS NAME FINGERPRINT: the daemon imports with that fingerprint and
# creates an instance.
import_create() {
  local c=$1 meta=$2 rootfs=$3 name=$4 fp=$5 out got
  out=$(timeout 600 $c image import "$meta" ${rootfs:+"$rootfs"} --alias "$P-$name" 2>&1)
  got=$(sed -n 's/.*fingerprint: \([0-9a-f]\{64\}\).*/\1/p' <<<"$out")
  if [ "$got" != "$fp" ]; then
    echo "  $c import: $out (lxdimg: $fp)"
    return 1
  fi
  out=$(timeout 600 $c init "$P-$name" "$P-$name" 2>&1) || { echo "  $c init: $out"; return 1; }
  timeout 120 $c delete -f "$P-$name" >/dev/null 2>&1
  timeout 120 $c image delete "$P-$name" >/dev/null 2>&1
  return 0
}
# refused CLIENT META ROOTFS NAME: the import fails, or init does (prints what the daemon said).
refused() {
  local c=$1 meta=$2 rootfs=$3 name=$4 out
  if ! out=$(timeout 600 $c image import "$meta" ${rootfs:+"$rootfs"} --alias "$P-$name" 2>&1); then
    echo "  $c import refuses: $(tail -1 <<<"$out")"
    return 0
  fi
  if ! out=$(timeout 600 $c init "$P-$name" "$P-$name" 2>&1); then
    echo "  $c init fails: $(tail -1 <<<"$out")"
    timeout 120 $c image delete "$P-$name" >/dev/null 2>&1
    return 0
  fi
  timeout 120 $c delete -f "$P-$name" >/dev/null 2>&1
  timeout 120 $c image delete "$P-$name" >/dev/null 2>&1
  echo "  $c imports and creates it"
  return 1
}

# MAKE_REAL_ONLY=repair skips the make part (quicker iterations on the repair classes).
[ "${MAKE_REAL_ONLY:-}" = repair ] && MAKE_FILES=() || MAKE_FILES=(debian.tar debian.tar.gz debian.tar.xz debian.tar.zst debian.squashfs docker.tar)
# --- 2. make -----------------------------------------------------------------------------------
mkdir -p "$W/made"
for f in "${MAKE_FILES[@]}"; do
  args=()
  # A squashfs's files are not read in one streaming pass (its tables come last): say what it is.
  [ "$f" = debian.squashfs ] && args=(--arch "$want_arch" --os debian --release bookworm)
  out=$("$LXDIMG" make "$W/in/$f" --out "$W/made" "${args[@]}" 2>&1)
  rc=$?
  fp=$(sed -n 's/^Fingerprint: //p' <<<"$out")
  meta=$(sed -n 's/^Metadata: \(.*\) ([^)]*)$/\1/p' <<<"$out")
  check "make $f (exit $rc, fingerprint ${fp:0:12})" test "$rc" = 0 -a -n "$fp" -a -s "$meta"
  [ "$rc" = 0 ] || { echo "$out"; continue; }
  if [ "$f" != debian.squashfs ]; then
    got=$(sed -n 's/^Architecture: \([^ ]*\) (ELF header of.*/\1/p' <<<"$out")
    check "make $f: architecture from ELF ($got) = dpkg --print-architecture ($want_arch)" test "$got" = "$want_arch"
  fi
  check "make $f: lxdimg fingerprint = sha256(meta ‖ rootfs)" \
    test "$(cat "$meta" "$W/in/$f" | sha256sum | cut -c1-64)" = "$fp"
  name=${f//./-}
  check "make $f: LXD 5.0.2 imports with that fingerprint and inits" import_create lxc "$meta" "$W/in/$f" "$name" "$fp"
  check "make $f: Incus 6.0.4 imports with that fingerprint and inits" import_create incus "$meta" "$W/in/$f" "$name" "$fp"
done

# --- 3. repair ---------------------------------------------------------------------------------
if [ -f tests/make/repair-classes.sh ]; then
  # shellcheck source=tests/make/repair-classes.sh
  source tests/make/repair-classes.sh
fi

echo "make-real: $pass passed, $fail failed"
[ "$fail" = 0 ]

# Shared by bench/make-inputs.sh and worker/bench/make-session-inputs.sh (sourced, with D set):
# the one recipe of each deterministic bench input both scripts make.

# Deterministic tarballs: same bytes from the same tree, whoever builds them.
TAR=(tar --sort=name --mtime=@1704067200 --owner=0 --group=0 --numeric-owner --format=gnu)
# Pseudo-random bytes from a fixed key: `random N` writes N bytes.
# (openssl stops on SIGPIPE when head has enough: that is the normal end, not a failure.)
random() { { openssl enc -aes-128-ctr -nosalt -K 6c7864696d672d62656e63682d6b6579 -iv 0 -in /dev/zero 2>/dev/null || true; } | head -c "$1"; }
metadata() { # DIR: metadata.yaml and templates/ of the bench images
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
atomic() { # OUT CMD...: runs CMD > OUT.tmp, then renames (an interrupted run leaves nothing half-made)
  local out=$1; shift
  [ -s "$out" ] && return 0
  "$@" > "$out.tmp" && mv "$out.tmp" "$out"
}

random_300m() { # bench/data/random-300M.tar.xz: 300 MB of pseudo-random rootfs data, one xz block
  if [ ! -s "$D/random-300M.tar.xz" ]; then
    s=$D/work-300m; rm -rf "$s"; metadata "$s"; mkdir -p "$s/rootfs"
    random 300000000 > "$s/rootfs/random.bin"
    # xz -T1 writes one block; preset 0 with xz -6's 8 MiB window keeps the build quick.
    atomic "$D/random-300M.tar.xz" sh -c '"$@" | xz -T1 --lzma2=preset=0,dict=8MiB' _ "${TAR[@]}" -cf - -C "$s" metadata.yaml templates rootfs
    rm -rf "$s"
  fi
}

# Sourced by the real-client tests: realistic, deterministic image parts (same bytes on every run,
# so fingerprints are stable across runs; LXD caches stream indexes).
#   make_rootfs DIR         a small rootfs: the host's dash/ls/cat with their libraries,
#                           os-release, passwd, group, hostname, 300 kB of deterministic filler
#   make_meta DIR ARCH [OS] metadata.yaml (+ templates/hostname.tpl) with the properties both
#                           LXD and incus-simplestreams need (os, release, variant, architecture,
#                           description)
#   TAR                     tar with fixed owners, mtime and order
TAR=(tar --owner=0 --group=0 --numeric-owner --mtime=@1704067200 --sort=name)
make_rootfs() { # DIR
  local r=$1 lib
  mkdir -p "$r"/{bin,etc,usr/lib,lib64,lib/x86_64-linux-gnu,root,tmp,var/log,dev,proc,sys}
  cp /bin/dash /bin/ls /bin/cat "$r/bin/"
  ln -sf dash "$r/bin/sh"
  for lib in $(ldd /bin/dash /bin/ls /bin/cat | awk '/=> \//{print $3} /^\s*\/lib64/{print $1}' | sort -u); do
    mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
  done
  printf 'ID=lxdimgtest\nNAME="lxdimg test"\nVERSION_ID="1"\nPRETTY_NAME="lxdimg test 1"\n' > "$r/usr/lib/os-release"
  ln -sf ../usr/lib/os-release "$r/etc/os-release"
  echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
  echo "root:x:0:" > "$r/etc/group"
  echo lxdimg > "$r/etc/hostname"
  head -c 300000 /dev/zero | openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 0 2>/dev/null > "$r/usr/lib/filler.bin"
}
make_meta() { # DIR ARCH [OS] [VARIANT]
  mkdir -p "$1/templates"
  cat > "$1/metadata.yaml" <<YAML
architecture: $2
creation_date: 1704067200
properties:
  architecture: $2
  description: lxdimg test image ($2)
  os: ${3:-lxdimgtest}
  release: one
  variant: ${4:-default}
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
YAML
  echo '{{ instance.name }}' > "$1/templates/hostname.tpl"
}

#!/usr/bin/env bash
# Makes a small unified demo image (metadata.yaml, templates/, rootfs/) in DIR/demo.tar.xz.
set -euo pipefail
dir=${1:-target/demo}
rm -rf "$dir/src" && mkdir -p "$dir/src/rootfs/etc" "$dir/src/rootfs/usr/lib" "$dir/src/templates"
cat > "$dir/src/metadata.yaml" <<YAML
architecture: amd64
creation_date: $(date -d 2024-01-01 +%s)
properties:
  description: Demo bookworm amd64
  os: debian
  release: bookworm
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy, rename]
    template: hosts.tpl
YAML
echo '{{ instance.name }}' > "$dir/src/templates/hostname.tpl"
printf 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nNAME="Debian GNU/Linux"\n' > "$dir/src/rootfs/usr/lib/os-release"
ln -sf ../usr/lib/os-release "$dir/src/rootfs/etc/os-release"
tar --owner=0 --group=0 --numeric-owner -C "$dir/src" -cJf "$dir/demo.tar.xz" metadata.yaml templates rootfs
echo "demo image: $dir/demo.tar.xz (templates/hosts.tpl is missing on purpose)"

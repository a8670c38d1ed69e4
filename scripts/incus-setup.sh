#!/usr/bin/env bash
# Prepare a local Incus 6.0.4 daemon beside LXD for tests/lxd_differential.py --daemon incus and
# tests/lxd_creatable.py --daemon incus (facts §8.1). Idempotent, as root:
#   1. install `incus` and `incus-extra` from Debian's bookworm-backports suite, on the same mirror
#      the machine's apt sources already name (no mirror host is written here);
#   2. start `incusd --group root` in the background if it is not answering;
#   3. wait until it is ready;
#   4. preseed a `dir` storage pool `default` and a root disk in the default profile (once).
# Installing Incus pulls in squashfs-tools-ng (sqfs2tar), which changes one LXD 5.0.2 verdict on
# the same host: the differential tests know (lxd-5.0 models a plain Debian host).
set -euo pipefail

INCUS_LOG="${INCUS_LOG:-/var/log/incus-differential-daemon.log}"
die() { echo "incus-setup: ERROR: $*" >&2; exit 1; }
log() { echo "incus-setup: $*"; }
[ "$(id -u)" -eq 0 ] || die "must be run as root"

# 1. install
if ! command -v incus >/dev/null 2>&1 || [ ! -x /usr/libexec/incus/incusd ]; then
    src=/etc/apt/sources.list.d/lxdimg-backports.sources
    if [ ! -f "$src" ]; then
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
        [ -n "$uri" ] || die "no Debian mirror in the apt sources"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$src"
    fi
    log "installing incus and incus-extra from bookworm-backports (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null || die "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends -t bookworm-backports incus incus-extra >/dev/null \
        || die "apt-get install incus incus-extra failed"
fi

# 2. start
if timeout 5 incus admin waitready --timeout 1 >/dev/null 2>&1; then
    log "daemon already running"
else
    log "starting 'incusd --group root' in the background (log: $INCUS_LOG)"
    mkdir -p "$(dirname "$INCUS_LOG")"
    setsid nohup /usr/libexec/incus/incusd --group root >>"$INCUS_LOG" 2>&1 </dev/null &
fi

# 3. wait
if ! timeout 90 incus admin waitready --timeout 60; then
    [ -f "$INCUS_LOG" ] && tail -n 20 "$INCUS_LOG" >&2
    die "Incus did not become ready within 60s"
fi
log "daemon ready ($(timeout 10 incus version 2>/dev/null | tail -1 || echo '?'))"

# 4. preseed
if timeout 30 incus storage show default >/dev/null 2>&1; then
    log "storage pool 'default' already exists; not preseeding"
else
    log "preseeding: dir storage pool 'default' + root disk in the default profile"
    timeout 60 incus admin init --preseed < "$(dirname "$0")/preseed.yaml" || die "incus admin init --preseed failed"
fi

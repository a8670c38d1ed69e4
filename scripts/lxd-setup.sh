#!/usr/bin/env bash
# Prepare a local LXD daemon for tests/lxd_differential.py.
#
# Idempotent; intended for a fresh Debian 12 machine, run as root:
#   1. install the `lxd` package if the `lxd` binary is missing;
#   2. start the daemon if it is not answering (systemd if available, else a
#      background `lxd --group root`, logging to $LXD_LOG);
#   3. wait until it is ready;
#   4. preseed a `dir` storage pool named `default` plus a root disk in the
#      default profile -- only if the `default` pool does not exist yet.
#      No network is created (`lxd init --auto` fails on the bridge in
#      containers/sandboxes, and the tests do not need one).
set -euo pipefail

LXD_LOG="${LXD_LOG:-/var/log/lxd-differential-daemon.log}"

die() { echo "lxd-setup: ERROR: $*" >&2; exit 1; }
log() { echo "lxd-setup: $*"; }

[ "$(id -u)" -eq 0 ] || die "must be run as root"

# 1. install
if ! command -v lxd >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "lxd is missing and apt-get is not available"
    log "installing lxd (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update || die "apt-get update failed"
    apt-get install -y lxd || die "apt-get install -y lxd failed"
    command -v lxd >/dev/null 2>&1 || die "lxd still not found after installation"
fi
command -v lxc >/dev/null 2>&1 || die "the lxc client is missing (package lxd-client)"

# 2. start
if lxd waitready --timeout 1 >/dev/null 2>&1; then
    log "daemon already running"
else
    started=0
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if systemctl start lxd.service >/dev/null 2>&1 || systemctl start lxd.socket >/dev/null 2>&1; then
            log "started lxd via systemd"
            started=1
        fi
    fi
    if [ "$started" -eq 0 ]; then
        log "starting 'lxd --group root' in the background (log: $LXD_LOG)"
        mkdir -p "$(dirname "$LXD_LOG")"
        setsid nohup lxd --group root >>"$LXD_LOG" 2>&1 </dev/null &
    fi
fi

# 3. wait
if ! lxd waitready --timeout 60; then
    [ -f "$LXD_LOG" ] && tail -n 20 "$LXD_LOG" >&2
    die "LXD did not become ready within 60s"
fi
log "daemon ready ($(lxd --version 2>/dev/null || echo '?'))"

# 4. preseed
if timeout 30 lxc storage show default >/dev/null 2>&1; then
    log "storage pool 'default' already exists; not preseeding"
else
    log "preseeding: dir storage pool 'default' + root disk in the default profile"
    if ! lxd init --preseed < "$(dirname "$0")/preseed.yaml"
    then
        die "lxd init --preseed failed"
    fi
    timeout 30 lxc storage show default >/dev/null 2>&1 || die "pool 'default' still missing after preseed"
fi

log "OK"

# Sourced by the tests that put real LXD/Incus clients in front of an HTTPS server of ours
# (worker/test/lxd-real.sh, tests/stream/real.sh). As root:
#   - a local CA and a localhost certificate in $TLS (default /var/lib/lxdimg-test/tls, outside the
#     work tree so that a fresh clone reuses them);
#   - the CA installed into the system store (/usr/local/share/ca-certificates);
#   - LXD, and Incus if it runs, restarted when they started before the CA was installed (their Go
#     TLS stacks read the system pool once).
# Needs: openssl, scripts/lxd-setup.sh (and scripts/incus-setup.sh for Incus). Defines $TLS.
TLS=${LXDIMG_TEST_TLS:-/var/lib/lxdimg-test/tls}
CA_DEST=/usr/local/share/ca-certificates/lxdimg-test-ca.crt
_ca_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$TLS" && chmod 700 "$TLS"
if [ ! -s "$TLS/ca.crt" ] || ! openssl x509 -checkend 86400 -noout -in "$TLS/ca.crt" >/dev/null 2>&1; then
  echo "test-ca: creating a local CA"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lxdimg test CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f "$TLS/server.crt"
fi
if [ ! -s "$TLS/server.crt" ] || ! openssl x509 -checkend 86400 -noout -in "$TLS/server.crt" >/dev/null 2>&1; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$TLS/server.ext"
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial \
    -days 825 -extfile "$TLS/server.ext" -out "$TLS/server.crt" 2>/dev/null
fi
if ! cmp -s "$TLS/ca.crt" "$CA_DEST"; then
  echo "test-ca: installing the CA into the system store"
  cp "$TLS/ca.crt" "$CA_DEST"
  update-ca-certificates >/dev/null 2>&1
fi
# A daemon must have started after the CA was installed.
_started_before_ca() { local pid; pid=$(pgrep -xo "$1" || true); [ -n "$pid" ] && [ "$(stat -c %Y /proc/"$pid")" -lt "$(stat -c %Y "$CA_DEST")" ]; }
if _started_before_ca lxd || ! timeout 5 lxc info >/dev/null 2>&1; then
  echo "test-ca: (re)starting LXD so that it trusts the CA"
  timeout 60 lxd shutdown >/dev/null 2>&1 || true
  bash "$_ca_root/scripts/lxd-setup.sh" >/dev/null
fi
timeout 60 lxd waitready
if [ "${TEST_CA_INCUS:-0}" = 1 ]; then
  if _started_before_ca incusd || ! timeout 5 incus info >/dev/null 2>&1; then
    echo "test-ca: (re)starting Incus so that it trusts the CA"
    timeout 60 incus admin shutdown >/dev/null 2>&1 || true
    bash "$_ca_root/scripts/incus-setup.sh" >/dev/null
  fi
  timeout 60 incus admin waitready --timeout 60
fi

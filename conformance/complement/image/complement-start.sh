#!/bin/sh
# Entry point of the Complement image: matrixhs's client API on 8008 (plain HTTP), its
# federation listener on 8448 (TLS, certificate signed by Complement's CA).
set -e
name="${SERVER_NAME:-localhost}"

gw="$(ip route | awk '/^default/ {print $3; exit}')"
# podman (before 4.7) writes Complement's `--add-host NAME:host-gateway` literally.
if grep -q 'host-gateway' /etc/hosts 2>/dev/null; then
  sed "s/host-gateway/$gw/" /etc/hosts > /tmp/hosts && cat /tmp/hosts > /etc/hosts
fi

export MATRIXHS_SERVER_NAME="$name"
export MATRIXHS_BIND=0.0.0.0:8008
export MATRIXHS_REGISTRATION=open
export MATRIXHS_GUEST_ACCESS="${MATRIXHS_GUEST_ACCESS:-true}"
export MATRIXHS_RATELIMIT_ENABLED=false
# Complement's client.SharedSecret, for /_synapse/admin/v1/register
export MATRIXHS_REGISTRATION_SHARED_SECRET="${MATRIXHS_REGISTRATION_SHARED_SECRET:-complement}"
# Complement's tests are written for room version 10 (creator in the power levels,
# content.creator); the server's own default is 12.
export MATRIXHS_DEFAULT_ROOM_VERSION="${MATRIXHS_DEFAULT_ROOM_VERSION:-10}"
# Complement's own web server (URL preview tests) runs on the host: the addresses it is
# reached at (host.containers.internal, the gateway) are exceptions to the outbound blocklist.
host_ip="$(awk '{for (i = 2; i <= NF; i++) if ($i == "host.containers.internal") {print $1; exit}}' /etc/hosts)"
allow="$(printf '%s\n' "$host_ip" "$gw" | awk 'NF {printf "%s%s/32", sep, $1; sep=","}')"
export MATRIXHS_OUTBOUND_IP_ALLOWLIST="${MATRIXHS_OUTBOUND_IP_ALLOWLIST:-$allow}"
# Complement's federation servers run there too, with certificates from its CA; the
# other homeservers of a test (hs2, hs3...) are containers on its private network.
export MATRIXHS_FEDERATION_IP_ALLOWLIST="${MATRIXHS_FEDERATION_IP_ALLOWLIST:-$allow,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16}"
# The unauthenticated /_matrix/media/v3 downloads stay open for the tests of them (the
# server's default freezes them, spec v1.11).
export MATRIXHS_MEDIA_LEGACY_FREEZE_MS="${MATRIXHS_MEDIA_LEGACY_FREEZE_MS:--1}"
export MATRIXHS_DATA_DIR="${MATRIXHS_DATA_DIR:-/data}"
export MATRIXHS_PUBLIC_BASEURL="http://$name:8008"
export MATRIXHS_FEDERATION_ADDRESS="$name:8448"
export MATRIXHS_LOG_LEVEL="${MATRIXHS_LOG_LEVEL:-INFO}"
mkdir -p "$MATRIXHS_DATA_DIR"
if [ ! -f "$MATRIXHS_DATA_DIR/homeserver.sqlite3" ]; then
  if [ -f /opt/template/homeserver.sqlite3 ]; then
    cp /opt/template/homeserver.sqlite3 "$MATRIXHS_DATA_DIR/"
  else
    python3 manage.py migrate -v0 --no-input
  fi
fi

# TLS for the federation port, signed by Complement's CA when it is mounted.
tls=/tmp/tls; mkdir -p "$tls"
if [ -f /complement/ca/ca.crt ] && [ -f /complement/ca/ca.key ]; then
  if [ ! -f "$tls/server.crt" ]; then
    printf 'subjectAltName=DNS:%s\n' "$name" > "$tls/ext.cnf"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$tls/server.key" \
      -subj "/CN=$name" -out "$tls/server.csr" 2>/dev/null
    openssl x509 -req -in "$tls/server.csr" -CA /complement/ca/ca.crt \
      -CAkey /complement/ca/ca.key -CAcreateserial -days 365 \
      -extfile "$tls/ext.cnf" -out "$tls/server.crt" 2>/dev/null
  fi
  export MATRIXHS_FEDERATION_BIND=0.0.0.0:8448
  export MATRIXHS_TLS_CERT_FILE="$tls/server.crt" MATRIXHS_TLS_KEY_FILE="$tls/server.key"
  export MATRIXHS_FEDERATION_CA_FILE=/complement/ca/ca.crt
fi

exec python3 manage.py serve

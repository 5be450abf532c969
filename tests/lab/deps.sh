#!/usr/bin/env bash
# Install the Debian packages migready's build, tests and lab need (idempotent).
set -euo pipefail
packages=(libvirt-dev pkg-config debootstrap systemd-container iproute2 openssh-client openssh-server sudo passwd
    python3 netcat-openbsd)  # the last two: the mesh probe engines compared in a unit test
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "deps: installing ${missing[*]}" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

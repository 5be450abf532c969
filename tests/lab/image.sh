#!/usr/bin/env bash
# Build (or reuse) a cached lab host image: a Debian root file system with systemd, sshd,
# libvirt, QEMU and nova-compute, ready to boot under systemd-nspawn.
#
#   tests/lab/image.sh bookworm|trixie      -> prints the image directory
#   tests/lab/image.sh controller           -> the bookworm image plus a Zed control
#                                              plane (MariaDB, RabbitMQ, Keystone,
#                                              Placement, Glance, Neutron server, Nova
#                                              API/conductor/scheduler), unconfigured
#
# Images live under ${MIGREADY_LAB_CACHE:-/var/cache/migready/lab}/<suite>-r<recipe>; a
# finished image carries a .complete stamp and is reused as is. Delete the directory to
# rebuild. Each recipe has its own directory: a lab booted from an older recipe (another
# checkout) keeps its image, which is the lower layer of its running hosts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=${1:?usage: image.sh bookworm|trixie|controller}
cache=${MIGREADY_LAB_CACHE:-/var/cache/migready/lab}
# Bump when the recipe below changes so cached images are rebuilt.
recipe=5
# The controller's own recipe (image_controller); its stamp also names the base recipe.
controller_recipe=1
img=$cache/$suite-r$recipe

if [[ $suite == controller ]]; then
    stamp=$recipe.$controller_recipe
else
    stamp=$recipe
fi
# One build of an image at a time (the controller image builds on bookworm's, and
# tests/run.sh builds both at once); a second caller waits, then reuses it.
mkdir -p "$cache"
exec 9>"$cache/.$suite.lock"
flock 9
if [[ -f $img/.complete ]] && [[ $(cat "$img/.complete") == "$stamp" ]]; then
    echo "$img"
    exit 0
fi

# The mirror this machine's apt already uses (nothing else is reachable here).
mirror=${MIGREADY_LAB_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z $mirror ]]; then
    mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || { echo "image.sh: no Debian mirror found in apt sources; set MIGREADY_LAB_MIRROR" >&2; exit 1; }

if [[ $suite == controller ]]; then
    exec "$here/image-controller.sh" "$img" "$stamp" "$("$0" bookworm)"
fi

mkdir -p "$cache"
tmp=$img.build
rm -rf "$tmp" "$img"
start=$SECONDS
say() { echo "image.sh: $suite: $* ($((SECONDS - start)) s)" >&2; }
# While a long step runs: its log's last line, every 20 s when it changed.
ticker() { # LOG
    local last="" line
    while sleep 20; do
        line=$(grep -a -v '^\s*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-80 || true)
        [[ -n $line && $line != "$last" ]] || continue
        last=$line
        say "  $line"
    done
}
ticking=""
tick() { ticker "$1" & ticking=$!; }
untick() { [[ -z $ticking ]] || kill "$ticking" 2>/dev/null || true; ticking=""; }
trap 'untick; umount -l "$tmp/proc" 2>/dev/null || true' EXIT

say "[1/3] debootstrap from $mirror into $tmp (about 1-3 min; log $img.debootstrap.log)"
tick "$img.debootstrap.log"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,libvirt-daemon-system,libvirt-clients,qemu-system-x86,qemu-utils,iptables,nftables,iproute2,sudo,procps,netcat-openbsd,firewalld \
    "$suite" "$tmp" "$mirror" >"$img.debootstrap.log" 2>&1 \
    || { tail -20 "$img.debootstrap.log" >&2; exit 1; }
untick

# nova-common's postinst needs /proc and a resolvable build hostname.
mount -t proc proc "$tmp/proc"
cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$(hostname)" >"$tmp/etc/hosts"
say "[2/3] installing nova-compute (about 1-2 min; log $img.nova.log)"
tick "$img.nova.log"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    nova-compute nova-compute-kvm >"$img.nova.log" 2>&1 \
    || { tail -20 "$img.nova.log" >&2; exit 1; }
untick
chroot "$tmp" apt-get clean
umount "$tmp/proc"

say "[3/3] lab-only adjustments"
# Lab-only adjustments (never something migready does to a real host):
# cgroup v1 is read-only inside nspawn here, so QEMU must not create cgroups.
echo 'cgroup_controllers = [ ]' >>"$tmp/etc/libvirt/qemu.conf"
# Every boot gets its own machine-id; every host gets its own SSH host keys at `up`.
: >"$tmp/etc/machine-id"
rm -f "$tmp"/etc/ssh/ssh_host_*
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
: >"$tmp/etc/resolv.conf"
# Root logs in with the lab key only.
mkdir -p "$tmp/root/.ssh"; chmod 700 "$tmp/root/.ssh"
# No console getty fighting over a passive console.
ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$tmp/etc/systemd/system/getty@tty1.service"
# firewalld enables itself on install; lab.sh enables it only on hosts whose spec asks
# for it (FIREWALL `firewalld`) and masks it everywhere else.
rm -f "$tmp/etc/systemd/system/multi-user.target.wants/firewalld.service" \
    "$tmp/etc/systemd/system/dbus-org.fedoraproject.FirewallD1.service"
# nftables ships disabled on Debian; only hosts whose spec asks for it (FIREWALL
# `nftables`) get it enabled.
rm -f "$tmp/etc/systemd/system/sysinit.target.wants/nftables.service" \
    "$tmp/etc/systemd/system/multi-user.target.wants/nftables.service"
# The default libvirt network would want dnsmasq and a bridge; the lab does not need it.
rm -f "$tmp/etc/libvirt/qemu/networks/autostart/default.xml"

echo "$recipe" >"$tmp/.complete"
mv "$tmp" "$img"
say "built: $img ($(du -sh "$img" | cut -f1))"
echo "$img"

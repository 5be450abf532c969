#!/usr/bin/env bash
# Build the lab's controller image (called by image.sh controller): a copy of the cached
# bookworm image plus the Zed control plane, installed but not configured. tests/lab/lab.sh
# configures it at `up` (tests/lab/files/controller/setup.sh).
#
#   image-controller.sh IMG STAMP BASE
#
# Progress lines go to stderr ("image.sh: controller: [STEP/5] ..."); the apt log is
# $CACHE/controller.apt.log.
set -euo pipefail

img=${1:?} stamp=${2:?} base=${3:?}
cache=$(dirname "$img")
tmp=$img.build
log=$cache/controller.apt.log
packages=(mariadb-server python3-pymysql rabbitmq-server keystone placement-api glance-api
    neutron-server nova-api nova-conductor nova-scheduler python3-openstackclient crudini)
# What the packages enable; the lab starts them at `up`, after the database syncs
# (otherwise they first start on Debian's default SQLite settings).
units=(keystone placement-api nova-api-metadata glance-api neutron-api neutron-rpc-server neutron-server
    nova-api nova-conductor nova-scheduler nova-compute)
# The bookworm image's compute side, which a controller does not run.
compute_units=(libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket
    virtlogd.socket virtlockd.socket libvirt-guests.service)

start=$SECONDS
say() { echo "image.sh: controller: $* ($((SECONDS - start)) s)" >&2; }
undo() {
    [[ -n ${printer:-} ]] && kill "$printer" 2>/dev/null || true
    umount -l "$tmp/proc" 2>/dev/null || true
}
trap undo EXIT
trap 'exit 143' TERM INT

rm -rf "$tmp" "$img"
say "[1/5] copying the bookworm image ($(du -sh "$base" | cut -f1)) from $base"
cp -a --reflink=auto "$base" "$tmp"
rm -f "$tmp/.complete"

say "[2/5] preparing the chroot (/proc, build hostname, policy-rc.d)"
mount -t proc proc "$tmp/proc"
cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
# nova-common's postinst needs the build machine's hostname to resolve.
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$(hostname)" >"$tmp/etc/hosts"
# No service starts inside the chroot (in the build machine's network).
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"

say "[3/5] apt-get update (the image's sources: $(grep -h '^deb ' "$tmp/etc/apt/sources.list" | head -1))"
chroot "$tmp" apt-get update -q >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }

say "[4/5] installing ${#packages[@]} packages and their dependencies (no recommends)"
status=$cache/controller.apt.status
: >"$status"
# apt's machine-readable progress (dlstatus/pmstatus lines), shown every 10 s.
(
    last=""
    while sleep 10; do
        line=$(tail -n 1 "$status" 2>/dev/null || true)
        [[ -n $line && $line != "$last" ]] || continue
        last=$line
        IFS=: read -r kind _ pct what <<<"$line"
        case $kind in
        dlstatus) echo "image.sh: controller:   download ${pct%%.*}%: $what ($((SECONDS - start)) s)" >&2 ;;
        pmstatus) echo "image.sh: controller:   install ${pct%%.*}%: $what ($((SECONDS - start)) s)" >&2 ;;
        esac
    done
) &
printer=$!
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o APT::Status-Fd=3 "${packages[@]}" >>"$log" 2>&1 3>"$status" \
    || { tail -20 "$log" >&2; exit 1; }
kill "$printer" 2>/dev/null || true
printer=""
say "  installed: $(grep -c '^Setting up ' "$log") packages set up"

say "[5/5] disabling the OpenStack units, undoing the chroot preparation"
for u in "${units[@]}"; do
    if [[ -e $tmp/lib/systemd/system/$u.service || -e $tmp/etc/init.d/$u ]]; then
        chroot "$tmp" systemctl disable -q "$u.service" 2>/dev/null || true
    fi
done
chroot "$tmp" systemctl disable -q "${compute_units[@]}" 2>/dev/null || true
chroot "$tmp" apt-get clean
rm -f "$tmp/usr/sbin/policy-rc.d" "$status"
umount "$tmp/proc"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
: >"$tmp/etc/resolv.conf"
: >"$tmp/etc/machine-id"
rm -f "$tmp"/etc/ssh/ssh_host_*

echo "$stamp" >"$tmp/.complete"
mv "$tmp" "$img"
say "done: $img ($(du -sh "$img" | cut -f1))"
echo "$img"

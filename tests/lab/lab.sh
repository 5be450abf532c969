#!/usr/bin/env bash
# The migready lab: real compute hosts (systemd + sshd + libvirtd + QEMU + nova-compute)
# as systemd-nspawn containers, each in its own network namespace on one bridge.
#
#   tests/lab/lab.sh up [SPEC...]   boot hosts; SPEC = NAME:SUITE:PROFILE[:FIREWALL]
#                                   SUITE    bookworm | trixie
#                                   PROFILE  socket      distro default (socket activation)
#                                            traditional CentOS 7 style: sockets masked, the
#                                                        unit reads /etc/sysconfig/libvirtd
#                                            seed        socket activation with the seed's
#                                                        recipe applied (--listen: libvirtd dies)
#                                            controller  a Zed control plane (bookworm only, one
#                                                        per lab): the lab's bookworm computes
#                                                        join its cloud, trixie ones stay alone
#                                            jump        a jump host (bastion): sshd only, no
#                                                        libvirt or Nova; not in inventory.toml
#                                                        (listed in $STATE/jump_hosts)
#                                   FIREWALL none (default) | reject (RHEL default ruleset,
#                                            trailing REJECT) | drop (INPUT policy DROP) |
#                                            firewalld (RHEL-like: eth0 in the default
#                                            zone public, ssh allowed, the rest rejected) |
#                                            nftables (Debian's nftables.service loading
#                                            /etc/nftables.conf: inet filter input,
#                                            policy drop, ssh/established/lo accepted)
#                                   default: cmp1:bookworm:socket cmp2:trixie:socket
#                                            cmp3:bookworm:traditional:reject
#   tests/lab/lab.sh down           stop every host, remove overlays, namespaces, bridge
#   tests/lab/lab.sh ssh NAME CMD   run a command on a host as root
#   tests/lab/lab.sh status         list the hosts of the running lab
#   tests/lab/lab.sh reboot NAME [kill]  stop a host (orderly, or killed: a power cut)
#                                   and boot it again on the same overlay
#   tests/lab/lab.sh reset NAME     back to the state `up` gave it (same address, keys)
#   tests/lab/lab.sh exec NAME CMD  run a command in a host without SSH (nsenter into its
#                                   namespaces), e.g. to change a firewall that blocks SSH
# Every host sees $STATE/shared at /srv/migready-shared (the same directory on all:
# shared storage for tests).
#
# `up` writes $STATE/inventory.toml, $STATE/known_hosts and $STATE/id_ed25519
# (STATE = ${MIGREADY_LAB_STATE:-/var/tmp/migready-lab}, or /var/tmp/migready-lab-ID
# when MIGREADY_LAB_ID is set); with a controller also $STATE/clouds.yaml (cloud `lab`,
# the lab's admin) and $STATE/inventory-nova.toml (the same hosts plus a [nova] table).
# Addresses are on 198.18.(42+ID).0/24 (a benchmarking range) on bridge mrlab<ID>;
# nothing leaves the machine. Several labs with different MIGREADY_LAB_ID (0-9) can run
# side by side.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
id=${MIGREADY_LAB_ID:-0}
[[ $id =~ ^[0-9]$ ]] || { echo "lab: MIGREADY_LAB_ID must be 0-9" >&2; exit 2; }
if [[ $id == 0 ]]; then
    state=${MIGREADY_LAB_STATE:-/var/tmp/migready-lab}
else
    state=${MIGREADY_LAB_STATE:-/var/tmp/migready-lab-$id}
fi
bridge=mrlab$id
net=198.18.$((42 + id))
nsp=mrlab$id-   # network namespace prefix
vp=mrv${id}x    # veth prefix (host side)
default_specs=(cmp1:bookworm:socket cmp2:trixie:socket cmp3:bookworm:traditional:reject)

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

lab_ssh() {
    local addr=$1; shift
    ssh -q -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$state/known_hosts" -i "$state/id_ed25519" "root@$addr" "$@"
}

host_addr() { cat "$state/hosts/$1/address"; }

prepare_root() { # NAME SUITE PROFILE FIREWALL ROOT ALLHOSTS
    local name=$1 suite=$2 profile=$3 fw=$4 root=$5
    echo "$name" >"$root/etc/hostname"
    { printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n'; cat "$state/hosts.txt"; } >"$root/etc/hosts"
    ssh-keygen -q -A -f "$root" >/dev/null
    install -m 600 "$state/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    # Two non-root operators: `ops` has passwordless sudo, `nosudo` has none.
    local u
    for u in ops nosudo; do
        chroot "$root" useradd -m -s /bin/sh "$u"
        install -d -m 700 -o "$(chroot "$root" id -u "$u")" -g "$(chroot "$root" id -g "$u")" "$root/home/$u/.ssh"
        install -m 600 -o "$(chroot "$root" id -u "$u")" -g "$(chroot "$root" id -g "$u")" "$state/id_ed25519.pub" "$root/home/$u/.ssh/authorized_keys"
    done
    echo 'ops ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/ops"
    chmod 440 "$root/etc/sudoers.d/ops"

    # Lab only: root's user manager stays up between logins; otherwise a new SSH
    # login can wait for the previous session's manager to stop (seen on trixie).
    mkdir -p "$root/var/lib/systemd/linger" && touch "$root/var/lib/systemd/linger/root"
    # Lab only: on trixie that user manager takes about 2 min to stop at shutdown
    # ("Job user@0.service/stop running"); nothing in it needs more than a few seconds.
    mkdir -p "$root/etc/systemd/system/user@.service.d"
    printf '[Service]\nTimeoutStopSec=5s\n' >"$root/etc/systemd/system/user@.service.d/lab.conf"
    # Lab only: without a message bus nova-compute never finishes starting; keep it
    # "activating" instead of timing out and re-importing all of Nova every 90 s.
    mkdir -p "$root/etc/systemd/system/nova-compute.service.d"
    printf '[Service]\nTimeoutStartSec=infinity\n' >"$root/etc/systemd/system/nova-compute.service.d/lab.conf"

    case $profile in
    socket) ;;
    jump) prepare_jump "$root" ;;
    seed)
        # The seed's recipe, verbatim, on a socket-activated libvirt.
        printf 'listen_tls = 0\nlisten_tcp = 1\nauth_tcp = "none"\n' >>"$root/etc/libvirt/libvirtd.conf"
        echo 'LIBVIRTD_ARGS="--listen"' >>"$root/etc/default/libvirtd"
        ;;
    traditional)
        local s
        for s in libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket libvirtd-tcp.socket libvirtd-tls.socket; do
            ln -sf /dev/null "$root/etc/systemd/system/$s"
        done
        mkdir -p "$root/etc/sysconfig" "$root/etc/systemd/system/libvirtd.service.d"
        install -m 644 "$here/files/sysconfig-libvirtd" "$root/etc/sysconfig/libvirtd"
        printf '[Service]\nEnvironment=\nEnvironmentFile=\nEnvironmentFile=-/etc/sysconfig/libvirtd\n' \
            >"$root/etc/systemd/system/libvirtd.service.d/sysconfig.conf"
        mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
        ln -sf /lib/systemd/system/libvirtd.service "$root/etc/systemd/system/multi-user.target.wants/libvirtd.service"
        ;;
    controller)
        # The control plane's setup (run at `up`) and its lab secrets.
        install -d "$root/usr/local/lib/migready-lab" "$root/etc/migready-lab"
        install -m 755 "$here/files/controller/setup.sh" "$here/files/controller/cloud.py" \
            "$root/usr/local/lib/migready-lab/"
        install -m 600 "$state/nova/cloud.env" "$root/etc/migready-lab/cloud.env"
        install -d -m 755 "$root/etc/openstack"
        install -m 600 "$state/nova/clouds.yaml" "$root/etc/openstack/clouds.yaml"
        echo 'OS_CLOUD=lab' >>"$root/etc/environment"
        ;;
    *) die "unknown profile '$profile' (socket, traditional, seed, controller, jump)" ;;
    esac
    if joins_cloud "$suite" "$profile"; then
        join_root "$name" "$root"
    fi

    local rules="" unit=""
    case $fw in
    none) ;;
    reject) rules=iptables-rhel7 ;;
    drop) rules=iptables-drop ;;
    firewalld | nftables) ;;
    *) die "unknown firewall '$fw' (none, reject, drop, firewalld, nftables)" ;;
    esac
    # A native nftables host: the ruleset in /etc/nftables.conf, loaded at boot by
    # Debian's nftables.service (shipped disabled); no iptables rules.
    if [[ $fw == nftables ]]; then
        install -m 755 "$here/files/nftables.conf" "$root/etc/nftables.conf"
        chroot "$root" systemctl enable -q nftables.service
    fi
    # The image carries firewalld (it enables itself on install); only firewalld hosts run it.
    if [[ $fw == firewalld ]]; then
        chroot "$root" systemctl enable -q firewalld.service
        # eth0 bound to the default zone, as a RHEL installer leaves it (ZONE= / NetworkManager).
        mkdir -p "$root/etc/firewalld/zones"
        sed 's|</zone>|  <interface name="eth0"/>\n</zone>|' "$root/usr/lib/firewalld/zones/public.xml" >"$root/etc/firewalld/zones/public.xml"
        if [[ -n ${MIGREADY_LAB_FIREWALLD_BACKEND:-} ]]; then
            sed -i "s/^FirewallBackend=.*/FirewallBackend=$MIGREADY_LAB_FIREWALLD_BACKEND/" "$root/etc/firewalld/firewalld.conf"
        fi
    elif [[ -e $root/usr/lib/systemd/system/firewalld.service || -e $root/lib/systemd/system/firewalld.service ]]; then
        ln -sf /dev/null "$root/etc/systemd/system/firewalld.service"
    fi
    if [[ -n $rules ]]; then
        # Persist the rules where this kind of host keeps them, and restore them at boot.
        local file
        if [[ $profile == traditional ]]; then
            file=/etc/sysconfig/iptables unit=iptables.service
        else
            file=/etc/iptables/rules.v4 unit=netfilter-persistent.service
        fi
        mkdir -p "$root$(dirname $file)"
        install -m 600 "$here/files/$rules" "$root$file"
        cat >"$root/etc/systemd/system/$unit" <<UNIT
[Unit]
Description=IPv4 firewall with iptables (migready lab)
Before=network-pre.target ssh.service libvirtd.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/iptables-restore $file

[Install]
WantedBy=multi-user.target
UNIT
        mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
        ln -sf "/etc/systemd/system/$unit" "$root/etc/systemd/system/multi-user.target.wants/$unit"
    fi
}

# The lab's cloud: a host of profile `controller` ($state/nova/controller names it) and
# every compute host of its suite (bookworm: a Zed compute cannot join another release's
# cloud, and the controller image is Zed).
joins_cloud() { # SUITE PROFILE
    [[ -f $state/nova/controller && $2 != controller && $2 != jump && $1 == "$(cat "$state/nova/suite")" ]]
}

new_secret() { od -An -tx1 -N12 /dev/urandom | tr -d ' \n'; }

cloud_init_state() { # CONTROLLER ADDRESS: secrets, clouds.yaml, the controller's name
    local name=$1 addr=$2
    mkdir -p "$state/nova"
    chmod 700 "$state/nova"
    echo "$name" >"$state/nova/controller"
    echo bookworm >"$state/nova/suite"
    (
        umask 077
        cat >"$state/nova/cloud.env" <<EOF
CTL_NAME=$name
CTL_ADDR=$addr
ADMIN_PASS=$(new_secret)
SERVICE_PASS=$(new_secret)
RABBIT_PASS=$(new_secret)
DB_PASS=$(new_secret)
EOF
        # shellcheck disable=SC1091
        . "$state/nova/cloud.env"
        cat >"$state/nova/clouds.yaml" <<EOF
# Written by tests/lab/lab.sh up: the lab's cloud (admin of this lab only).
clouds:
  lab:
    auth:
      auth_url: http://$addr:5000/v3
      username: admin
      password: $ADMIN_PASS
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
        install -m 600 "$state/nova/clouds.yaml" "$state/clouds.yaml"
    )
}

join_root() { # NAME ROOT: a compute host's Nova configuration for the lab's cloud
    local name=$1 root=$2 addr
    addr=$(awk -v n="$name" '$2 == n {print $1}' "$state/hosts.txt")
    # shellcheck disable=SC1091
    . "$state/nova/cloud.env"
    local auth=(auth_url="http://$CTL_ADDR:5000/v3" auth_type=password project_domain_name=Default
        user_domain_name=Default project_name=service password="$SERVICE_PASS" region_name=RegionOne)
    local -a opts=(DEFAULT.transport_url="rabbit://openstack:$RABBIT_PASS@$CTL_ADDR:5672/"
        DEFAULT.my_ip="$addr" DEFAULT.rpc_response_timeout=180
        vnc.enabled=false spice.enabled=false cinder.os_region_name=RegionOne
        service_user.send_service_user_token=true service_user.username=nova
        placement.username=placement neutron.username=neutron neutron.service_metadata_proxy=false)
    local a
    for a in "${auth[@]}"; do opts+=("service_user.$a" "placement.$a" "neutron.$a"); done
    python3 "$here/files/ini-set.py" "$root/etc/nova/nova.conf" "${opts[@]}"
    # Debian's nova-compute-kvm says kvm; this machine has no /dev/kvm (TCG). Nothing
    # else: no live_migration_inbound_addr, no libvirt TCP, firewall as the spec says.
    python3 "$here/files/ini-set.py" "$root/etc/nova/nova-compute.conf" libvirt.virt_type=qemu
    # An OS-less guest ignores ACPI: libvirt-guests would wait 300 s at every shutdown.
    ln -sf /dev/null "$root/etc/systemd/system/libvirt-guests.service"
}

cmd_up() {
    local specs=("$@")
    [[ ${#specs[@]} -gt 0 ]] || specs=("${default_specs[@]}")
    [[ ! -d $state/hosts ]] || [[ -z $(ls -A "$state/hosts") ]] || die "a lab is already up in $state; run 'lab.sh down' first"
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing (apt-get install systemd-container)"
    command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"

    mkdir -p "$state/hosts" "$state/shared"
    # Parse specs and assign addresses first: every host's /etc/hosts names all hosts.
    local i=0 spec name suite profile fw
    local -a names=() suites=() profiles=() fws=()
    local ctl=""
    : >"$state/hosts.txt"
    for spec in "${specs[@]}"; do
        IFS=: read -r name suite profile fw <<<"$spec"
        [[ -n $name && -n $suite && -n $profile ]] || die "bad spec '$spec' (NAME:SUITE:PROFILE[:FIREWALL])"
        [[ $name =~ ^[a-z][a-z0-9-]{0,14}$ ]] || die "bad host name '$name' (lowercase, at most 15 characters)"
        if [[ $profile == controller ]]; then
            [[ -z $ctl ]] || die "one controller per lab ('$ctl' and '$name')"
            [[ $suite == bookworm ]] || die "$name: the controller image is Debian 12 (Zed) only, not '$suite'"
            ctl=$name
        fi
        names+=("$name") suites+=("$suite") profiles+=("$profile") fws+=("${fw:-none}")
        i=$((i + 1))
        echo "$net.$((10 + i)) $name" >>"$state/hosts.txt"
    done

    # Images (cached), by suite.
    local s t_up=$SECONDS k=0
    local -A images=()
    local -a wanted
    mapfile -t wanted < <(for i in "${!names[@]}"; do host_image "${suites[$i]}" "${profiles[$i]}"; done | sort -u)
    for s in "${wanted[@]}"; do
        k=$((k + 1))
        log "image $s ($k/${#wanted[@]}): cached or built now (first build ~5 min) ($((SECONDS - t_up)) s)"
        images[$s]=$("$here/image.sh" "$s")
    done
    local t_boot=$SECONDS
    [[ -z $ctl ]] || cloud_init_state "$ctl" "$(awk -v n="$ctl" '$2 == n {print $1}' "$state/hosts.txt")"

    [[ -f $state/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C migready-lab -f "$state/id_ed25519"
    : >"$state/known_hosts"

    # Every host's systemd takes inotify instances (root's, shared by all labs on the
    # machine): the kernel's default of 128 runs out after a dozen hosts ("Failed to
    # allocate manager object: Too many open files"). Raised, never lowered.
    local inotify
    inotify=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)
    if (( inotify < 1024 )); then
        log "raising fs.inotify.max_user_instances from $inotify to 1024 (nspawn hosts need them)"
        echo 1024 >/proc/sys/fs/inotify/max_user_instances
    fi

    if ! ip link show "$bridge" >/dev/null 2>&1; then
        ip link add "$bridge" type bridge
        ip addr add "$net.1/24" dev "$bridge"
        ip link set "$bridge" up
    fi

    for i in "${!names[@]}"; do
        name=${names[$i]} suite=${suites[$i]} profile=${profiles[$i]} fw=${fws[$i]}
        local idx=$((i + 1)) addr="$net.$((11 + i))" d="$state/hosts/${names[$i]}"
        mkdir -p "$d/upper" "$d/work" "$d/root"
        echo "$addr" >"$d/address"
        echo "$suite:$profile:$fw" >"$d/spec"
        echo "${images[$(host_image "$suite" "$profile")]}" >"$d/image"
        mount -t overlay overlay -o "lowerdir=$(cat "$d/image"),upperdir=$d/upper,workdir=$d/work" "$d/root"
        prepare_root "$name" "$suite" "$profile" "$fw" "$d/root"

        local ns=$nsp$name
        ip netns add "$ns"
        echo "$ns" >"$d/netns"
        ip link add "$vp$idx" type veth peer name "mrp${id}x$idx"
        ip link set "mrp${id}x$idx" netns "$ns"
        ip -n "$ns" link set "mrp${id}x$idx" name eth0
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        ip link set "$vp$idx" master "$bridge" up
        echo "$vp$idx" >"$d/veth"

        log "booting $name ($idx/${#names[@]}: $suite, $profile, firewall $fw) ($((SECONDS - t_up)) s)"
        boot_host "$name"

        local k
        for k in "$d"/root/etc/ssh/ssh_host_*_key.pub; do
            echo "$name,$addr $(cut -d' ' -f1-2 "$k")" >>"$state/known_hosts"
        done
    done

    # Wait for SSH, then for libvirt to be what the profile makes it.
    for i in "${!names[@]}"; do
        wait_host "${names[$i]}"
        log "${names[$i]} up at $(host_addr "${names[$i]}") ($((i + 1))/${#names[@]} answering SSH) ($((SECONDS - t_up)) s)"
    done

    # The controller and jump hosts are no compute hosts: they are not in the inventories.
    local -a computes=()
    for i in "${!names[@]}"; do
        [[ ${profiles[$i]} == controller || ${profiles[$i]} == jump ]] || computes+=("${names[$i]}")
    done
    write_inventory "${computes[@]}"
    write_jump_hosts "${names[@]}"
    log "inventory: $state/inventory.toml"
    [[ -z $ctl ]] || cloud_up "$ctl" "$t_boot" "${computes[@]}"
}

host_image() { # SUITE PROFILE: the cached image a host boots from
    if [[ $2 == controller ]]; then echo controller; else echo "$1"; fi
}

cloud_up() { # CONTROLLER BOOT_SECONDS COMPUTE...: configure the control plane, join the computes
    local ctl=$1 t_boot=$2; shift 2
    local name members=() awaited=() suite profile
    for name in "$@"; do
        IFS=: read -r suite profile _ <"$state/hosts/$name/spec"
        if ! joins_cloud "$suite" compute; then
            log "$name: $suite's Nova is not Zed and cannot join $ctl's Zed cloud; left standalone (nova-compute waits for a message bus, as without a cloud)"
            continue
        fi
        members+=("$name")
        if [[ $profile == seed ]]; then
            # The seed's recipe stops libvirtd: that nova-compute cannot register.
            log "$name: in the cloud, but its libvirtd does not start (profile seed): not waited for"
        else
            awaited+=("$name")
        fi
    done
    local t=$SECONDS
    log "$ctl: configuring the control plane (about 2-4 min)"
    ctl_setup "$ctl" core || die "$ctl: the control plane setup failed (lab.sh ssh $ctl journalctl)"
    # nova-compute started at boot with the cloud's configuration and is retrying its
    # connection; a restart (while the APIs come up) skips the back-off.
    local -a jobs=()
    for name in "${members[@]}"; do
        cmd_ssh "$name" systemctl restart --no-block nova-compute & jobs+=($!)
    done
    ctl_setup "$ctl" ready || die "$ctl: the APIs did not come up (lab.sh ssh $ctl journalctl)"
    log "$ctl: APIs ready $((SECONDS - t_boot)) s after boot ($((SECONDS - t)) s of setup)"
    local j failed=0
    for j in "${jobs[@]}"; do wait "$j" || failed=1; done
    [[ $failed == 0 ]] || die "restarting nova-compute on ${members[*]} failed"
    local content
    ctl_setup "$ctl" content & content=$!
    if [[ ${#awaited[@]} -gt 0 ]]; then
        ctl_setup "$ctl" computes "${awaited[@]}" \
            || die "$ctl: computes ${awaited[*]} did not come up (lab.sh ssh NAME journalctl -u nova-compute)"
        log "${awaited[*]}: registered in the cloud $((SECONDS - t_boot)) s after boot"
    fi
    wait "$content" || die "$ctl: the image or the flavor could not be created"
    write_nova_inventory "${members[@]}"
    log "cloud: $state/clouds.yaml (cloud lab), $state/inventory-nova.toml"
    log "boot a server without network, e.g.:"
    log "  lab.sh ssh $ctl openstack --os-compute-api-version 2.37 server create --flavor migready-lab-tiny --image migready-lab-blank --nic none${awaited:+ --availability-zone nova:${awaited[0]}} --wait vm1"
}

ctl_setup() { # CONTROLLER ARGS...: a step of the controller's setup, its progress on stderr
    local ctl=$1; shift
    cmd_ssh "$ctl" /usr/local/lib/migready-lab/setup.sh "$@" 2>&1 | sed -u 's/^/lab:   /' >&2
    return "${PIPESTATUS[0]}"
}

write_nova_inventory() { # MEMBER...: inventory.toml plus the [nova] table
    {
        sed -n '/^\[\[hosts\]\]/q; p' "$state/inventory.toml"
        echo "# The lab's cloud; its computes: $*. Other hosts below are standalone."
        echo "[nova]"
        echo "cloud = \"lab\""
        echo "clouds_yaml = \"$state/clouds.yaml\""
        echo
        sed -n '/^\[\[hosts\]\]/,$p' "$state/inventory.toml"
    } >"$state/inventory-nova.toml"
}

boot_host() { # NAME: boot the host's root (its overlay) in its network namespace
    local d="$state/hosts/$1"
    # $state/shared is every host's /srv/migready-shared: one directory seen by all hosts
    # (a shared instances path for tests; nothing uses it otherwise).
    mkdir -p "$state/shared"
    setsid systemd-nspawn -D "$d/root" --boot --register=no --keep-unit \
        --network-namespace-path="/run/netns/$(cat "$d/netns")" -M "$1" --console=read-only \
        --bind="$state/shared:/srv/migready-shared" \
        --capability=CAP_NET_ADMIN,CAP_NET_RAW >>"$d/console.log" 2>&1 </dev/null &
    echo $! >"$d/pid"
}

wait_host() { # NAME: until SSH answers and libvirt is what the profile makes it
    local name=$1 addr ok="" profile
    addr=$(host_addr "$name")
    profile=$(cut -d: -f2 "$state/hosts/$name/spec")
    for _ in $(seq 1 120); do
        if lab_ssh "$addr" true 2>/dev/null; then ok=1; break; fi
        sleep 0.5
    done
    [[ -n $ok ]] || { tail -20 "$state/hosts/$name/console.log" >&2; die "$name: no SSH after 60 s"; }
    [[ $profile != jump ]] || return 0
    # libvirtd (socket-activated or started at boot) answers locally, except where the
    # profile breaks it on purpose (or a test left it broken: then after 30 s, as it is).
    if [[ $profile != seed && $profile != controller ]]; then
        for _ in $(seq 1 60); do
            lab_ssh "$addr" virsh -q -c qemu:///system version >/dev/null 2>&1 && break
            sleep 0.5
        done
    fi
}

stop_host() { # NAME [KILL]: shut the host down (orderly: its units are stopped), or kill it
    local d="$state/hosts/$1" pid
    pid=$(cat "$d/pid")
    kill -0 "$pid" 2>/dev/null || return 0
    if [[ ${2:-} == kill ]]; then
        # The container's init: killing it ends its whole PID namespace at once.
        local init; init=$(pgrep -P "$pid" | head -1)
        kill -KILL "${init:-$pid}"
    else
        # An orderly shutdown (a controller's RabbitMQ and MariaDB take a while), then
        # what is left is killed.
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$1: still shutting down after 60 s; killed"
            kill_container "$pid"
        fi
    fi
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
}

kill_container() { # NSPAWN_PID: the container's init first (killing only nspawn would
    # leave the container running, orphaned), then nspawn
    local init
    init=$(pgrep -P "$1" | head -1 || true)
    [[ -z $init ]] || kill -KILL "$init" 2>/dev/null || true
    kill -KILL "$1" 2>/dev/null || true
}

cmd_reboot() { # NAME [kill]
    local name=${1:?usage: lab.sh reboot NAME [kill]}
    [[ -f $state/hosts/$name/pid ]] || die "no host '$name' in $state"
    stop_host "$name" "${2:-}"
    boot_host "$name"
    wait_host "$name"
    log "$name rebooted"
}

cmd_reset() { # NAME: back to the state `up` gave it (same address and host keys)
    local name=${1:?usage: lab.sh reset NAME}
    local d="$state/hosts/$name" suite profile fw keys
    [[ -f $d/spec ]] || die "no host '$name' in $state"
    IFS=: read -r suite profile fw <"$d/spec"
    [[ $profile != controller ]] || die "$name: a controller cannot be reset (lab.sh down, then up)"
    stop_host "$name"
    keys=$(mktemp -d)
    cp -a "$d"/root/etc/ssh/ssh_host_* "$keys/"
    umount "$d/root" 2>/dev/null || umount -l "$d/root"
    rm -rf "$d/upper" "$d/work"
    mkdir -p "$d/upper" "$d/work"
    mount -t overlay overlay -o "lowerdir=$(cat "$d/image"),upperdir=$d/upper,workdir=$d/work" "$d/root"
    prepare_root "$name" "$suite" "$profile" "$fw" "$d/root" >/dev/null
    cp -a "$keys"/* "$d/root/etc/ssh/"
    rm -rf "$keys"
    boot_host "$name"
    wait_host "$name"
    log "$name reset"
}

write_inventory() {
    {
        echo "# Written by tests/lab/lab.sh up: the lab's hosts."
        echo "[defaults]"
        echo "user = \"root\""
        echo "identity_file = \"$state/id_ed25519\""
        echo "known_hosts = \"$state/known_hosts\""
        echo "connect_timeout = 15"
        local name
        for name in "$@"; do
            echo
            echo "[[hosts]]"
            echo "name = \"$name\""
            echo "address = \"$(host_addr "$name")\""
        done
    } >"$state/inventory.toml"
}

prepare_jump() { # ROOT: a jump host runs sshd and nothing of libvirt or Nova
    local root=$1 u
    for u in nova-compute.service libvirtd.service libvirtd.socket libvirtd-ro.socket \
        libvirtd-admin.socket libvirtd-tcp.socket libvirtd-tls.socket virtlogd.service virtlogd.socket \
        virtlogd-admin.socket virtlockd.service virtlockd.socket virtlockd-admin.socket; do
        ln -sf /dev/null "$root/etc/systemd/system/$u"
    done
}

is_jump() { [[ $(cut -d: -f2 "$state/hosts/$1/spec") == jump ]]; }

compute_names() { # NAME...: those that are not jump hosts
    local n
    for n in "$@"; do is_jump "$n" || echo "$n"; done
}

write_jump_hosts() { # NAME...: "NAME ADDRESS" of each jump host
    local n
    : >"$state/jump_hosts"
    for n in "$@"; do
        if is_jump "$n"; then echo "$n $(host_addr "$n")" >>"$state/jump_hosts"; fi
    done
}

host_init() { # NAME: pid of the host's init (the container's pid 1)
    local pid
    pid=$(cat "$state/hosts/$1/pid")
    pgrep -P "$pid" | head -1
}

cmd_exec() { # NAME CMD...: in the host's namespaces, without SSH
    local name=${1:?usage: lab.sh exec NAME CMD...}; shift
    [[ -f $state/hosts/$name/pid ]] || die "no host '$name' in $state"
    local init; init=$(host_init "$name")
    [[ -n $init ]] || die "$name is not running"
    nsenter -t "$init" -m -u -i -n -p -- "$@"
}

cmd_down() {
    [[ -d $state ]] || { ip link del "$bridge" 2>/dev/null || true; return 0; }
    local d name pid
    local -a stops=()
    # Every host shuts down at once (each orderly, killed after 60 s).
    for d in "$state"/hosts/*/; do
        [[ -f $d/pid ]] || continue
        stop_host "$(basename "$d")" & stops+=($!)
    done
    for pid in "${stops[@]}"; do wait "$pid" || true; done
    # Anything of ours still running (a lost pid file): nspawn processes on our overlays.
    for pid in $(pgrep -f "systemd-nspawn -D $state/hosts/" || true); do kill_container "$pid"; done
    sleep 0.2
    for d in "$state"/hosts/*/; do
        [[ -d $d ]] || continue
        name=$(basename "$d")
        if mountpoint -q "$d/root"; then umount "$d/root" 2>/dev/null || umount -l "$d/root"; fi
        ip netns del "$nsp$name" 2>/dev/null || true
        [[ -f $d/veth ]] && ip link del "$(cat "$d/veth")" 2>/dev/null || true
        rm -rf "$d"
    done
    # Namespaces or links left by an interrupted `up`.
    local ns
    for ns in $(ip netns list 2>/dev/null | awk -v p="$nsp" 'index($1, p) == 1 {print $1}'); do ip netns del "$ns" || true; done
    for l in $(ip -o link show 2>/dev/null | awk -F': ' -v p="$vp" '{sub(/@.*/, "", $2)} index($2, p) == 1 {print $2}'); do ip link del "$l" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$state"
    log "down"
}

cmd_ssh() {
    local name=${1:?usage: lab.sh ssh NAME CMD...}; shift
    [[ -f $state/hosts/$name/address ]] || die "no host '$name' in $state"
    lab_ssh "$(host_addr "$name")" "$@"
}

cmd_status() {
    [[ -d $state/hosts ]] || { echo "no lab"; return 0; }
    local d
    for d in "$state"/hosts/*/; do
        [[ -d $d ]] || continue
        printf '%s %s %s pid=%s\n' "$(basename "$d")" "$(cat "$d/address")" "$(cat "$d/spec")" "$(cat "$d/pid")"
    done
}

[[ $(id -u) == 0 ]] || die "run as root (network namespaces, overlays, nspawn)"
case ${1:-} in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
ssh) shift; cmd_ssh "$@" ;;
status) cmd_status ;;
reboot) shift; cmd_reboot "$@" ;;
reset) shift; cmd_reset "$@" ;;
exec) shift; cmd_exec "$@" ;;
*) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

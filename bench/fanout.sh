#!/usr/bin/env bash
# Fan-out benchmark: `migready doctor` against K light hosts, and the same audit as an
# ansible-playbook (bench/audit.yml) against the same hosts. Issue #5.
#
#   sudo bench/fanout.sh            # K = 10 25 50, 5 repetitions each
#   sudo KS="10 25 50 100" REPS=7 FULL_REPS=2 PARALLEL=32 bench/fanout.sh
#   sudo bench/fanout.sh up         # only bring up the hosts (K = max of KS) and write
#                                   # the inventories, for poking at by hand
#   sudo bench/fanout.sh down       # only tear down (after `up`, or a killed run)
#
# A light host is a network namespace (veth on bridge mrbench0, 198.19.0.1/16; hosts on
# 198.19.1.0/24 upwards, a benchmarking range, nothing leaves the machine) running its
# own `/usr/sbin/sshd -D -f <its config>` with its own ed25519 host key, inside its own
# mount and UTS namespace: /etc is a read-only overlay of a per-host directory on top of
# the machine's /etc, holding real copies of the lab image's /etc/libvirt/libvirtd.conf,
# /etc/libvirt/qemu.conf, /etc/default/libvirtd and /etc/nova/nova.conf (and the host's
# own /etc/hostname and /etc/hosts), and root's home is a per-host directory made from
# /etc/skel (the machine's own /root/.bashrc may start pyenv or the like, which every SSH
# command of both tools would pay for; a compute host's root has the distribution's
# default). There is no systemd, libvirt or QEMU in a light host:
# systemctl, virsh, libvirtd --version fail there quickly, on both sides alike. That is
# enough for fan-out timing, not for the checks' verdicts.
#
# Both tools use the same key, the same known_hosts (host key checking on) and the same
# parallelism (migready --parallel = ansible forks = $PARALLEL). Runs alternate
# (migready, ansible-lean, ansible, migready, ...) after one untimed warm-up of each (at the
# first K); `migready doctor --mesh none` when the build has a mesh, as the playbooks probe
# no peers. Medians of wall
# time, peak RSS of the largest process (/usr/bin/time %M) and, where the cgroup v1
# memory controller exists, peak memory of the whole process tree.
# Also: migready's peak RSS against K (MEM_KS, default "10 50 100", migready only), startup time of `migready --help` and of an empty-inventory doctor run
# (hyperfine), and `migready doctor --mesh full` when that option exists.
#
# Installs what it needs (apt: hyperfine, time, python3-venv, openssh, iptables; PyPI:
# ansible-core into /var/tmp/migready-bench/venv), builds the lab image's bookworm root
# (tests/lab/image.sh, cached) if missing, builds migready with `cargo build --release`.
# Everything it creates is removed on exit (trap); safe to run twice.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/lab/cargo-env.sh
. "$repo/tests/lab/cargo-env.sh"
KS=${KS:-"10 25 50"}
REPS=${REPS:-5}
FULL_REPS=${FULL_REPS:-$REPS}   # repetitions of the slow 35-module playbook
PARALLEL=${PARALLEL:-32}
MEM_KS=${MEM_KS:-"10 50 100"}   # migready-only memory sweep (peak RSS against K)
work=${MIGREADY_BENCH_DIR:-/var/tmp/migready-bench}
image=""   # the lab's bookworm image (tests/lab/image.sh prints its directory)
bridge=mrbench0
nsp=mrbench-h   # network namespaces mrbench-h1 ... (veth host side mrbv1 ...)
vp=mrbv
cg=/sys/fs/cgroup/memory/mrbench

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root: sudo bench/fanout.sh (network namespaces, mounts, sshd)"

addr_of() { local i=$1; echo "198.19.$((1 + (i - 1) / 250)).$((1 + (i - 1) % 250))"; }
name_of() { printf 'cmp%03d' "$1"; }

teardown() {
    local ns p pids
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${nsp}[0-9]+$" || true); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        for p in $pids; do kill "$p" 2>/dev/null || true; done
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [[ -z $pids ]] && break
            sleep 0.1
        done
        for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    # veth peers go with their namespaces; the host sides too, but be thorough.
    for p in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${vp}[0-9]+$" || true); do
        ip link del "$p" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    if [[ -f $work/neigh.saved ]]; then
        { read -r t1; read -r t2; read -r t3; } <"$work/neigh.saved"
        sysctl -q -w net.ipv4.neigh.default.gc_thresh1="$t1" net.ipv4.neigh.default.gc_thresh2="$t2" \
            net.ipv4.neigh.default.gc_thresh3="$t3" || true
        rm -f "$work/neigh.saved"
    fi
    # ssh control masters Ansible left (each run has its own control directory).
    local s
    for s in "$work"/ctl/*/*; do
        [[ -S $s ]] && ssh -o ControlPath="$s" -O exit mrbench >/dev/null 2>&1 || true
    done
    rm -rf "$work/ctl" "$work/hosts"
    if [[ -d $cg ]]; then
        rmdir "$cg" 2>/dev/null || true
    fi
}

mode=${1:-run}
case $mode in
down) teardown; exit 0 ;;
run | up) ;;
*) die "usage: bench/fanout.sh [up|down]  (settings: KS, REPS, PARALLEL)" ;;
esac

# --- dependencies ---------------------------------------------------------------------
need=()
for pkg in hyperfine time bc python3-venv openssh-server openssh-client iptables iproute2 util-linux netcat-openbsd; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
"$repo/tests/lab/deps.sh"
log "the lab image (tests/lab/image.sh bookworm; built the first time only, minutes)"
image=$("$repo/tests/lab/image.sh" bookworm)
mkdir -p "$work"
if [[ ! -x $work/venv/bin/ansible-playbook ]]; then
    log "ansible-core into $work/venv (PyPI)"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q --disable-pip-version-check ansible-core
fi
log "cargo build --release"
(cd "$repo" && cargo build --release --quiet)
bin=$repo/target/release/migready
[[ -x $bin ]] || die "no $bin after cargo build"

teardown
if [[ $mode == run ]]; then
    trap teardown EXIT
else
    trap 'teardown' ERR
fi
trap 'exit 130' INT TERM

# --- light hosts --------------------------------------------------------------------
kmax=0
for k in $KS $MEM_KS; do [[ $k =~ ^[0-9]+$ && $k -ge 1 && $k -le 1000 ]] || die "bad K '$k' (1..1000)"; ((k > kmax)) && kmax=$k; done
rm -rf "$work/runs" "$work/failed"
mkdir -p "$work/hosts" "$work/runs" "$work/ctl"
rm -f "$work/id_ed25519" "$work/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C migready-bench -f "$work/id_ed25519"
install -m 600 "$work/id_ed25519.pub" "$work/authorized_keys"
: >"$work/known_hosts"
{ printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n'
  for ((i = 1; i <= kmax; i++)); do echo "$(addr_of "$i") $(name_of "$i")"; done; } >"$work/etc_hosts"

# The kernel's ARP table is one for all network namespaces (gc_thresh3 = 1024 entries by
# default): a full mesh of K light hosts needs about K*K entries, and past the limit the
# kernel drops packets ("neighbor table overflow") which shows as probes timing out. A real
# fleet has a kernel per host; raise the limits while the light hosts are up.
if [[ ! -f $work/neigh.saved ]]; then
    for t in 1 2 3; do sysctl -n "net.ipv4.neigh.default.gc_thresh$t"; done >"$work/neigh.saved"
fi
need_neigh=$((kmax * kmax + 1024))
sysctl -q -w net.ipv4.neigh.default.gc_thresh1=$((need_neigh / 4)) \
    net.ipv4.neigh.default.gc_thresh2=$((need_neigh / 2)) net.ipv4.neigh.default.gc_thresh3=$need_neigh
ip link add "$bridge" type bridge
ip addr add 198.19.0.1/16 dev "$bridge"
ip link set "$bridge" up

log "starting $kmax light hosts"
for ((i = 1; i <= kmax; i++)); do
    ns=$nsp$i addr=$(addr_of "$i") name=$(name_of "$i") h=$work/hosts/$i
    mkdir -p "$h/etc/libvirt" "$h/etc/nova" "$h/etc/default"
    cp -p "$image/etc/libvirt/libvirtd.conf" "$image/etc/libvirt/qemu.conf" "$h/etc/libvirt/"
    cp -p "$image/etc/default/libvirtd" "$h/etc/default/"
    cp -p "$image/etc/nova/nova.conf" "$h/etc/nova/"
    echo "$name" >"$h/etc/hostname"
    cp "$work/etc_hosts" "$h/etc/hosts"
    mkdir -p "$h/root"
    cp /etc/skel/.bashrc /etc/skel/.profile "$h/root/" 2>/dev/null || true
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$h/ssh_host_ed25519_key"
    echo "$addr $(cut -d' ' -f1-2 "$h/ssh_host_ed25519_key.pub")" >>"$work/known_hosts"
    cat >"$h/sshd_config" <<EOF
ListenAddress $addr
Port 22
HostKey $h/ssh_host_ed25519_key
PidFile $h/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 200
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
    ip netns add "$ns"
    ip link add "$vp$i" type veth peer name eth0 netns "$ns"
    ip link set "$vp$i" master "$bridge" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/16" dev eth0
    ip -n "$ns" link set eth0 up
    # Own mount + UTS namespace: /etc = this host's files over the machine's /etc, /root
    # = this host's home.
    ip netns exec "$ns" unshare --mount --uts --propagation private sh -c '
        hostname "$1"
        mount -t overlay mrbench -o "lowerdir=$2/etc:/etc" /etc
        mount --bind "$2/root" /root
        exec /usr/sbin/sshd -D -f "$2/sshd_config" -E "$2/sshd.log"
    ' sh "$name" "$h" </dev/null >/dev/null 2>&1 &
done
for ((i = 1; i <= kmax; i++)); do
    addr=$(addr_of "$i") ok=
    for _ in $(seq 100); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/$addr/22" 2>/dev/null; then ok=1; break; fi
        sleep 0.1
    done
    [[ -n $ok ]] || { cat "$work/hosts/$i/sshd.log" >&2 || true; die "sshd on $(name_of "$i") ($addr) did not come up"; }
done
# One OpenSSH login to check the whole path (key, known_hosts, files in place).
ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$work/known_hosts" \
    -i "$work/id_ed25519" "root@$(addr_of 1)" 'test -s /etc/nova/nova.conf && hostname' >/dev/null \
    || die "ssh into $(name_of 1) failed"

# --- inventories and Ansible configuration -------------------------------------------
for k in $(printf '%s\n' $KS $MEM_KS | sort -un); do
    {
        printf '[defaults]\nuser = "root"\nidentity_file = "%s"\nknown_hosts = "%s"\n' "$work/id_ed25519" "$work/known_hosts"
        printf 'connect_timeout = 30\ncommand_timeout = 120\n'
        for ((i = 1; i <= k; i++)); do
            printf '\n[[hosts]]\nname = "%s"\naddress = "%s"\n' "$(name_of "$i")" "$(addr_of "$i")"
        done
    } >"$work/inventory-$k.toml"
    { echo "[compute]"
      for ((i = 1; i <= k; i++)); do echo "$(name_of "$i") ansible_host=$(addr_of "$i")"; done
      printf '\n[compute:vars]\nansible_user=root\n'; } >"$work/hosts-$k.ini"
done
printf '[defaults]\n' >"$work/empty.toml"
cat >"$work/ansible.cfg" <<EOF
[defaults]
forks = $PARALLEL
host_key_checking = True
gathering = explicit
interpreter_python = /usr/bin/python3
private_key_file = $work/id_ed25519
timeout = 30
retry_files_enabled = False
deprecation_warnings = False
local_tmp = $work/ansible-local
remote_tmp = /tmp/.ansible-remote

[ssh_connection]
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/known_hosts
pipelining = True
EOF

if [[ $mode == up ]]; then
    log "hosts up (K=$kmax): inventories $work/inventory-K.toml, ansible: ANSIBLE_CONFIG=$work/ansible.cfg -i $work/hosts-K.ini"
    log "take them down with: bench/fanout.sh down"
    trap - EXIT ERR
    exit 0
fi

# --- measuring --------------------------------------------------------------------------
use_cg=
if [[ -d /sys/fs/cgroup/memory && -w /sys/fs/cgroup/memory ]] && mkdir -p "$cg" 2>/dev/null \
    && [[ -f $cg/memory.max_usage_in_bytes ]]; then
    use_cg=1
fi
now() { date +%s.%N; }
facts_only=()
if "$bin" doctor --help 2>/dev/null | grep -q -- '--mesh'; then facts_only=(--mesh none); fi
run_no=0
# measure TOOL K -> appends "wall rss_kb tree_kb" to $work/runs/TOOL-K
measure() {
    local tool=$1 k=$2 out t0 t1 tree=0
    run_no=$((run_no + 1))
    out=$work/runs/$tool-$k-$run_no
    [[ -n $use_cg ]] && echo 0 >"$cg/memory.max_usage_in_bytes"
    local -a cmd
    if [[ $tool == migready ]]; then
        cmd=("$bin" doctor -i "$work/inventory-$k.toml" --parallel "$PARALLEL" --format json "${facts_only[@]}")
    else
        mkdir -p "$work/ctl/$run_no"
        local playbook=$repo/bench/audit.yml
        [[ $tool == ansible-lean ]] && playbook=$repo/bench/audit-lean.yml
        cmd=(env ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_SSH_CONTROL_PATH_DIR="$work/ctl/$run_no"
            "$work/venv/bin/ansible-playbook" -i "$work/hosts-$k.ini" "$playbook")
    fi
    t0=$(now)
    if [[ -n $use_cg ]]; then
        /usr/bin/time -f '%e %M' -o "$out.time" sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cg" "${cmd[@]}" >"$out.out" 2>"$out.err" || true
    else
        /usr/bin/time -f '%e %M' -o "$out.time" "${cmd[@]}" >"$out.out" 2>"$out.err" || true
    fi
    t1=$(now)
    if [[ $tool != migready ]]; then
        local s
        for s in "$work/ctl/$run_no"/*; do
            [[ -S $s ]] && ssh -o ControlPath="$s" -O exit mrbench >/dev/null 2>&1 || true
        done
    fi
    [[ -n $use_cg ]] && tree=$(($(cat "$cg/memory.max_usage_in_bytes") / 1024))
    # Every host must have been audited, or the timing means nothing.
    local reached
    if [[ $tool == migready ]]; then
        reached=$( { grep -o '"reached": *true' "$out.out" || true; } | wc -l)
    else
        reached=$( { grep -E '^cmp[0-9]+ +: ok=[0-9]+ .* unreachable=0 +failed=0 ' "$out.out" || true; } | wc -l)
    fi
    if [[ $reached != "$k" ]]; then
        # Kept and reported: on a loaded machine a handshake can miss its timeout.
        log "WARNING: $tool reached $reached of $k hosts (run $run_no)"
        mkdir -p "$work/failed"
        cp "$out.out" "$out.err" "$work/failed/" 2>/dev/null || true
    fi
    echo "$(echo "$t1 - $t0" | bc -l) $(awk '{print $2}' "$out.time" | tail -n 1) $tree $reached" >>"$work/runs/$tool-$k"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$1" '{print $c}' "$2"; }

results=$work/results.txt
{
    echo "migready fan-out benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, kernel $(uname -r)"
    echo "migready $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)+working tree (release build), $("$work/venv/bin/ansible-playbook" --version 2>/dev/null | head -n1), OpenSSH $(ssh -V 2>&1 | cut -d, -f1)"
    echo "parallel/forks = $PARALLEL, repetitions = $REPS (35-module playbook: $FULL_REPS), one warm-up run each first, K = $KS"
    echo "migready command: migready doctor -i inventory-K.toml --parallel $PARALLEL --format json ${facts_only[*]}"
    echo
} | tee "$results"

tools="migready ansible-lean ansible"
warm=
for k in $KS; do
    if [[ -z $warm ]]; then
        log "K=$k: warm-up"
        for t in $tools; do measure "$t" "$k"; rm -f "$work/runs/$t-$k"; done
        warm=1
    fi
    for ((r = 1; r <= REPS || r <= FULL_REPS; r++)); do
        log "K=$k: repetition $r (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        ((r <= REPS)) && measure migready "$k"
        ((r <= REPS)) && measure ansible-lean "$k"
        ((r <= FULL_REPS)) && measure ansible "$k"
    done
done
mb() { echo "$1 / 1024" | bc -l; }
echo "median wall time (s) and speed-up; ansible = bench/audit.yml (35 module runs per host)," | tee -a "$results"
echo "ansible-lean = bench/audit-lean.yml (7 tasks)" | tee -a "$results"
printf '%5s  %10s  %10s  %8s  %13s  %8s\n' K migready ansible speed-up ansible-lean speed-up | tee -a "$results"
for k in $KS; do
    m=$(col 1 "$work/runs/migready-$k" | median)
    a=$(col 1 "$work/runs/ansible-$k" | median)
    l=$(col 1 "$work/runs/ansible-lean-$k" | median)
    printf '%5s  %10.3f  %10.3f  %7.1fx  %13.3f  %7.1fx\n' "$k" "$m" "$a" "$(echo "$a / $m" | bc -l)" \
        "$l" "$(echo "$l / $m" | bc -l)" | tee -a "$results"
done
echo | tee -a "$results"
echo "median peak memory (MB): rss = largest single process (/usr/bin/time %M); tree = whole process" | tee -a "$results"
echo "tree incl. page cache it charged (cgroup v1 memory.max_usage_in_bytes; 0 = not available)" | tee -a "$results"
printf '%5s  %13s  %13s  %13s  %13s  %13s  %13s\n' K migready-rss ansible-rss lean-rss migready-tree ansible-tree lean-tree | tee -a "$results"
for k in $KS; do
    printf '%5s  %13.1f  %13.1f  %13.1f  %13.1f  %13.1f  %13.1f\n' "$k" \
        "$(mb "$(col 2 "$work/runs/migready-$k" | median)")" "$(mb "$(col 2 "$work/runs/ansible-$k" | median)")" \
        "$(mb "$(col 2 "$work/runs/ansible-lean-$k" | median)")" "$(mb "$(col 3 "$work/runs/migready-$k" | median)")" \
        "$(mb "$(col 3 "$work/runs/ansible-$k" | median)")" "$(mb "$(col 3 "$work/runs/ansible-lean-$k" | median)")" | tee -a "$results"
done
{
    echo
    echo "every run (tool K: wall s, peak rss KiB, tree KiB, hosts reached):"
    for k in $KS; do for t in $tools; do echo "  $t $k: $(tr '\n' ';' <"$work/runs/$t-$k")"; done; done
} >>"$results"

# --- full reachability mesh ------------------------------------------------------------
echo | tee -a "$results"
if "$bin" doctor --help 2>/dev/null | grep -q -- '--mesh'; then
    for k in $KS; do
        : >"$work/runs/mesh-$k"
        for ((r = 1; r <= REPS; r++)); do
            t0=$(now)
            "$bin" doctor -i "$work/inventory-$k.toml" --parallel "$PARALLEL" --mesh full --format json \
                >"$work/runs/mesh-$k.out" 2>"$work/runs/mesh-$k.err" || true
            t1=$(now)
            echo "$t1 - $t0" | bc -l >>"$work/runs/mesh-$k"
            reached=$( { grep -o '"reached": *true' "$work/runs/mesh-$k.out" || true; } | wc -l)
            [[ $reached -ge $k ]] || die "doctor --mesh full reached $reached of $k hosts"
            # Nothing filters the light hosts: every pair's migration ports must come out
            # reachable, or the probes timed out on this machine and the time is not the mesh's.
            bad=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for p in d["pairs"] for c in p["checks"] if c["id"] == "mesh.migration-ports" and c["status"] != "pass"))' "$work/runs/mesh-$k.out")
            [[ $bad == 0 ]] || log "WARNING: K=$k: $bad pairs' migration ports not reachable (see $work/runs/mesh-$k.out)"
        done
        full=$(median <"$work/runs/mesh-$k")
        facts=$(col 1 "$work/runs/migready-$k" | median)
        printf 'doctor --mesh full, K=%s (%s ordered pairs): median %.3f s (facts only: %.3f s, mesh part ~%.3f s)\n' \
            "$k" "$((k * (k - 1)))" "$full" "$facts" "$(echo "$full - $facts" | bc -l)" | tee -a "$results"
    done
else
    echo "doctor --mesh full: not available in this build (no --mesh option); not timed" | tee -a "$results"
fi

# --- memory against K (migready only) ------------------------------------------------------
echo | tee -a "$results"
echo "migready peak RSS (MB, median of $REPS) against K, --mesh none: at --parallel $PARALLEL (at most that" | tee -a "$results"
echo "many hosts' output in flight) and at --parallel 1 (what is kept per host)" | tee -a "$results"
printf '%5s  %14s  %12s\n' K "rss p$PARALLEL" "rss p1" | tee -a "$results"
for k in $MEM_KS; do
    for p in "$PARALLEL" 1; do
        : >"$work/runs/mem-$k-$p"
        for ((r = 1; r <= REPS; r++)); do
            /usr/bin/time -f '%M' -o "$work/runs/mem.time" "$bin" doctor -i "$work/inventory-$k.toml" --parallel "$p" \
                --format json "${facts_only[@]}" >"$work/runs/mem.out" 2>/dev/null || true
            reached=$( { grep -o '"reached": *true' "$work/runs/mem.out" || true; } | wc -l)
            [[ $reached == "$k" ]] || log "WARNING: memory run K=$k --parallel $p reached $reached of $k hosts"
            tail -n 1 "$work/runs/mem.time" >>"$work/runs/mem-$k-$p"
        done
    done
    printf '%5s  %14.1f  %12.1f\n' "$k" "$(mb "$(median <"$work/runs/mem-$k-$PARALLEL")")" \
        "$(mb "$(median <"$work/runs/mem-$k-1")")" | tee -a "$results"
done

# --- startup ---------------------------------------------------------------------------
echo | tee -a "$results"
hyperfine -N --warmup 10 --runs 200 --export-json "$work/runs/startup.json" \
    "$bin --help" "$bin doctor -i $work/empty.toml" "$bin doctor -i $work/empty.toml --format json" \
    >"$work/runs/startup.txt" 2>&1 || { cat "$work/runs/startup.txt" >&2; die "hyperfine failed"; }
python3 - "$work/runs/startup.json" <<'EOF' | tee -a "$results"
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    cmd = r["command"].split("/")[-1] if r["command"].startswith("/") else r["command"]
    cmd = " ".join(w if "/" not in w else w.rsplit("/", 1)[-1] for w in r["command"].split())
    print(f"startup {cmd:<45} mean {r['mean']*1000:6.2f} ms  median {r['median']*1000:6.2f} ms  "
          f"min {r['min']*1000:6.2f} ms  max {r['max']*1000:6.2f} ms  ({len(r['times'])} runs)")
EOF
log "results in $results (the hosts are torn down now)"
cp "$results" "$work/results-$(date -u +%Y%m%dT%H%M%S).txt"

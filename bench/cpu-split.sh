#!/usr/bin/env bash
# Where the CPU goes: controller (migready / ansible-playbook and its ssh clients) versus
# the light hosts (sshd, the facts script, Ansible's remote Python). On a benchmark
# machine both sides share the same CPUs, so wall time there is bounded by their sum;
# on a real fleet each host brings its own CPUs.
#
#   sudo KS=50 bench/fanout.sh up
#   sudo bench/cpu-split.sh 50 [PARALLEL] [TOOLS]     # TOOLS default "migready ansible-lean"
#   sudo bench/fanout.sh down
#
# Host CPU = growth of cutime+cstime of every light host's sshd listener (a session's CPU
# is added to it when the session ends). Controller CPU = user+sys of the tool and its
# children (/usr/bin/time). Also peak RSS of migready at --parallel 1 (facts retained for
# K hosts plus one host in flight) to show memory per host.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${MIGREADY_BENCH_DIR:-/var/tmp/migready-bench}
k=${1:?usage: cpu-split.sh K [PARALLEL] [TOOLS]}
parallel=${2:-32}
tools=${3:-migready ansible-lean}
bin=$repo/target/release/migready
[[ -f $work/inventory-$k.toml ]] || { echo "cpu-split: no $work/inventory-$k.toml; run KS=$k bench/fanout.sh up first" >&2; exit 1; }
tick=$(getconf CLK_TCK)

host_cpu() { # seconds of CPU the first K hosts' sshd listeners have reaped
    local i pid total=0
    for ((i = 1; i <= k; i++)); do
        pid=$(cat "$work/hosts/$i/sshd.pid")
        total=$((total + $(awk '{print $16 + $17}' "/proc/$pid/stat")))
    done
    echo "$total"
}
facts_only=()
if "$bin" doctor --help 2>/dev/null | grep -q -- '--mesh'; then facts_only=(--mesh none); fi

printf '%-14s %4s %9s %12s %10s %10s\n' tool K wall_s controller_s hosts_s peak_rss_MB
for tool in $tools; do
    case $tool in
    migready) cmd=("$bin" doctor -i "$work/inventory-$k.toml" --parallel "$parallel" --format json "${facts_only[@]}") ;;
    migready-p1) cmd=("$bin" doctor -i "$work/inventory-$k.toml" --parallel 1 --format json "${facts_only[@]}") ;;
    migready-mesh) cmd=("$bin" doctor -i "$work/inventory-$k.toml" --parallel "$parallel" --format json --mesh full) ;;
    ansible | ansible-lean)
        pb=$repo/bench/audit.yml
        [[ $tool == ansible-lean ]] && pb=$repo/bench/audit-lean.yml
        ctl=$work/ctl/split-$$
        mkdir -p "$ctl"
        cmd=(env ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_SSH_CONTROL_PATH_DIR="$ctl" ANSIBLE_FORKS="$parallel"
            "$work/venv/bin/ansible-playbook" -i "$work/hosts-$k.ini" "$pb") ;;
    *) echo "cpu-split: unknown tool $tool" >&2; exit 2 ;;
    esac
    h0=$(host_cpu)
    t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S %M' -o "$work/split.time" "${cmd[@]}" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    if [[ $tool == ansible* ]]; then
        for s in "$ctl"/*; do [[ -S $s ]] && ssh -o ControlPath="$s" -O exit mrbench >/dev/null 2>&1 || true; done
        sleep 0.5
    fi
    h1=$(host_cpu)
    read -r u s m < <(tail -n 1 "$work/split.time")
    printf '%-14s %4s %9.2f %12.2f %10.2f %10.1f\n' "$tool" "$k" "$(echo "$t1 - $t0" | bc -l)" \
        "$(echo "$u + $s" | bc -l)" "$(echo "($h1 - $h0) / $tick" | bc -l)" "$(echo "$m / 1024" | bc -l)"
done

#!/usr/bin/env bash
# Nova's live block migration next to the libvirt-level ones, on the lab's Nova cloud
# (README "A Nova cloud in the lab"): per run, between SRC and DST,
#   nova     migready validate --nova: boot a server, os-migrateLive with block
#            migration, follow the migration record to completed, verify, delete
#   validate migready validate: its libvirt-level test migration (templates/guest.sh)
#   virsh    virsh migrate --live --p2p --copy-storage-all --undefinesource --persistent
#            of a guest of the same size (64 MiB RAM, 64 MiB disk), timed on SRC
# then the controller's memory (RSS per systemd unit) and, unless NOVA_BENCH_BOOT=0,
# the lab's boot time (`lab.sh down`, then `lab.sh up` of the cloud, timed; this
# replaces a running lab). Not a test: prints numbers, changes only the lab.
#   MIGREADY_LAB_ID=2 bench/nova.sh [SRC DST [RUNS]]     (default cmpa cmpb 3)
#   NOVA_BENCH_BOOT=0 ...: on the running lab, without timing its boot
# Before the runs it applies `migready fix --yes` (a fresh lab cannot migrate).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-cmpa} dst=${2:-cmpb} runs=${3:-3}
id=${MIGREADY_LAB_ID:-0}
state=${MIGREADY_LAB_STATE:-/var/tmp/migready-lab$([[ $id == 0 ]] || echo "-$id")}
specs=(ctl:bookworm:controller cmpa:bookworm:socket cmpb:bookworm:traditional:reject)
lab() { tests/lab/lab.sh ssh "$@"; }
# MIGREADY_BIN: another build (e.g. target/debug/migready: the times here are the
# hosts' and Nova's, not migready's CPU).
bin=${MIGREADY_BIN:-target/release/migready}
. tests/lab/cargo-env.sh
[[ -x $bin ]] || cargo build --release -q

if [[ ${NOVA_BENCH_BOOT:-1} != 0 ]]; then
    tests/lab/lab.sh down >/dev/null 2>&1 || true
    s=$(date +%s)
    tests/lab/lab.sh up "${specs[@]}" >/dev/null 2>&1
    echo "lab up (controller + 2 computes, until both computes are registered): $(($(date +%s) - s)) s"
fi
inv=$state/inventory-nova.toml
"$bin" fix -i "$inv" --yes --mesh none >/dev/null || "$bin" fix -i "$inv" --yes --mesh none >/dev/null

. bench/guest-lib.sh
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "run  tool      migration_s  command_s  detail"
for i in $(seq 1 "$runs"); do
    s=$(date +%s%N)
    out=$("$bin" validate --nova -i "$inv" --pair "$src:$dst" --mesh none --format json || true)
    wall=$(ms "$s")
    python3 -c 'import json,re,sys
r=json.load(sys.stdin); i, wall = sys.argv[1], int(sys.argv[2]) / 1000
m=[c["message"] for p in r["pairs"] for c in p["checks"] if c["id"]=="nova.live-migration"][0]
t=re.search(r"in ([0-9.]+) s \(boot ([0-9.]+) s, all with clean-up ([0-9.]+) s\)", m)
print(f"{i:<4} nova      {t.group(1):>11}  {wall:>9.1f}  boot {t.group(2)} s, all with clean-up {t.group(3)} s" if t else f"{i:<4} nova      FAILED: {m}")' "$i" "$wall" <<<"$out"

    s=$(date +%s%N)
    out=$("$bin" validate -i "$inv" --pair "$src:$dst" --mesh none --format json || true)
    wall=$(ms "$s")
    python3 -c 'import json,re,sys
r=json.load(sys.stdin); i, wall = sys.argv[1], int(sys.argv[2]) / 1000
m=[c["message"] for p in r["pairs"] for c in p["checks"] if c["id"]=="migration.live-block"][0]
t=re.search(r"in ([0-9.]+) s, downtime ([0-9]+) ms", m)
print(f"{i:<4} validate  {t.group(1):>11}  {wall:>9.1f}  downtime {t.group(2)} ms" if t else f"{i:<4} validate  FAILED: {m}")' "$i" "$wall" <<<"$out"

    name=migready-test-bench-$i
    xml=$(sed -e "s#{{name}}#$name#" -e "s#{{memory_mib}}#64#" -e "s#{{machine}}#$machine#" \
        -e "s#{{disk}}#/var/lib/nova/instances/$name/disk#" templates/guest.xml)
    guest dest "$name" "$dst" >/dev/null
    guest source "$name" "$src" "$xml" >/dev/null
    t=$(lab "$src" "s=\$(date +%s%N); virsh migrate --live --p2p --copy-storage-all --undefinesource --persistent $name qemu+tcp://$dst/system >/dev/null && echo \$(( (\$(date +%s%N) - s) / 1000000 ))")
    d=$(lab "$dst" "virsh domjobinfo --completed $name | awk '/^Total downtime/ {print \$3}'")
    guest cleanup "$name" "$src" >/dev/null; guest cleanup "$name" "$dst" >/dev/null
    printf '%-4s virsh     %11.1f  %9s  downtime %s ms\n' "$i" "$(echo "$t / 1000" | bc -l)" "-" "$d"
done

echo "controller memory (RSS by systemd unit, MiB):"
lab ctl "ps -eo rss=,unit= | awk '{ m[\$2] += \$1 } END { for (u in m) if (m[u] > 10240) printf \"  %-32s %6.0f\\n\", u, m[u] / 1024; }' | sort -k2 -nr; ps -eo rss= | awk '{ t += \$1 } END { printf \"  %-32s %6.0f\\n\", \"all processes\", t / 1024 }'"

#!/usr/bin/env bash
# Migration time and downtime of `migready validate`'s test guest next to a plain
#   virsh migrate --live --p2p --copy-storage-inc --undefinesource --persistent
# of the same guest (same templates/guest.sh layout and guest.xml), between two
# hosts of a running lab whose libvirt is set up for migration (qemu+tcp).
# Not a test: prints one line per run.
#   MIGREADY_LAB_ID=5 bench/validate_vs_virsh.sh SRC DST [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: bench/validate_vs_virsh.sh SRC DST [RUNS]} dst=${2:?} runs=${3:-5}
id=${MIGREADY_LAB_ID:-0}
state=${MIGREADY_LAB_STATE:-/var/tmp/migready-lab$([[ $id == 0 ]] || echo "-$id")}
lab() { tests/lab/lab.sh ssh "$@"; }
bin=target/release/migready
. tests/lab/cargo-env.sh
[[ -x $bin ]] || cargo build --release -q
inv=$(mktemp); trap 'rm -f "$inv"' EXIT
sed 's/connect_timeout = 5/connect_timeout = 60/' "$state/inventory.toml" >"$inv"

. bench/guest-lib.sh

echo "run  tool      total_s  downtime_ms"
for i in $(seq 1 "$runs"); do
    # migready validate (one pair, no mesh): total and downtime from its report.
    "$bin" validate -i "$inv" --pair "$src:$dst" --mesh none --format json |
        python3 -c 'import json,re,sys
r=json.load(sys.stdin)
m=[c["message"] for p in r["pairs"] for c in p["checks"] if c["id"]=="migration.live-block"][0]
t=re.search(r"in ([0-9.]+) s, downtime ([0-9]+) ms", m)
print(f"{sys.argv[1]:<4} migready  {t.group(1):>7}  {t.group(2):>11}" if t else f"{sys.argv[1]:<4} migready  FAILED: {m}")' "$i"
    # Plain virsh on the source host, same guest layout.
    name=migready-test-bench-$i
    xml=$(sed -e "s#{{name}}#$name#" -e "s#{{memory_mib}}#64#" -e "s#{{machine}}#$machine#" \
        -e "s#{{disk}}#/var/lib/nova/instances/$name/disk#" templates/guest.xml)
    guest dest "$name" "$dst"
    guest source "$name" "$src" "$xml"
    t=$(lab "$src" "s=\$(date +%s%N); virsh migrate --live --p2p --copy-storage-inc --undefinesource --persistent $name qemu+tcp://$dst/system >/dev/null && echo \$(( (\$(date +%s%N) - s) / 1000000 ))")
    d=$(lab "$dst" "virsh domjobinfo --completed $name | awk '/^Total downtime/ {print \$3}'")
    guest cleanup "$name" "$src"; guest cleanup "$name" "$dst"
    printf '%-4s virsh     %7.1f  %11s\n' "$i" "$(echo "$t / 1000" | bc -l)" "$d"
done

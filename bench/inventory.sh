#!/usr/bin/env bash
# Inventory load time against its size (issue 9: loading must be linear in the file).
#
#   bench/inventory.sh                          # 1k, 10k and 100k hosts, 3 loads each
#   SIZES="1000 10000 100000 300000" REPS=5 bench/inventory.sh
#
# Needs no root and contacts nothing. Generates inventories of N hosts (a [defaults]
# table, then per host a name, an address and, for every third host, a port, a user and a
# nova_release; every tenth host's address is an IPv6 one) in $MIGREADY_BENCH_DIR
# (default a temporary directory, removed afterwards), builds the release
# `examples/inventory_load.rs`, and prints the fastest and median time of REPS loads of
# each: `migready::inventory::load`, what doctor, fix and validate run before contacting
# any host (parse, validation, defaults).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sizes=${SIZES:-1000 10000 100000}
reps=${REPS:-3}
cargo=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
if [[ -n ${MIGREADY_BENCH_DIR:-} ]]; then
    work=$MIGREADY_BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/migready-inventory-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi

(cd "$repo" && "$cargo" build --release --locked --quiet --example inventory_load)

files=()
for n in $sizes; do
    f=$work/inventory-$n.toml
    awk -v n="$n" 'BEGIN {
        printf "[defaults]\nuser = \"root\"\nconnect_timeout = 5\n\n[policy]\nallowed_sources = [\"192.0.2.0/24\"]\n\n"
        for (i = 1; i <= n; i++) {
            printf "[[hosts]]\nname = \"cmp%06d.rack%d.example.com\"\n", i, i % 64
            if (i % 10 == 0) printf "address = \"[fd42:%x::%x]\"\n", int(i / 65536), i % 65536
            else printf "address = \"10.%d.%d.%d\"\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256
            if (i % 3 == 0) printf "port = 2222\nuser = \"nova-ops\"\nnova_release = \"2023.1\"\n"
            printf "\n"
        }
    }' >"$f"
    files+=("$f")
done

echo "migready inventory load, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet 2>/dev/null || echo '+working tree'), release build"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%d MiB RAM", $2 / 1024}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "loads per file: $reps"
"$repo/target/release/examples/inventory_load" --reps "$reps" "${files[@]}"
echo "rerun: bench/inventory.sh (SIZES=\"$sizes\" REPS=$reps)"

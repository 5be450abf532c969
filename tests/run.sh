#!/usr/bin/env bash
# Run every test: unit tests, SSH transport tests against a real sshd, and the
# real-host tests against a lab of nspawn hosts (both Debian images, all profiles).
# Installs what it needs (apt), builds or reuses the cached lab images
# (/var/cache/migready/lab), and always takes the lab down again.
# Needs root. Usage: tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "tests/run.sh: run as root (lab hosts need namespaces and mounts)" >&2; exit 2; }

. tests/lab/cargo-env.sh
tests/lab/deps.sh

# Lab images build in the background while the unit tests compile and run.
logs=$(mktemp -d)
tests/lab/image.sh bookworm >"$logs/bookworm" 2>&1 & img1=$!
tests/lab/image.sh trixie >"$logs/trixie" 2>&1 & img2=$!

cleanup() {
    tests/lab/lab.sh down >/dev/null 2>&1 || true
    kill "$img1" "$img2" 2>/dev/null || true
    rm -rf "$logs"
}
trap cleanup EXIT

export MIGREADY_REQUIRE_SSHD=1
cargo build --locked --all-targets
cargo test --locked

for i in "$img1" "$img2"; do
    if ! wait "$i"; then cat "$logs"/* >&2; echo "tests/run.sh: building a lab image failed" >&2; exit 1; fi
done

tests/lab/lab.sh down >/dev/null 2>&1 || true
tests/lab/lab.sh up cmp1:bookworm:socket cmp2:trixie:socket:firewalld cmp3:bookworm:traditional:reject \
    cmp4:trixie:traditional:drop cmp5:bookworm:seed cmp6:bookworm:socket:nftables
cargo test --locked --test lab -- --ignored --test-threads=1
# fix changes the lab: it runs after the read-only doctor tests.
cargo test --locked --test fix_lab -- --ignored --test-threads=1
# The native nftables host cmp6 in depth (reset first; the others are fixed by now).
cargo test --locked --test nft_lab -- --ignored --test-threads=1
# The fault matrix: resets cmp3 to its state after `up` before each case.
cargo test --locked --test fault_lab -- --ignored --test-threads=1 --nocapture
# validate on the same lab (its bookworm and trixie socket hosts), last: it sets
# those two hosts up for migration (as fix does) and leaves no test guest behind.
cargo test --locked --test validate_lab -- --ignored --test-threads=1

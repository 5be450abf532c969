#!/usr/bin/env bash
# Bring up the default lab (3 real compute hosts) and run `migready doctor` on it.
# The lab stays up afterwards; `tests/lab/lab.sh down` removes it. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lab/cargo-env.sh
tests/lab/deps.sh
cargo build --release --locked
tests/lab/lab.sh down >/dev/null 2>&1 || true
tests/lab/lab.sh up
state=${MIGREADY_LAB_STATE:-/var/tmp/migready-lab}
echo "+ migready doctor -i $state/inventory.toml"
rc=0
target/release/migready doctor -i "$state/inventory.toml" "$@" || rc=$?
echo "(exit code $rc; the lab is still up: tests/lab/lab.sh ssh cmp1 ..., tests/lab/lab.sh down)"

#!/usr/bin/env bash
# Figures for the Docker backend (issue 16), as root with a running Docker Engine:
#   - a 5-node container cluster up + down (goal: under 5 s), three times; the first `up`
#     on an engine without the node image also builds it
#   - ops/s of leaderkv on containers vs on namespaces, same machine, same run: 20 s of
#     the default workloads without faults, then 20 s under the default nemesis
# Usage: sudo scripts/bench-docker.sh   (prefixes flbd-/flbn-, subnets 10.77.102-103.0/24)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p faultline -p leaderkv -p clockshim
BIN="$CARGO_TARGET_DIR/release/faultline"
store=$(mktemp -d)
cleanup() {
  "$BIN" cluster down --docker --prefix flbd- >/dev/null 2>&1 || true
  "$BIN" cluster down --prefix flbn- >/dev/null 2>&1 || true
  rm -rf "$store"
}
trap cleanup EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in 1 2 3; do
  t0=$(date +%s.%N)
  "$BIN" cluster up --docker --prefix flbd- --subnet 10.77.102.0/24 --nodes 5 >/dev/null
  t1=$(date +%s.%N)
  "$BIN" cluster down --docker --prefix flbd- 2>/dev/null
  t2=$(date +%s.%N)
  printf 'docker cluster of 5, try %d: up %.2f s, down %.2f s, total %.2f s\n' \
    "$i" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)"
done
rate() { # label, then the flags of one run: prints its client ops/s
  local label=$1; shift
  "$BIN" test --store "$store" --time-limit 20s --seed 1 "$@" >"$store/out" 2>&1 || true
  printf '%-40s %s\n' "$label" "$(grep -o '[0-9]* client ops in [0-9.]* s ([0-9]*/s)' "$store/out")"
}
for nemesis in none default; do
  flags=()
  [ "$nemesis" = none ] && flags=(--nemesis none)
  rate "containers, nemesis $nemesis:" --docker --prefix flbd- --subnet 10.77.102.0/24 "${flags[@]}"
  rate "namespaces, nemesis $nemesis:" --prefix flbn- --subnet 10.77.103.0/24 "${flags[@]}"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

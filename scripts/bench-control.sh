#!/usr/bin/env bash
# Timings of the control plane (needs root, iproute2, iptables, openssh-server):
#   - `faultline cluster up --nodes 5 --ssh` + `faultline cluster down`, through the binary
#   - the same in-process, and 100 sequential `exec` calls over SSH to one node (one session)
# Targets (issue 3): both under 2 s. Usage: scripts/bench-control.sh [ROUNDS]
# PROFILE=release builds optimised binaries (default: dev, as CI builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
PROFILE="${PROFILE:-dev}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
dir=debug; [ "$PROFILE" = release ] && dir=release
cargo build -q --profile "$PROFILE" -p faultline -p control --examples --bins
BIN="$CARGO_TARGET_DIR/$dir/faultline"
PREFIX=flbc-
SUBNET=10.77.251.0/24
cleanup() { "$BIN" cluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
now_ms() { date +%s%3N; }
for i in $(seq 1 "$ROUNDS"); do
  t0=$(now_ms)
  "$BIN" cluster up --nodes 5 --ssh --prefix "$PREFIX" --subnet "$SUBNET" >/dev/null
  t1=$(now_ms)
  "$BIN" cluster down --prefix "$PREFIX" 2>/dev/null
  t2=$(now_ms)
  echo "cli:     5-node cluster up --ssh $((t1 - t0)) ms, down $((t2 - t1)) ms, total $((t2 - t0)) ms (target < 2000)"
done
ROUNDS="$ROUNDS" "$CARGO_TARGET_DIR/$dir/examples/bench"

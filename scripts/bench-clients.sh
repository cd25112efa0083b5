#!/usr/bin/env bash
# Client throughput against real servers (issue 17), as root with etcd, Patroni and
# PostgreSQL 15 installed: ops/s of 15 s of the `set` workload without faults on 3 nodes,
# for etcd and PostgreSQL + Patroni, plain and with TLS and authentication on (the
# examples' *-tls.toml files). With a second faultline binary as the argument (an older
# build), its plain figures are printed too, for a before/after.
# Usage: sudo scripts/bench-clients.sh [OLD_FAULTLINE]   (prefix flbc-, 10.77.110.0/24)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p faultline -p leaderkv -p clockshim
BIN="$CARGO_TARGET_DIR/release/faultline"
OLD="${1:-}"
store=$(mktemp -d)
cleanup() {
  "$BIN" cluster down --prefix flbc- >/dev/null 2>&1 || true
  rm -rf "$store"
}
trap cleanup EXIT
rate() { # label, binary, then the flags of one run: prints its client ops/s
  local label=$1 bin=$2; shift 2
  "$bin" test --store "$store" --prefix flbc- --subnet 10.77.110.0/24 --nodes 3 \
    --workload set --nemesis none --time-limit 15s --seed 1 "$@" >"$store/out" 2>&1 || true
  printf '%-44s %s\n' "$label" "$(grep -o '[0-9]* client ops in [0-9.]* s ([0-9]*/s)' "$store/out" || echo "no figure: $(tail -1 "$store/out")")"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for sys in etcd postgres-patroni; do
  if [ -n "$OLD" ]; then
    rate "$sys, before (given binary):" "$OLD" --system-file "examples/systems/$sys.toml"
  fi
  rate "$sys:" "$BIN" --system-file "examples/systems/$sys.toml"
  rate "$sys with TLS and auth:" "$BIN" --system-file "examples/systems/$sys-tls.toml"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Benchmark of `faultline test` (root): a 5-node local cluster, leaderkv in async mode, 50
# clients, no faults; prints the client ops/s the harness recorded, the harness's own CPU
# share during the workload, and the time from command start to the first op.
#
#   sudo scripts/bench-test.sh [SECONDS] [ROUNDS]      (PROFILE=debug for a dev build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
ROUNDS=${2:-3}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p faultline -p leaderkv
BIN="$TARGET/$PROFILE/faultline"
STORE=$(mktemp -d)
trap '"$BIN" cluster down --prefix flb- >/dev/null 2>&1 || true; rm -rf "$STORE"' EXIT
for i in $(seq "$ROUNDS"); do
  "$BIN" test --nodes 5 --concurrency 50 --mode async --nemesis none --workload set,unique-ids \
    --time-limit "${SECS}s" --prefix flb- --subnet 10.77.69.0/24 --store "$STORE" --seed "$i" \
    >/dev/null 2>"$STORE/stderr" || { cat "$STORE/stderr"; exit 1; }
  python3 - "$STORE/latest/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["run"]
print(f"ops/s {r['client_ops_per_s']:.0f}  harness CPU {100*r['harness_cpu_share']:.0f}% of one core "
      f"({100*r['harness_cpu_share']/r['cpus']:.0f}% of {r['cpus']} cores)  first op {r['first_op_after_s']:.2f} s")
PY
done

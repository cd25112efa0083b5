#!/usr/bin/env bash
# Detection power of the default flags on this machine (root): `faultline power` over
# leaderkv's seeded bugs and the correct build, on its own cluster (flq-), optionally with a
# CPU hog on every core (HOG=1) to play a busy CI runner. Prints the table (stdout) and
# leaves power.json in the store it names.
#
#   sudo scripts/power.sh [RUNS] [TIME_LIMIT]            default 10 seeds of 30s
#   sudo HOG=1 scripts/power.sh 5 30s                    the same under a CPU hog
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
LIMIT=${2:-30s}
cargo build -q --release -p faultline -p leaderkv -p clockshim
BIN=target/release/faultline
STORE=${STORE:-$(mktemp -d)}
hogs=()
cleanup() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  "$BIN" cluster down --prefix flq- >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [ "${HOG:-0}" = 1 ]; then
  # Bounded: each hog ends by itself after two hours at most.
  for _ in $(seq "$(nproc)"); do
    timeout 7200 sh -c 'while :; do :; done' &
    hogs+=($!)
  done
  echo "power.sh: $(nproc) CPU hogs running (pids ${hogs[*]})" >&2
fi
"$BIN" power --runs "$RUNS" --store "$STORE" -- \
  --prefix flq- --subnet 10.77.89.0/24 --time-limit "$LIMIT"
echo "store: $STORE" >&2

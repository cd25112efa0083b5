#!/usr/bin/env bash
# `faultline serve` under slow readers (issue 18): 10 clients download a 1 GB file of the
# store at once, each limited to RATE (default 20M bytes/s); prints the server's peak RSS
# (goal: under 100 MB) and whether every download arrived whole. Loopback only.
# Usage: scripts/bench-serve.sh [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p faultline
BIN="$CARGO_TARGET_DIR/release/faultline"
RATE="${1:-20M}"
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/store/big/20260101T000000.000Z"
f="$work/store/big/20260101T000000.000Z/history.jsonl"
head -c 1000000000 /dev/zero > "$f"
"$BIN" serve --store "$work/store" --bind 127.0.0.1:0 2> "$work/serve.err" &
pid=$!
for _ in $(seq 50); do grep -q http:// "$work/serve.err" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*/' "$work/serve.err")big/20260101T000000.000Z/history.jsonl
echo "serving $url to 10 readers at $RATE/s each"
t0=$(date +%s.%N)
for i in $(seq 10); do
  curl -s --limit-rate "$RATE" -o "$work/dl$i" "$url" &
done
peak=0
while [ "$(jobs -r | wc -l)" -gt 1 ]; do
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  [ "$hwm" -gt "$peak" ] && peak=$hwm
  sleep 0.5
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
t1=$(date +%s.%N)
whole=0
for i in $(seq 10); do
  [ "$(stat -c %s "$work/dl$i")" = 1000000000 ] && whole=$((whole + 1))
done
printf 'peak RSS of serve: %d MB; %d of 10 downloads whole; %.1f s\n' \
  "$((peak / 1024))" "$whole" "$(echo "$t1 - $t0" | bc)"

#!/usr/bin/env bash
# The list-append checker's speed and memory: generates valid list-append histories of
# 10k, 100k and 1M transactions (checkers/examples/list_append_history.rs: 10 processes,
# 1-4 micro-ops a txn, 8 active keys of up to 32 appends) and times `faultline check` on
# each (wall seconds, peak RSS), then one with stale reads, which must be invalid.
#
#   scripts/bench-list-append.sh [SIZES...]     # default: 10000 100000 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-10000 100000 1000000}")
read -r -a sizes <<< "${sizes[*]}"
cargo build -q --release -p faultline
cargo build -q --release -p checkers --example list_append_history
bin=target/release
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf '%-10s %-12s %-10s %-10s %s\n' txns ops check_s rss_mb verdict
for n in "${sizes[@]}"; do
  "$bin/examples/list_append_history" "$n" > "$dir/h.jsonl"
  ops=$(wc -l < "$dir/h.jsonl")
  set +e
  /usr/bin/time -f '%e %M' -o "$dir/time" "$bin/faultline" -q check "$dir/h.jsonl" > "$dir/out"
  code=$?
  set -e
  read -r secs kb < <(tail -1 "$dir/time")
  printf '%-10s %-12s %-10s %-10s %s\n' "$n" "$ops" "$secs" "$((kb / 1024))" "$(grep '^verdict' "$dir/out") (exit $code)"
done
n=100000
"$bin/examples/list_append_history" "$n" --stale 1000 > "$dir/h.jsonl"
set +e
/usr/bin/time -f '%e %M' -o "$dir/time" "$bin/faultline" -q check "$dir/h.jsonl" > "$dir/out"
code=$?
set -e
read -r secs kb < <(tail -1 "$dir/time")
printf '%-10s %-12s %-10s %-10s %s\n' "$n+stale" "$(wc -l < "$dir/h.jsonl")" "$secs" "$((kb / 1024))" "$(grep '^verdict' "$dir/out") (exit $code)"

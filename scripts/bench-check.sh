#!/usr/bin/env bash
# Figures for `faultline check` on big generated JSONL histories (issue 2):
#   - set + unique-ids on a 10-million-op history: wall time and peak memory (RSS)
#     (targets: under 5 s and under 2 GB on a 2-core machine)
#   - a ~100 MB history: peak memory stays far below the file size (the text is streamed)
# Usage: scripts/bench-check.sh [OPS]   (default 10000000; needs ~1.2 GB in $TMPDIR)
# The machine may be shared: the load average is printed with the figures, and CPU time
# (user + sys) is the steadier number to compare.
# The linearizability figures come from `cargo bench -p checkers --bench linearizable`.
set -euo pipefail
cd "$(dirname "$0")/.."
OPS="${1:-10000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p faultline -p history --example gen_history --bin faultline
BIN="$CARGO_TARGET_DIR/release/faultline"
GEN="$CARGO_TARGET_DIR/release/examples/gen_history"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # label, then the command; prints wall seconds, peak RSS, verdict line
  local label=$1; shift
  /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" >"$work/out" 2>/dev/null || true
  # time(1) puts "Command exited with non-zero status N" first when the verdict is invalid.
  read -r wall rss user sys < <(tail -n1 "$work/time")
  printf '%-44s %6.2f s wall  %6.2f s cpu  %7.0f MB peak RSS  (%s)\n' \
    "$label" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "$rss / 1024" | bc)" "$(tail -n1 "$work/out")"
}

"$GEN" "$OPS" "$work/big.jsonl" --lose 3 2>/dev/null
size=$(du -m "$work/big.jsonl" | cut -f1)
echo "history: $OPS ops, $size MB, 3 acknowledged adds lost; $(nproc) cores"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in 1 2 3; do
  measure "check (set + unique-ids), run $i" "$BIN" check "$work/big.jsonl"
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$work/big.jsonl"

"$GEN" 900000 "$work/mid.jsonl" 2>/dev/null
size=$(du -m "$work/mid.jsonl" | cut -f1)
measure "check, $size MB history" "$BIN" check "$work/mid.jsonl"

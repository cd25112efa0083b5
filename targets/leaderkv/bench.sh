#!/usr/bin/env bash
# Build leaderkv in release mode and run the 3-node throughput benchmark on 127.0.0.1.
# Usage: targets/leaderkv/bench.sh [SECONDS] [CLIENTS] [DEPTH]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-leaderkv}"
cargo build --release -p leaderkv --bin leaderkv --example bench
exec "$CARGO_TARGET_DIR/release/examples/bench" "$@"

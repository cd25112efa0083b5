#!/usr/bin/env bash
# The quick start, on a fresh Debian 12 machine with Rust: installs the Debian packages that
# are missing (scripts/packages.txt, with apt-get, saying what), builds faultline, and runs
# its default test on a local cluster, or the whole test suite.
#
#   scripts/quickstart.sh [--no-install] [FAULTLINE-TEST-ARGS...]   # build + faultline test
#   scripts/quickstart.sh --tests [--no-install]                      # cargo test --workspace
#
# --no-install (or FAULTLINE_NO_INSTALL=1) installs nothing: a missing package is named and
# the script stops (exit 254). The cluster needs root: run it as root, or it uses sudo for
# apt-get and for the test (building stays with you).
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0
args=()
for a in "$@"; do
  case "$a" in
    --tests) tests=1 ;;
    --no-install) export FAULTLINE_NO_INSTALL=1 ;;
    *) args+=("$a") ;;
  esac
done

if ! command -v cargo >/dev/null; then
  echo "quickstart: cargo not found: install Rust (https://rustup.rs), then run this again" >&2
  exit 254
fi

if [ "$tests" = 1 ]; then
  scripts/setup.sh build run test
  exec cargo test --workspace "${args[@]}"
fi

scripts/setup.sh build run
cargo build --release -p faultline -p leaderkv -p clockshim
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "quickstart: the local cluster needs root: run this as root" >&2; exit 254; }
  as_root=(sudo --preserve-env=RUST_LOG,NO_COLOR,FAULTLINE_STORE)
fi
exec "${as_root[@]}" ./target/release/faultline test "${args[@]}"

#!/usr/bin/env bash
# A release archive of faultline: the faultline binary with the programs it finds beside
# itself (leaderkv, the clock shim libclockshim.so and its helper faultline-clock), the
# docs and the example system files, as faultline-VERSION-ARCH-linux.tar.gz. Unpacked
# anywhere, `./faultline-*/faultline test` runs with nothing else installed but the Debian
# packages of the `run` group (scripts/packages.txt).
#
#   scripts/package.sh [OUT_DIR]          # default dist/; prints the archive's path
#
# FAULTLINE_PACKAGE_PROFILE=dev builds the debug profile instead of release (faster, for
# trying the layout); FAULTLINE_PACKAGE_FROM=DIR packs the programs already built in DIR
# instead of building (the test suite packs its own build that way).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
profile="${FAULTLINE_PACKAGE_PROFILE:-release}"
if [ -n "${FAULTLINE_PACKAGE_FROM:-}" ]; then
  bin_dir="$FAULTLINE_PACKAGE_FROM"
else
  cargo build --locked --profile "$profile" -p faultline -p leaderkv -p clockshim >&2
  case "$profile" in
    dev) bin_dir="${CARGO_TARGET_DIR:-target}/debug" ;;
    *) bin_dir="${CARGO_TARGET_DIR:-target}/$profile" ;;
  esac
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
name="faultline-$version-$(uname -m)-linux"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
for f in faultline leaderkv libclockshim.so faultline-clock; do
  [ -f "$bin_dir/$f" ] || { echo "package: $bin_dir/$f is missing: build it first" >&2; exit 254; }
  cp "$bin_dir/$f" "$stage/$name/"
done
cp -r README.md docs examples scripts "$stage/$name/"
mkdir -p "$out"
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"

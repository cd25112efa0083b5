#!/usr/bin/env bash
# Tries README's quick start on a clean Debian 12 with nothing installed but Rust: a
# minimal Debian 12 root file system (debootstrap --variant=minbase, from Debian's mirror; no
# registry needed) imported as a Docker image, this machine's Rust toolchain mounted
# read-only, a fresh clone of this repository, and `scripts/quickstart.sh` run inside a
# privileged container (namespaces and iptables need it). Prints the quick start's output
# and exits with its code. Needs root and Docker; takes a few minutes (apt-get, crates.io,
# a release build).
#
#   scripts/try-fresh-debian.sh [QUICKSTART-ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
image="faultline-fresh-debian:12"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

if ! docker image inspect "$image" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  echo "try-fresh-debian: building $image with debootstrap (minbase)" >&2
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$work/rootfs" -c . | docker import - "$image" >/dev/null
  rm -rf "$work/rootfs"
fi
git clone -q --no-hardlinks . "$work/faultline"
name="faultline-fresh-$$"
docker run --rm --name "$name" --privileged \
  -v "$rustup_home:/opt/rustup:ro" -v "$cargo_bin:/opt/cargo-bin:ro" \
  -v "$work/faultline:/src/faultline" \
  -e RUSTUP_HOME=/opt/rustup -e CARGO_HOME=/root/.cargo \
  -e PATH=/opt/cargo-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  -e RUSTUP_TOOLCHAIN="$(rustc --version | awk '{print $2}')" \
  -w /src/faultline "$image" scripts/quickstart.sh "$@"

#!/usr/bin/env bash
# Tries README's quick start on a clean Debian 12 with nothing installed but Rust: a
# minimal Debian 12 root file system (debootstrap --variant=minbase, from Debian's mirror; no
# registry needed) imported as a Docker image, this machine's Rust toolchain mounted
# read-only, a fresh clone of this repository, and `scripts/quickstart.sh` run inside a
# container with every capability (namespaces and iptables need them). Prints the quick start's output
# and exits with its code. Needs root and Docker; takes a few minutes (apt-get, crates.io,
# a release build).
#
#   scripts/try-fresh-debian.sh [QUICKSTART-ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
image="faultline-fresh-debian:12"
# This machine's CA bundle goes in for cargo only (a network that intercepts TLS signs
# crates.io with a CA of its own; the container's packages stay Debian's).
# The toolchain itself (not rustup's proxies, which would want to write their state).
sysroot="$(rustc --print sysroot)"
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
# Every capability but the one a container host may lack itself (--privileged asks for all
# and fails there), and no seccomp/AppArmor filter: namespaces, mounts and iptables inside.
docker run --rm --name "$name" --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  -v "$sysroot:/opt/rust:ro" \
  -v "$work/faultline:/src/faultline" \
  -v /etc/ssl/certs/ca-certificates.crt:/opt/host-ca.crt:ro \
  -e CARGO_HOME=/root/.cargo -e CARGO_HTTP_CAINFO=/opt/host-ca.crt \
  -e PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  -w /src/faultline "$image" scripts/quickstart.sh "$@"

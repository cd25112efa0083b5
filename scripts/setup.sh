#!/usr/bin/env bash
# Installs the Debian packages of the groups named (build, run, test; scripts/packages.txt)
# that are missing, with apt-get, saying what it installs. As root, or through sudo.
#
#   scripts/setup.sh build run          # what the quick start needs
#   scripts/setup.sh build run test     # what the test suite needs (and CI)
#
# Refuse to install anything with --no-install or FAULTLINE_NO_INSTALL=1: then it lists
# what is missing and exits 254 when something is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
list="$here/packages.txt"

no_install="${FAULTLINE_NO_INSTALL:-0}"
groups=()
for a in "$@"; do
  case "$a" in
    --no-install) no_install=1 ;;
    build|run|test) groups+=("$a") ;;
    *) echo "setup: unknown argument '$a' (groups: build, run, test; flag: --no-install)" >&2; exit 254 ;;
  esac
done
[ "${#groups[@]}" -gt 0 ] || groups=(build run)

wanted=()
for g in "${groups[@]}"; do
  line="$(grep -E "^$g:" "$list" || true)"
  [ -n "$line" ] || { echo "setup: no group '$g' in $list" >&2; exit 254; }
  read -r -a pkgs <<< "${line#*:}"
  wanted+=("${pkgs[@]}")
done

if ! command -v dpkg-query >/dev/null; then
  echo "setup: not a Debian system (no dpkg-query): install the equivalents of: ${wanted[*]}" >&2
  exit 0
fi

missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The Docker tests need an engine: the project's machines run Docker's own; a bare Debian 12
# gets Debian's (only when there is no docker at all: docker.io conflicts with docker-ce).
if printf '%s\n' "${groups[@]}" | grep -qx test && ! command -v docker >/dev/null; then
  missing+=(docker.io)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: every package of ${groups[*]} is installed" >&2
else
  if [ "$no_install" = 1 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (install them: apt-get install ${missing[*]}; left alone because of --no-install/FAULTLINE_NO_INSTALL)" >&2
    exit 254
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: installing ${missing[*]} needs root: run as root or install sudo" >&2; exit 254; }
    sudo="sudo"
  fi
  echo "setup: installing with apt-get: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: installed ${#missing[@]} package(s)" >&2
fi

# An installed engine that is not running (a container, a machine without systemd).
if printf '%s\n' "${groups[@]}" | grep -qx test && command -v docker >/dev/null \
   && ! docker info >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "setup: starting dockerd (log: /var/log/faultline-dockerd.log)" >&2
  (dockerd >/var/log/faultline-dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi

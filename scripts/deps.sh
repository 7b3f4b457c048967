#!/usr/bin/env bash
# Installs every Debian package WebEncode needs to build, run and test.
# Idempotent: when everything is already installed it does nothing (no apt-get at all).
# Usage: scripts/deps.sh [--check]   (--check: exit 1 if something is missing, install nothing)
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config cmake ninja-build clang libclang-rt-14-dev
  # libraries
  libpq-dev libnats-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev uuid-dev
  libavformat-dev libavcodec-dev libavutil-dev
  # services and tools used at run time and by tests
  postgresql nats-server ffmpeg curl ca-certificates procps jq
  # tests and benchmarks
  libcmocka-dev valgrind wrk python3 python3-yaml python3-jsonschema
)

missing=()
for p in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = --check ]; then
  echo "missing packages: ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

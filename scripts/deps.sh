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
  libcjose-dev
  libavformat-dev libavcodec-dev libavutil-dev
  # services and tools used at run time and by tests
  postgresql nats-server ffmpeg curl ca-certificates procps jq openssl
  # tests and benchmarks
  libcmocka-dev valgrind wrk python3 python3-yaml python3-jsonschema
  # promtool (check metrics / rules); its daemon is stopped below
  prometheus
)

# Node.js runs the npm test peers (tests/peers: oidc-provider); Debian's or a newer one.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)

# The npm test peers: `npm ci` in tests/peers when node_modules is missing or was
# installed from another package-lock.json (its sha256 is kept in node_modules).
peers_npm() {
  local dir want have=
  dir=$(cd "$(dirname "$0")/.." && pwd)/tests/peers
  [ -f "$dir/package-lock.json" ] || return 0
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  [ -f "$dir/node_modules/.we-lock-sha256" ] && have=$(cat "$dir/node_modules/.we-lock-sha256")
  [ "$want" = "$have" ] && return 0
  if [ "${1:-}" = --check ]; then
    echo "npm test peers not installed: tests/peers/node_modules" >&2
    return 1
  fi
  echo "deps: npm ci in tests/peers" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$dir/node_modules/.we-lock-sha256"
}

missing=()
for p in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  peers_npm "${1:-}"
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

# The prometheus package ships a service and enables it; the tests need only
# promtool, so a freshly installed daemon is stopped and disabled (in a
# container without an init system it never starts).
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif command -v service >/dev/null; then
    $SUDO service prometheus stop >/dev/null 2>&1 || true
  fi
fi

peers_npm

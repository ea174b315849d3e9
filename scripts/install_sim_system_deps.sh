#!/usr/bin/env bash
# Debian/Ubuntu system libraries for headless MuJoCo rendering (EGL, with OSMesa as the fallback backend).
# Idempotent and quiet: installs only what is missing; needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(libegl1 libgl1 libgl1-mesa-dri libosmesa6)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_sim_system_deps: not a Debian-based system; install EGL/OSMesa GL libraries yourself" >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_sim_system_deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Output is kept and shown only if a step fails, so a normal run prints nothing.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi

#!/usr/bin/env bash
# Install what vio4wd needs from Debian 12 (run as root); only packages that
# are missing are installed, so a second run is quick and offline.
set -euo pipefail

PACKAGES=(
  # data plane: DPDK 22.11 runtime (PMDs, dpdk-testpmd) and headers
  dpdk dpdk-dev libdpdk-dev pkg-config build-essential
  # Python side: venv and headers for the cffi extension
  python3 python3-venv python3-dev libffi-dev
  # namespaces, veths, stdbuf
  iproute2 coreutils procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-host: missing Debian packages: ${missing[*]}; run as root" >&2
    exit 1
  fi
  echo "install-host: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

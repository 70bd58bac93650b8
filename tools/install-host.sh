#!/usr/bin/env bash
# Install what vio4wd needs from Debian 12 (run as root); only packages that
# are missing are installed, so a second run is quick and offline.
#   tools/install-host.sh          what the agent and the tests need
#   tools/install-host.sh --bench  also what the benchmarks compare against
set -euo pipefail

PACKAGES=(
  # data plane: DPDK 22.11 runtime (PMDs, dpdk-testpmd) and headers
  dpdk dpdk-dev libdpdk-dev pkg-config build-essential
  # Python side: venv and headers for the cffi extension
  python3 python3-venv python3-dev libffi-dev
  # namespaces, veths, stdbuf
  iproute2 coreutils procps
  # the OVSDB watcher: ovsdb-server, ovsdb-tool, ovs-vsctl (no vswitchd
  # needed; the tests run ovsdb-server on a private db)
  openvswitch-switch openvswitch-common
  # the libvirt watcher (libvirt-python builds against libvirt-dev) and
  # the end-to-end guest: QEMU under libvirtd, a Debian kernel and a
  # busybox initramfs built by tools/build-guest.sh
  libvirt-daemon-system libvirt-dev qemu-system-x86
  busybox-static cpio gzip xz-utils zstd
)
if [[ "${1:-}" == "--bench" ]]; then
  # OVS-DPDK as a peer to compare with
  PACKAGES+=(openvswitch-switch-dpdk openvswitch-common)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-host: missing Debian packages: ${missing[*]}; run as root" >&2
  exit 1
fi
echo "install-host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Daemons these packages ship (ovs, ...) are started by the tests and
# benchmarks themselves, never by the package: keep apt from starting them.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

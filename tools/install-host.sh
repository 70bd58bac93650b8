#!/usr/bin/env bash
# Install what vio4wd needs on Debian 12 (run as root).  Idempotent: only
# what is missing is installed or fetched, so a second run is quick and
# needs no network.
#   tools/install-host.sh          what the agent and the tests need
#   tools/install-host.sh --bench  also what the benchmarks compare against
#
# Besides Debian packages it makes sure of:
# - the accounts the defaults name: group `kvm` and user `libvirt-qemu`
#   (the vhost-user sockets' owner and group, and QEMU's user in the
#   tests' private libvirtd);
# - the end-to-end guest's kernel package, fetched once into
#   $VIO4WD_CACHE (default /var/cache/vio4wd), so that building the guest
#   (tools/build-guest.sh) needs no network.
set -euo pipefail

CACHE=${VIO4WD_CACHE:-/var/cache/vio4wd}
PACKAGES=(
  # data plane: DPDK 22.11 runtime (PMDs, dpdk-testpmd) and headers
  dpdk dpdk-dev libdpdk-dev pkg-config build-essential
  # Python side: venv and headers for the cffi extension
  python3 python3-venv python3-dev libffi-dev
  # namespaces, veths, stdbuf, accounts
  iproute2 coreutils procps passwd
  # the OVSDB watcher: ovsdb-server, ovsdb-tool, ovs-vsctl (no vswitchd
  # needed; the tests run ovsdb-server on a private db)
  openvswitch-switch openvswitch-common
  # the libvirt watcher (libvirt-python builds against libvirt-dev) and
  # the end-to-end guest: QEMU under libvirtd, a Debian kernel and a
  # busybox initramfs built by tools/build-guest.sh
  libvirt-daemon-system libvirt-dev qemu-system-x86
  busybox-static cpio gzip xz-utils zstd
  # the Neutron tests: RabbitMQ (oslo.messaging's broker) and MariaDB
  # (Neutron's database); both started by the tests on private dirs
  rabbitmq-server mariadb-server
  # deployment checks: shellcheck on the devstack plugin and tools,
  # systemd-analyze verify on the units
  shellcheck systemd
  # the sanitizer build of the data plane (make test-asan): gcc's runtimes
  libasan8 libubsan1
)
if [[ "${1:-}" == "--bench" ]]; then
  # OVS-DPDK as a peer to compare with
  PACKAGES+=(openvswitch-switch-dpdk openvswitch-common)
fi

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-host: $1; run as root" >&2
    exit 1
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
updated=0
if ((${#missing[@]})); then
  need_root "missing Debian packages: ${missing[*]}"
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
  updated=1
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Accounts the defaults and the tests name (the packages above normally
# create them; a host where they are missing gets them here).
if ! getent group kvm >/dev/null; then
  need_root "group kvm missing"
  groupadd --system kvm
fi
if ! getent passwd libvirt-qemu >/dev/null; then
  need_root "user libvirt-qemu missing"
  useradd --system --gid kvm --no-create-home --home-dir /var/lib/libvirt \
    --shell /usr/sbin/nologin libvirt-qemu
fi

# The guest kernel: Debian's linux-image-amd64 as a .deb (not installed).
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-/{print $2; exit}'
}
debs=$CACHE/debs
if ! ls "$debs"/linux-image-*.deb >/dev/null 2>&1; then
  need_root "the guest kernel package is not in $debs"
  mkdir -p "$debs"
  pkg=$(kernel_pkg)
  if [[ -z $pkg ]] || ! (cd "$debs" && apt-get download -q "$pkg" >/dev/null 2>&1); then
    ((updated)) || apt-get update -q >/dev/null
    pkg=$(kernel_pkg)
    [[ -n $pkg ]] || { echo "install-host: no linux-image-amd64 in apt" >&2; exit 1; }
    (cd "$debs" && apt-get download -q "$pkg" >/dev/null)
  fi
  echo "install-host: guest kernel $pkg in $debs"
fi

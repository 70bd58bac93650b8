#!/bin/busybox sh
# shellcheck shell=dash
# init of the end-to-end test guest: bring up eth0 from the kernel command
# line (v4w_ip=, v4w_peer=), ping the peer through the relay, report on the
# console, then stay up answering pings.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
         virtio_pci failover net_failover virtio_net; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
# the command line's words, one by one
# shellcheck disable=SC2013
for arg in $(cat /proc/cmdline); do
  case $arg in v4w_ip=*) ip=${arg#v4w_ip=} ;; v4w_peer=*) peer=${arg#v4w_peer=} ;; esac
done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
ip link set lo up
ip link set eth0 up
ip addr add "$ip" dev eth0
echo "GUEST: eth0 up $ip"
n=0
until ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do
  n=$((n+1)); [ $n -gt 120 ] && break
done
if ping -c 3 -W 2 "$peer"; then echo "GUEST: PING_OK"; else echo "GUEST: PING_FAIL"; fi
while true; do sleep 3600; done

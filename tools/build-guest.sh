#!/usr/bin/env bash
# Build a tiny guest for the end-to-end tests: Debian's kernel and a
# busybox initramfs that loads virtio-net and runs the script in
# $GUEST_SCRIPT (or tools/guest-init.sh) as init.
#   tools/build-guest.sh OUTDIR      -> OUTDIR/vmlinuz, OUTDIR/initramfs.gz
set -euo pipefail
out=${1:?usage: build-guest.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
[[ -s $out/vmlinuz && -s $out/initramfs.gz ]] && exit 0
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-/{print $2; exit}'
}
pkg=$(kernel_pkg)
if [[ -z $pkg ]] || ! (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1); then
  apt-get update -q >/dev/null           # no package lists yet
  pkg=$(kernel_pkg)
  [[ -n $pkg ]] || { echo "build-guest: no linux-image-amd64 in apt" >&2; exit 1; }
  (cd "$work" && apt-get download -q "$pkg" >/dev/null)
fi
dpkg -x "$work"/linux-image-*.deb "$work/kernel"
version=$(ls "$work/kernel/lib/modules")
mods=$work/kernel/lib/modules/$version/kernel

root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,lib/modules,tmp}
cp /bin/busybox "$root/bin/busybox"
for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci net/core/failover drivers/net/net_failover \
         drivers/net/virtio_net; do
  f=$(ls "$mods/$m".ko* 2>/dev/null | head -1)
  [[ -n $f ]] || continue           # built in
  case $f in
    *.xz) xz -dc "$f" > "$root/lib/modules/$(basename "$m").ko" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$(basename "$m").ko" ;;
    *) cp "$f" "$root/lib/modules/$(basename "$m").ko" ;;
  esac
done
install -m 0755 "${GUEST_SCRIPT:-$here/guest-init.sh}" "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.gz"
cp "$work"/kernel/boot/vmlinuz-* "$out/vmlinuz"
chmod 0644 "$out/vmlinuz" "$out/initramfs.gz"

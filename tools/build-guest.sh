#!/usr/bin/env bash
# Build a tiny guest for the end-to-end tests: Debian's kernel and a
# busybox initramfs that loads virtio-net and runs the script in
# $GUEST_SCRIPT (or tools/guest-init.sh) as init.  Needs no network: the
# kernel package is the one tools/install-host.sh fetched into
# $VIO4WD_CACHE/debs (default /var/cache/vio4wd/debs).
#   tools/build-guest.sh OUTDIR      -> OUTDIR/vmlinuz, OUTDIR/initramfs.gz
set -euo pipefail
out=${1:?usage: build-guest.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
debs=${VIO4WD_CACHE:-/var/cache/vio4wd}/debs
[[ -s $out/vmlinuz && -s $out/initramfs.gz ]] && exit 0
deb=$(find "$debs" -maxdepth 1 -name 'linux-image-*.deb' 2>/dev/null |
      sort -V | tail -1 || true)
if [[ -z $deb ]]; then
  echo "build-guest: no kernel package in $debs; run tools/install-host.sh" \
       "(make install) first" >&2
  exit 1
fi
[[ -x /bin/busybox ]] || { echo "build-guest: /bin/busybox missing (busybox-static); run tools/install-host.sh" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dpkg -x "$deb" "$work/kernel"
version=$(ls "$work/kernel/lib/modules")
mods=$work/kernel/lib/modules/$version/kernel

root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,lib/modules,tmp}
cp /bin/busybox "$root/bin/busybox"
for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci net/core/failover drivers/net/net_failover \
         drivers/net/virtio_net; do
  f=$(find "$(dirname "$mods/$m")" -maxdepth 1 \
         -name "$(basename "$m").ko*" 2>/dev/null | head -1)
  [[ -n $f ]] || continue           # built in
  case $f in
    *.xz) xz -dc "$f" > "$root/lib/modules/$(basename "$m").ko" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$(basename "$m").ko" ;;
    *) cp "$f" "$root/lib/modules/$(basename "$m").ko" ;;
  esac
done
install -m 0755 "${GUEST_SCRIPT:-$here/guest-init.sh}" "$root/init"
# Written beside the target and renamed: a build cut short leaves no
# half file that the check at the top would take for a finished one.
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.gz.tmp"
cp "$work"/kernel/boot/vmlinuz-* "$out/vmlinuz.tmp"
chmod 0644 "$out/vmlinuz.tmp" "$out/initramfs.gz.tmp"
mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"

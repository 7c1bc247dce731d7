#!/bin/sh
# test/guest/setup.sh [KERNEL-PACKAGE]
#
# Prepares what test/guest/vm.sh boots: QEMU and busybox from Debian (installed only when
# missing), a Debian kernel taken from its .deb (extracted, never installed), and a busybox
# initramfs holding that kernel's modules for the NVDIMM, 9p and a virtio disk plus our init.
#
# KERNEL-PACKAGE defaults to linux-image-amd64, Debian 12's kernel (6.1): the package it
# depends on (linux-image-6.1.0-N-amd64) is the one downloaded. linux-image-6.12-amd64
# (bookworm-security) works the same way.
#
# Everything lands in $NUMACTLX_GUEST_CACHE (default /var/cache/numactlx-guest)/KVER/, and
# KVER is written to $NUMACTLX_GUEST_CACHE/default-kernel when the default package is used.
# A second run downloads nothing; it rebuilds the initramfs (a second), so edits to init count.
set -eu

here=$(dirname "$(readlink -f "$0")")
cache=${NUMACTLX_GUEST_CACHE:-/var/cache/numactlx-guest}
pkg=${1:-linux-image-amd64}
export DEBIAN_FRONTEND=noninteractive

say() { echo "guest setup: $*"; }
die() { echo "guest setup: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, and the guest's files are root's)"

# --- Debian packages: QEMU, a static busybox for the initramfs, cpio to pack it, e2fsprogs
# for the guest's disk. apt-get update only when something is missing.
need=
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
# the initramfs needs a static busybox (busybox-static replaces Debian's dynamic busybox)
{ [ -x /bin/busybox ] && /bin/busybox --list | grep -qx modprobe && ! ldd /bin/busybox >/dev/null 2>&1; } || need="$need busybox-static"
command -v cpio >/dev/null || need="$need cpio"
command -v mkfs.ext4 >/dev/null || need="$need e2fsprogs"
command -v xz >/dev/null || need="$need xz-utils"    # 6.12's modules are .ko.xz
if [ -n "$need" ]; then
  say "installing$need"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $need >/dev/null
fi
ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is still dynamically linked after installing busybox-static"

# --- The kernel: a meta package (linux-image-amd64, linux-image-6.12-amd64) names the real
# one in its Depends; a real one (linux-image-6.1.0-57-amd64) depends on no other image.
deps_of() { apt-cache depends "$1" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'; }
apt-cache show "$pkg" >/dev/null 2>&1 || apt-get update -q >/dev/null
apt-cache show "$pkg" >/dev/null 2>&1 || die "no package $pkg (apt-cache show $pkg)"
real=$pkg
while next=$(deps_of "$real") && [ -n "$next" ]; do real=$next; done
kver=${real#linux-image-}
kver=${kver%-unsigned}
dir=$cache/$kver
mkdir -p "$dir"
if [ ! -f "$dir/vmlinuz" ] || [ ! -f "$dir/modules.dep.full" ]; then
  say "downloading $real"
  work=$(mktemp -d "$cache/.download.XXXXXX")
  # apt-get download writes to the current directory; run as root it warns that _apt
  # cannot write there (it downloads unsandboxed, which is what we want here).
  (cd "$work" && apt-get download -q "$real" 2>&1 | grep -v 'unsandboxed' || true)
  deb=$(ls "$work"/*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || die "apt-get download $real gave no .deb"
  dpkg-deb -x "$deb" "$work/x"
  rm -rf "$dir/lib"; mkdir -p "$dir/lib"
  mv "$work/x/lib/modules" "$dir/lib/modules"
  cp "$work/x/boot/config-$kver" "$dir/config"
  # modules.dep is made by depmod at install time; the .deb has none. busybox's depmod writes one.
  busybox depmod -b "$dir" "$kver"
  cp "$dir/lib/modules/$kver/modules.dep" "$dir/modules.dep.full"
  mv "$work/x/boot/vmlinuz-$kver" "$dir/vmlinuz"
  rm -rf "$work"
fi

# --- The modules the guest loads, with what they depend on (modules.dep lists a module's
# dependencies; busybox modprobe in the guest loads them in the right order).
#   nfit, nd_pmem, dax_pmem, device_dax: the ACPI NVDIMM and its devdax namespace
#     (dax_pmem does not depend on device_dax by symbol, but needs it to bind /dev/dax0.0)
#   virtio_pci, 9pnet_virtio, 9p: the host's / and the shared directories
#   virtio_blk, ext4, crc32c_generic: the guest's disk (ext4 asks the crypto API for crc32c)
wanted="nfit nd_pmem dax_pmem device_dax virtio_pci 9pnet_virtio 9p virtio_blk ext4 crc32c_generic"
mods=$dir/lib/modules/$kver
list=
for m in $wanted; do
  line=$(grep -E "/$m\.ko(\.xz|\.zst|\.gz)?:" "$dir/modules.dep.full" || true)
  if [ -z "$line" ]; then
    grep -qE "/$m\.ko\$" "$mods/modules.builtin" || die "module $m: not in $real"
    continue
  fi
  list="$list $(echo "$line" | tr -d ':')"
done
list=$(echo $list | tr ' ' '\n' | sort -u)

root=$(mktemp -d "$cache/.initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/host" "$root/share"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# the kernel runs /sbin/modprobe for modules it asks for itself (request_module)
ln -s ../bin/busybox "$root/sbin/modprobe"
km=$root/lib/modules/$kver
# Compressed modules (6.12's are .ko.xz) are stored uncompressed: busybox insmod reads plain ones.
for f in $list; do
  mkdir -p "$km/$(dirname "$f")"
  case $f in
    *.xz) xz -dc "$mods/$f" > "$km/${f%.xz}";;
    *.zst) zstd -qdc "$mods/$f" > "$km/${f%.zst}";;
    *.gz) gzip -dc "$mods/$f" > "$km/${f%.gz}";;
    *) cp "$mods/$f" "$km/$f";;
  esac
done
cp "$mods/modules.builtin" "$mods/modules.order" "$km/" 2>/dev/null || true
busybox depmod -b "$root" "$kver"
echo "$wanted" > "$root/modules"
cp "$here/init" "$root/init"
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/initramfs.cpio.gz.new"
mv "$dir/initramfs.cpio.gz.new" "$dir/initramfs.cpio.gz"
[ "$pkg" = linux-image-amd64 ] && echo "$kver" > "$cache/default-kernel"
say "ok: kernel $kver in $dir ($(echo "$list" | wc -l) modules, initramfs $(($(stat -c %s "$dir/initramfs.cpio.gz") / 1024)) KiB)"

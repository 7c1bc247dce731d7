#!/usr/bin/env bash
# test/guest/vm.sh [OPTIONS] [--] 'COMMAND'
#
# Boots the test guest (Debian's kernel under QEMU TCG, see setup.sh), runs COMMAND with
# bash in it and exits with COMMAND's exit status. In the guest, COMMAND sees the host's /
# read-only, its own /tmp, /run and /dev/shm (tmpfs), /dev/dax0.0 (a devdax namespace on an
# emulated NVDIMM, 2 MiB alignment), an ext4 disk on /srv, the shared directory read-write
# (its cwd) and the project tree read-only, both at their host paths. Its output is shown
# as it runs and kept in SHARE/out.log; the guest's console is in SHARE/console.log.
#
# Options:
#   --image PATH      the NVDIMM's image file (default RUN/nvdimm.img), created sparse when
#                     missing (--image-size, default 1G); boot again on the same image to
#                     see what an earlier boot left on /dev/dax0.0
#   --disk PATH       the ext4 disk's image (default RUN/disk.img), created and formatted
#                     when missing (--disk-size, default 2G); --no-disk for none
#   --fresh           delete the image and the disk first
#   --share DIR       the shared directory (default RUN/share)
#   --project DIR     the tree mounted read-only (default: this repository)
#   --kernel KVER     a kernel setup.sh prepared (default: the one of linux-image-amd64)
#   --smp N           guest CPUs (default 2; TCG runs them all on one host thread)
#   --mem SIZE        guest memory (default 2G)
#   --timeout SEC     for the whole boot (default 900)
#   --quiet           do not show the command's output as it runs
#   --env NAME=VALUE  exported to COMMAND (repeatable)
# RUN is $NUMACTLX_GUEST_RUN (default /var/tmp/numactlx-guest); the kernels are in
# $NUMACTLX_GUEST_CACHE (default /var/cache/numactlx-guest).
#
# Exit status: COMMAND's; 0 when COMMAND powered the guest off on purpose (it wrote
# $GUEST_SHARE/powered-off first: see lib/harness.mjs powerOff); 124 when the boot timed
# out; 125 when the guest ended without a status (a crash, or a power-off not announced).
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
cache=${NUMACTLX_GUEST_CACHE:-/var/cache/numactlx-guest}
run=${NUMACTLX_GUEST_RUN:-/var/tmp/numactlx-guest}
image= disk= share= project=$(cd "$here/../.." && pwd) kver= smp=2 mem=2G tmo=900 cpu=max append=
image_size=1G disk_size=2G fresh=0 quiet=0 use_disk=1
envs=()

die() { echo "vm: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --image) image=$2; shift 2;;
    --image-size) image_size=$2; shift 2;;
    --disk) disk=$2; shift 2;;
    --disk-size) disk_size=$2; shift 2;;
    --no-disk) use_disk=0; shift;;
    --fresh) fresh=1; shift;;
    --share) share=$2; shift 2;;
    --project) project=$2; shift 2;;
    --kernel) kver=$2; shift 2;;
    --smp) smp=$2; shift 2;;
    --cpu) cpu=$2; shift 2;;
    --append) append="$append $2"; shift 2;;
    --mem) mem=$2; shift 2;;
    --timeout) tmo=$2; shift 2;;
    --quiet) quiet=1; shift;;
    --env) [[ $2 == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE, not '$2'"; envs+=("$2"); shift 2;;
    --) shift; break;;
    -*) die "unknown option '$1' (see the comment at the top of $0)";;
    *) break;;
  esac
done
[ $# -eq 1 ] || die "usage: vm.sh [OPTIONS] 'COMMAND'"
command=$1

[ -n "$kver" ] || kver=$(cat "$cache/default-kernel" 2>/dev/null) || die "no kernel prepared: run test/guest/setup.sh"
kdir=$cache/$kver
[ -f "$kdir/vmlinuz" ] && [ -f "$kdir/initramfs.cpio.gz" ] || die "kernel $kver is not prepared in $kdir: run test/guest/setup.sh"
mkdir -p "$run"
image=$(readlink -f "${image:-$run/nvdimm.img}")
share=$(readlink -f "${share:-$run/share}")
project=$(readlink -f "$project")
for p in "$share" "$project"; do
  # the paths travel on the kernel command line
  [[ $p =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "path '$p' has characters the guest's command line cannot carry"
done
if [ "$fresh" = 1 ]; then rm -f "$image"; fi
mkdir -p "$share"
[ -f "$image" ] || truncate -s "$image_size" "$image"
image_bytes=$(stat -c %s "$image")

drive=()
if [ "$use_disk" = 1 ]; then
  disk=$(readlink -f "${disk:-$run/disk.img}")
  if [ "$fresh" = 1 ]; then rm -f "$disk"; fi
  if [ ! -f "$disk" ]; then
    truncate -s "$disk_size" "$disk"
    mkfs.ext4 -q -F -L guest "$disk"
  fi
  drive=(-drive "file=$disk,if=virtio,format=raw")
fi

# The command, with the caller's variables; the guest's init adds GUEST, GUEST_SHARE,
# GUEST_DISK and GUEST_KERNEL.
{
  echo "export PROJECT=$(printf %q "$project")"
  for e in "${envs[@]}"; do echo "export $(printf %q "$e")"; done
  printf '%s\n' "$command"
} > "$share/cmd.sh"
# -accel tcg: this host's /dev/kvm (kvm_pvm, when present) cannot boot a stock kernel.
# The NVDIMM: a file-backed memory backend shared with the host (so what the guest writes
# is in the image file), 2 MiB aligned, on a q35 machine with nvdimm=on.
boot() {
  rm -f "$share/rc" "$share/booted" "$share/powered-off"
  : > "$share/out.log"
  timeout --kill-after=10 "$tmo" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu "$cpu" -smp "$smp" \
    -machine q35,nvdimm=on -m "$mem",slots=2,maxmem=$((8 + image_bytes / (1 << 30)))G \
    -object memory-backend-file,id=nvmem,share=on,mem-path="$image",size="$image_bytes",align=2M \
    -device nvdimm,memdev=nvmem,id=nvdimm0 \
    -virtfs local,path=/,mount_tag=hostfs,security_model=passthrough,readonly=on,multidevs=remap \
    -virtfs local,path="$share",mount_tag=share,security_model=passthrough \
    -virtfs local,path="$project",mount_tag=project,security_model=passthrough,readonly=on,multidevs=remap \
    "${drive[@]}" \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 nxg.share=$share nxg.project=$project$append" \
    -display none -serial file:"$share/console.log" -monitor none -nic none -no-reboot < /dev/null &
  local qemu_pid=$! tail_pid=
  # the command's output as it comes; tail ends by itself after qemu (--pid)
  if [ "$quiet" = 0 ]; then tail -n +1 -F --pid=$qemu_pid "$share/out.log" 2>/dev/null & tail_pid=$!; fi
  wait $qemu_pid
  qemu=$?
  if [ -n "$tail_pid" ]; then wait "$tail_pid" || true; fi
}

start=$(date +%s.%N)
set +e
# QEMU 7.2's TCG (Debian 12) sometimes double-faults the guest kernel in its first second
# (seen on 6.12, about 1 boot in 16: "traps: PANIC: double fault" in the console): a boot
# that panicked before the command started ran nothing, and is tried again.
for attempt in 1 2 3; do
  boot
  if [ -f "$share/booted" ] || ! grep -q 'Kernel panic' "$share/console.log"; then break; fi
  cp "$share/console.log" "$share/console-panic-$attempt.log"
  echo "vm: the guest kernel panicked while booting (console: $share/console-panic-$attempt.log); booting again" >&2
done
set -e
end=$(date +%s.%N)

booted=$(cat "$share/booted" 2>/dev/null || echo '?')
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%d", b - a }')
grep '^guest: ' "$share/console.log" | grep -v -e 'running the command' -e 'command exit status' >&2 || true
echo "vm: kernel $kver, boot ${booted}s (guest uptime at the command), whole run ${secs}s" >&2
if [ "$qemu" = 124 ] || [ "$qemu" = 137 ]; then
  echo "vm: timed out after ${tmo}s (console: $share/console.log)" >&2
  exit 124
fi
if [ -f "$share/rc" ]; then exit "$(cat "$share/rc")"; fi
if [ -f "$share/powered-off" ]; then
  echo "vm: the command powered the guest off ($(cat "$share/powered-off"))" >&2
  exit 0
fi
echo "vm: the guest ended without the command's status (qemu exit $qemu); its console ends with:" >&2
tail -n 20 "$share/console.log" >&2
exit 125

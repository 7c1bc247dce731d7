#!/bin/sh
# What writing fresh frames of a file backing does to the CPU it runs on: bench/frame_write
# MODE (at nice 19) and bench/oversleep (at nice -20) both pinned to CPU 0, each mode twice,
# alternated, a few seconds apart (memory the guest frees goes back to the host ≈ 2 s later).
#
#   bench/frame-stall.sh [SIZE_MIB] [FILE]      (default 512 MiB, /var/tmp/numactlx-frame-stall.img)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
size=${1:-512}
file=${2:-/var/tmp/numactlx-frame-stall.img}
mkdir -p "$here/bin"
for p in frame_write oversleep; do ${CC:-cc} -O2 -Wall -o "$here/bin/$p" "$here/$p.c"; done
for round in 1 2; do
	for mode in mapping random warmed; do
		taskset -c 0 nice -n 19 "$here/bin/frame_write" "$mode" "$size" "$file" > /tmp/numactlx-frame-stall.$$ &
		writer=$!
		taskset -c 0 nice -n -20 "$here/bin/oversleep" 4 | sed "s/^/$mode (round $round): /"
		wait "$writer"
		sed "s/^/    /" /tmp/numactlx-frame-stall.$$
		rm -f /tmp/numactlx-frame-stall.$$
		sleep 4
	done
done

#!/bin/sh
# Copy throughput of full snapshots into frames the VM has backed, next to the VM's own
# first-touch floor (docs/BENCHMARKS.md, "Snapshots", table 3b). As root:
#
#   bench/copy_recycled.sh [NUMACTLX] [CPUS]      # CPUS for taskset: 0 (pinned) or 0,1
#
# An idle 1 GiB pause_probe runs under `--keep 1`; every page is dirtied, then snapshotted,
# six times. From the third snapshot on, the copy goes into frames the pruned snapshot
# freed — memory written before, which this VM keeps backed — so copy_ms measures
# numactlx; the first two copy into fresh tmpfs pages, whose first write the hypervisor
# serves (bench/fresh_memory.c measures that alone, first).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
nx=${1:-$repo/bin/numactlx}
cpus=${2:-0}
mkdir -p "$repo/bench/bin"
cc -O2 -o "$repo/bench/bin/fresh_memory" "$repo/bench/fresh_memory.c"
cc -O2 -o "$repo/bench/bin/pause_probe" "$repo/bench/pause_probe.c"
echo "fresh_memory (first write to new tmpfs pages, 1 GiB regions):"
taskset -c "$cpus" "$repo/bench/bin/fresh_memory" 4
dir=$(mktemp -d)
trap 'exec 7>&- 2>/dev/null; rm -rf "$dir" /dev/shm/numactlx-copy-recycled.img' EXIT
export NUMACTLX_RUNTIME_DIR="$dir/run"
mkdir -m 700 "$NUMACTLX_RUNTIME_DIR"
mkfifo "$dir/in"
NUMACTLX_DEBUG=1 taskset -c "$cpus" "$nx" --remap=3,/dev/shm/numactlx-copy-recycled.img,size=4g --membind=3 --keep 1 \
	-- "$repo/bench/bin/pause_probe" 1g <"$dir/in" >"$dir/out" 2>"$dir/err" &
exec 7>"$dir/in"
until grep -q '^ready' "$dir/out"; do sleep 0.1; done
echo "loop none" >&7
for i in 1 2 3 4 5 6; do
	echo "dirty all" >&7
	until [ "$(grep -c dirtied "$dir/out")" -ge "$i" ]; do sleep 0.05; done
	"$nx" snapshot --wait --json | node -e '
		const s = JSON.parse(require("fs").readFileSync(0, "utf8")).stats;
		console.log(`snapshot: ${s.new_pages} pages copied in ${s.copy_ms.toFixed(0)} ms = ${(s.bytes_written / s.copy_ms / 1e6).toFixed(2)} GB/s, pause ${s.pause_ms.toFixed(2)} ms`);'
done
echo quit >&7
wait
grep 'numactlx-engine: snapshot [0-9]*:' "$dir/err"

#!/bin/bash
# Fault service during snapshots: a program that keeps first-touching memory
# (bench/touch_stall.c: every touch is a fault the engine serves) under numactlx while
# snapshots are taken back to back, two builds side by side (alternating), unpinned and
# pinned (numactlx and the program on CPU 0), and the program alone. Reports the
# program's longest gap between two touches and how many gaps were over 5/20/50 ms
# (a gap is a fault kept waiting: by a freeze or a slice, or by an engine step that did
# not poll its userfaultfds — NUMACTLX_DEBUG reports those turns). docs/BENCHMARKS.md,
# "Fault service during a pre-copy".
#
#   bench/fault-stall.sh OLD_NUMACTLX NEW_NUMACTLX [REPS=2] [SECONDS=20] [SIZE=256m]
set -euo pipefail
OLD=$1 NEW=$2 REPS=${3:-2} SECONDS_=${4:-20} SIZE=${5:-256m}
here=$(cd "$(dirname "$0")" && pwd)
prog=$(mktemp -d)/touch_stall
cc -O2 -o "$prog" "$here/touch_stall.c"
dir=/var/tmp/numactlx-fault-stall
one() { # label numactlx pin
  rm -rf "$dir"; mkdir -p -m 700 "$dir/run"
  local pin=() out snaps=0
  [ "$3" = pinned ] && pin=(taskset -c 0)
  exec 3< <(NUMACTLX_RUNTIME_DIR="$dir/run" "${pin[@]}" "$2" --remap=3,"$dir/node3.img",size=2g --membind=3 -- "$prog" "$SIZE" "$SECONDS_" 2>&1)
  read -r out <&3 # ready
  local pid; pid=$(pgrep -n -f "$prog $SIZE")
  while kill -0 "$pid" 2>/dev/null; do
    NUMACTLX_RUNTIME_DIR="$dir/run" "${pin[@]}" "$2" snapshot "$pid" --wait >/dev/null 2>&1 && snaps=$((snaps + 1)) || true
  done
  read -r out <&3
  exec 3<&-
  echo "$1 $3: $out snapshots=$snaps"
}
echo "plain unpinned: $("$prog" "$SIZE" "$SECONDS_" | tail -1)"
for rep in $(seq 1 "$REPS"); do
  for placement in unpinned pinned; do
    one old "$OLD" $placement
    one new "$NEW" $placement
  done
done
rm -rf "$dir"

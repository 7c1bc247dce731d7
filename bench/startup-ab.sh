#!/bin/bash
# Start-up of two numactlx builds side by side, without bench/startup.mjs's wait for a quiet
# machine (when none comes): wall ms of `--remap=3,F,size=64m --membind=3 -- /bin/true` from
# a shell (date +%s%N around it), the two builds and `node -e 0` alternating, N rounds,
# unpinned and pinned (taskset -c 0); medians and every value.
#
#   bench/startup-ab.sh "$(bench/snapshot.sh OLD)" "$(bench/snapshot.sh NEW)" [N] [-- COMMAND...]
#
# With a COMMAND (e.g. -- sh -c 'for i in $(seq 200); do /bin/true; done': what a shell
# script starting programs pays per process), it runs instead of /bin/true, and the third
# variant is COMMAND without numactlx ("plain") instead of `node -e 0`. NODE_SIZE: the node's
# size (default 64m).
set -eu
old=$1; new=$2; n=10
shift 2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then n=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
if [ $# -gt 0 ]; then command=("$@"); base=plain; else command=(/bin/true); base=node; fi
dir=$(mktemp -d /tmp/startup-ab-XXXX)
trap 'rm -rf "$dir"' EXIT
for pin in unpinned pinned; do
  for _ in $(seq 1 "$n"); do
    for v in before after "$base"; do
      case $v in
        before) cmd=("$old" "--remap=3,$dir/before.img,size=${NODE_SIZE:-64m}" --membind=3 -- "${command[@]}") ;;
        after) cmd=("$new" "--remap=3,$dir/after.img,size=${NODE_SIZE:-64m}" --membind=3 -- "${command[@]}") ;;
        node) cmd=(node -e 0) ;;
        plain) cmd=("${command[@]}") ;;
      esac
      [ "$pin" = pinned ] && cmd=(taskset -c 0 "${cmd[@]}")
      s=$(date +%s%N); "${cmd[@]}" >/dev/null; e=$(date +%s%N)
      echo "$pin $v $(( (e - s) / 1000000 ))"
    done
  done
done | python3 -c '
import sys, statistics
d = {}
for line in sys.stdin:
    pin, v, ms = line.split()
    d.setdefault((pin, v), []).append(int(ms))
for (pin, v), ms in sorted(d.items()):
    print(f"{pin:9} {v:7} median {statistics.median(ms):7.1f} ms  {sorted(ms)}")
'
echo "load: $(cut -d" " -f1-3 /proc/loadavg)"

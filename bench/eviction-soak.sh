#!/bin/bash
# eviction-soak.sh: eviction under snapshots, on 6.1's kernel features, as a soak: the
# consistency oracle (3 threads writing random pages of 8 MiB, and a 16 MiB log) under
# `resident=2m` (512 pages) and a snapshot every second, stdin closed after 8 s (the oracle
# then ends). PARALLEL loops at a time, RUNS sessions each. Per session: its exit, the
# node's peak resident pages and the faults that waited for room; a session still alive
# 40 s after it started is a hang — its state (status --json, every thread's kernel stack)
# goes to DIR/hang-PID.txt and the loop stops.
#
#   bench/eviction-soak.sh [RUNS [PARALLEL [NUMACTLX]]]      (defaults 20, 2, bin/numactlx)
#
# Prints one line per session and, at the end, sessions / hangs / peaks over 768 pages (the
# limit + 256 that test/snapshot/consistency.test.ts allows) / the largest peak. Used for
# stop 21's eviction fixes (docs/ARCHITECTURE.md, "A fault the kernel takes…").
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-20}
PARALLEL=${2:-2}
NUMACTLX=${3:-$REPO/bin/numactlx}
DIR=$(mktemp -d /tmp/numactlx-soak-XXXXXX)
FEATURES=POISON,WP_UNPOPULATED,WP_ASYNC,MOVE,PAGEMAP_SCAN,PROCESS_MADVISE,EVENT_FORK,USERFAULTFD
ORACLE=$REPO/test/fixtures/bin/oracle
[ -x "$ORACLE" ] || gcc -O2 -Wall -pthread -o "$ORACLE" "$REPO/test/fixtures/oracle.c" || exit 2

dump() { # PID RUNTIME_DIR: what a hung session shows
  local p=$1
  {
    ps -o pid,ppid,stat,etime,wchan:30,cmd --ppid "$p" -p "$p"
    NUMACTLX_RUNTIME_DIR=$2 "$NUMACTLX" status --json "$p"
    for pid in $p $(pgrep -P "$p"); do
      for t in /proc/"$pid"/task/*; do
        echo "-- $t $(cat "$t"/comm) wchan=$(cat "$t"/wchan)"; cat "$t"/stack 2>/dev/null
      done
    done
  } > "$DIR/hang-$p.txt" 2>&1
}

loop() { # LABEL
  local d=$DIR/$1
  for i in $(seq 1 "$RUNS"); do
    rm -rf "$d"; mkdir -m 700 -p "$d"
    (sleep 8 | NUMACTLX_RUNTIME_DIR=$d NUMACTLX_DISABLE_FEATURES=$FEATURES "$NUMACTLX" \
      --remap=3,"$d"/n.img,size=256m,resident=2m --membind=3 --schedule '*/1 * * * * *' \
      --stats "$d"/s.json -- "$ORACLE" 2048 3 "$i$1" > "$d"/out 2> "$d"/err; echo "exit $?" >> "$d"/out) &
    local t
    for t in $(seq 1 200); do grep -q '^exit' "$d"/out 2>/dev/null && break; sleep 0.2; done
    if ! grep -q '^exit' "$d"/out; then
      local p; p=$(pgrep -f "remap=3,$d/" | head -1)
      echo "$1 run $i HANG (numactlx $p): $DIR/hang-$p.txt"
      dump "$p" "$d"; pkill -9 -f "remap=3,$d/"; return 1
    fi
    echo "$1 run $i $(grep '^exit' "$d"/out) $(node -e "const e=require('$d/s.json').nodes[0].eviction; console.log('peak', e.peak_resident_pages, 'waits', e.fault_waits)" 2>&1)"
  done
}

for l in $(seq 1 "$PARALLEL"); do loop "L$l" > "$DIR/L$l.log" 2>&1 & done
wait
cat "$DIR"/L*.log
echo "sessions $(grep -c ' run ' "$DIR"/L*.log | awk -F: '{s+=$2} END {print s}')," \
  "hangs $(cat "$DIR"/L*.log | grep -c HANG)," \
  "exit 0: $(cat "$DIR"/L*.log | grep -c 'exit 0')," \
  "peaks over 768: $(grep -ho 'peak [0-9]*' "$DIR"/L*.log | awk '$2 > 768' | wc -l)," \
  "largest peak $(grep -ho 'peak [0-9]*' "$DIR"/L*.log | awk '{print $2}' | sort -n | tail -1)"

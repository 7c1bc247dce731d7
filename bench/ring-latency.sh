#!/bin/bash
# ring-latency.sh OLD NEW [N]: request → committed of N snapshots (default 10) of an idle
# python3 on a 64 MiB node, for each of three programs, each build in turn, printed sorted
# (ms, as `numactlx snapshot --wait` sees it: the client's own start is ≈ 160 ms of it).
#   plain      sleeps 0.2 s at a time
#   blocks     blocks SIGURG, sleeps
#   sigwait    blocks SIGURG and waits for it with sigtimedwait
# OLD and NEW are bin/numactlx paths (bench/snapshot.sh COMMIT makes one of a commit).
set -eu
OLD=$1 NEW=$2 N=${3:-10}
declare -A LOOP=(
  [plain]='while True: time.sleep(0.2)'
  [blocks]='signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})
while True: time.sleep(0.2)'
  [sigwait]='signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})
while True: signal.sigtimedwait({signal.SIGURG}, 0.2)'
)
run() { # NX PROGRAM
  local nx=$1 d; d=$(mktemp -d)
  mkdir -m 700 "$d/rt"
  NUMACTLX_RUNTIME_DIR=$d/rt "$nx" --remap=3,"$d/n.img",size=64m --membind=3 -- python3 -c "import signal, time
print('ready', flush=True)
${LOOP[$2]}" > "$d/out" 2>&1 &
  local p=$!
  until grep -q ready "$d/out"; do sleep 0.05; done
  for _ in $(seq "$N"); do
    local s e; s=$(date +%s%N)
    NUMACTLX_RUNTIME_DIR=$d/rt "$nx" snapshot --wait "$p" > /dev/null || echo fail
    e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
  done | sort -n | tr '\n' ' '
  echo
  kill "$p"; wait "$p" 2> /dev/null || true
  rm -rf "$d"
}
for prog in ${PROGS:-plain blocks sigwait}; do
  for nx in "$OLD" "$NEW"; do
    printf '%-8s %-40s ' "$prog" "$nx"
    run "$nx" "$prog"
  done
done

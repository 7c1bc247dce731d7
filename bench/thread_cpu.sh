#!/bin/sh
# Where a trapped call's time goes, per numactlx thread: CPU time, run-queue wait and
# context switches of each thread of numactlx (/proc/PID/task/TID/schedstat and status)
# over one run of COMMAND, divided by N (the operations COMMAND does). The threads are
# named by where each sleeps between calls (wchan): the tracer in do_wait, the engine in
# poll, the checksum worker and V8's platform threads in futex_do_wait.
#
#   bench/thread_cpu.sh [--pin] NUMACTLX N COMMAND...
#   bench/thread_cpu.sh --pin bin/numactlx 20000 bench/bin/trapped_syscalls mmap 20000
#
# COMMAND runs under `NUMACTLX --remap=3,F,size=256m --membind=3` between two samples
# taken while the session idles (before and after it, in `sh -c`), so numactlx's start-up
# and end are left out. --pin: everything on CPU 0 (taskset -c 0).
set -eu
pin=""
if [ "$1" = "--pin" ]; then pin="taskset -c 0"; shift; fi
nx=$1; n=$2; shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sample() {
	for t in /proc/$1/task/*; do
		w=$(cat "$t/wchan" 2>/dev/null || true); [ -n "$w" ] || w=running
		echo "${t##*/} $w $(cat "$t/schedstat") $(awk '/^voluntary_ctxt/{print $2}' "$t/status") $(awk '/^nonvoluntary_ctxt/{print $2}' "$t/status")"
	done | sort > "$2"
}
$pin "$nx" --remap=3,"$tmp/node3.img",size=256m --membind=3 -- \
	sh -c "touch $tmp/m1; sleep 0.5; $*; touch $tmp/m2; sleep 0.5" &
pid=$!
while [ ! -e "$tmp/m1" ]; do sleep 0.02; done
sample $pid "$tmp/a"
while [ ! -e "$tmp/m2" ]; do sleep 0.02; done
sample $pid "$tmp/b"
wait $pid
echo "per operation (N=$n): thread, sleeps in, CPU µs, run-queue wait µs, voluntary / involuntary switches"
join "$tmp/a" "$tmp/b" | awk -v n="$n" '{
	cpu = ($9 - $3) / 1000 / n; if (cpu < 0.05) next
	printf "%-8s %-14s %8.1f %8.1f %6.2f %6.2f\n", $1, substr($8, 1, 14), cpu, ($10 - $4) / 1000 / n, ($12 - $6) / n, ($13 - $7) / n }'

// The priority of the threads that serve the program: the tracer (its trapped calls, its
// forks and execs, the freeze) and the engine (its faults). The program waits on each of
// their turns, so they run above it where numactlx may raise them: at nice -20, as the
// kernel's own high-priority workers do. At the nice it started with, a program with more
// busy threads than CPUs starved them: a thread that keeps working gets its share of the
// CPUs, one among the program's hundreds, and each trapped call and fault waited for it
// (300 busy threads that malloc: 3.5 s alone, 36 s under numactlx; 10.5 s with these two
// threads at -20, docs/BENCHMARKS.md §5l). They sleep whenever the program does not need
// them, so what they take from it is what it asks of them.
//
// Kernel facts: a nice is per thread and inherited through fork, so the tracer takes it
// only once it has spawned the program (which starts at numactlx's own nice, as numactl's
// exec'd program does). Lowering a nice needs CAP_SYS_NICE or an RLIMIT_NICE of at least
// 20 − nice; without either the threads stay at numactlx's nice.
import { setThreadNice, threadNice } from './sched.js';
import { getRlimit, hasCapability, RLIMIT_NICE } from './process.js';

/** The nice of the threads that serve the program, where numactlx may set it. */
export const SERVICE_NICE = -20;
const CAP_SYS_NICE = 23;

/** Whether the calling thread may take `nice` from any higher one, as coming back from a lowered priority (CAP_SYS_NICE, or RLIMIT_NICE). */
export function mayTakeNice(nice: number): boolean {
  return hasCapability(CAP_SYS_NICE) || 20 - Number(getRlimit(RLIMIT_NICE).soft) <= nice;
}

/** The calling thread to SERVICE_NICE where it may; returns the nice it runs at now. */
export function raiseToService(): number {
  if (mayTakeNice(SERVICE_NICE) && setThreadNice(SERVICE_NICE) === 0) return SERVICE_NICE;
  return threadNice();
}

// CPU affinity: sched_setaffinity(2) / sched_getaffinity(2) (glibc wrappers), and the
// clone(2) flags the tracer reads from a traced clone's arguments (<linux/sched.h> of
// Linux 6.1). Affinity is per thread: the launcher sets it on the thread that spawns the
// program, which inherits it through clone, as numactl's process inherits it through exec.
import { libc, check, lastErrno } from './libc.js';
import { readProcStat } from './procfs.js';

/** clone(2) flags, as the u64 of clone3's clone_args.flags and clone's first argument. */
export const CLONE_VM = 0x100n;
export const CLONE_FILES = 0x400n;
export const CLONE_PARENT = 0x8000n;
export const CLONE_THREAD = 0x10000n;
export const CLONE_CHILD_CLEARTID = 0x200000n;

const setaffinityRaw = libc.func('int sched_setaffinity(int pid, size_t size, const void *mask)');
const getaffinityRaw = libc.func('int sched_getaffinity(int pid, size_t size, _Out_ void *mask)');

/** Bytes used for CPU masks: 8192 CPUs, the kernel's largest NR_CPUS. */
export const CPUMASK_BYTES = 1024;

/** Sets the affinity of `tid` (0 = the calling thread) to the CPUs listed. */
export function schedSetaffinity(tid: number, cpus: Iterable<number>): void {
  const mask = Buffer.alloc(CPUMASK_BYTES);
  for (const cpu of cpus) mask[cpu >> 3] |= 1 << (cpu & 7);
  check('sched_setaffinity', setaffinityRaw(tid, CPUMASK_BYTES, mask) as number);
}

/** The CPUs `tid` (0 = the calling thread) may run on. */
export function schedGetaffinity(tid: number): number[] {
  const mask = Buffer.alloc(CPUMASK_BYTES);
  // glibc's wrapper returns 0, not the kernel's byte count: scan the whole mask.
  check('sched_getaffinity', getaffinityRaw(tid, CPUMASK_BYTES, mask) as number);
  const cpus: number[] = [];
  for (let byte = 0; byte < CPUMASK_BYTES; byte++) {
    for (let bit = 0; bit < 8; bit++) if (mask[byte] & (1 << bit)) cpus.push(byte * 8 + bit);
  }
  return cpus;
}

const yieldRaw = libc.func('int sched_yield(void)');

/**
 * sched_yield(2): lets a thread this one just woke run now on this CPU instead of at
 * the end of our time slice (the engine, when numactlx and the program share a CPU).
 */
export function schedYield(): void {
  yieldRaw();
}

const setpriorityRaw = libc.func('int setpriority(int which, int who, int prio)');
const PRIO_PROCESS = 0;

/**
 * Sets the calling thread's nice value. Linux keeps a nice per thread: setpriority(
 * PRIO_PROCESS, 0, …) changes the calling thread's only, not its process's other threads
 * (sched(7)). Raising the value is always allowed; lowering it needs CAP_SYS_NICE or an
 * RLIMIT_NICE of at least 20 − nice. Returns 0 or -errno.
 */
export function setThreadNice(nice: number): number {
  return setpriorityRaw(PRIO_PROCESS, 0, nice) === 0 ? 0 : -lastErrno();
}

/** The calling thread's nice value (/proc/thread-self/stat, field 19). */
export function threadNice(): number {
  return Number(readProcStat('thread-self').field(19));
}

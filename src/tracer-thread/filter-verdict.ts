// Whether a program's own seccomp filters let the calls numactlx injects into it run, and
// how those calls get past filters that would not.
//
// numactlx makes calls inside the program with ptrace (its userfaultfd at an exec, the
// drop of an eviction round). A sandbox's filter (bubblewrap, systemd's
// SystemCallFilter=, Chrome's renderers) applies to them as to the program's own calls, and
// a whitelist kills the process for a call it does not list (SIGSYS). Where the tracer may
// read the filters (PTRACE_SECCOMP_GET_FILTER: root, and numactlx itself under no filter),
// each one is run here on the calls about to be injected, as the kernel would run it
// (classic BPF over struct seccomp_data, the checks of kernel/seccomp.c
// seccomp_check_filter; seccomp-bpf.ts): where every filter says ALLOW or LOG the calls are made as they
// are. Where one would not (a whitelist without process_madvise), the injected calls alone
// are let past them, CRIU's way: PTRACE_O_SUSPEND_SECCOMP set on the stopped thread for
// those calls, its options put back before it runs its own code again — the program's own
// calls stay filtered. Where they cannot be read (not root), a process with a filter of its
// own gets none (the caller says so).
//
// Filters only accumulate (none is ever removed), so a verdict holds until the process
// installs another; the callers ask at each injection, which costs a few ptrace calls.
import { getRegs, PTRACE_O, readReg, seccompFilter, setOptions } from '../sys/ptrace.js';
import { hasOwnSeccompFilter } from '../sys/procfs.js';
import { SECCOMP_RET } from '../sys/seccomp.js';
import { actionOf, seccompData, type FilteredCall } from './seccomp-bpf.js';
import { memoryTrapFilter } from './seccomp-filter.js';
import { TRACEE_OPTIONS } from './start-program.js';
import { isEsrch } from './task-gone.js';
import { killIfAlive } from '../sys/signal.js';

/** numactlx's own filter as the kernel hands it back (encoded once): skipped, as a call it traps stops in numactlx itself (inject.ts). */
let ownFilter: Buffer | undefined;

/** What the filters say of a set of calls: all run; one would not; or they cannot be read or run. */
type FilterVerdict = 'allow' | 'refuse' | 'unknown';

/** Said after "its filter could kill it for …" when the verdict is unknown. */
export const UNREADABLE_FILTER = 'only root may read the filter to know';

/**
 * Whether every seccomp filter of stopped thread `tid` but numactlx's own lets each of
 * `calls`, injected at the thread's instruction pointer, run (ALLOW or LOG): 'allow';
 * 'refuse' when one would not; 'unknown' when the filters cannot be read or run (not
 * root, numactlx itself under a filter, a kernel without PTRACE_SECCOMP_GET_FILTER).
 */
function filterVerdict(tid: number, calls: FilteredCall[]): FilterVerdict {
  let ip: bigint;
  const ours = ownFilter ??= memoryTrapFilter();
  try {
    // The injected syscall instruction is put at the thread's rip (inject.ts): the kernel sees rip + 2.
    ip = readReg(getRegs(tid), 'rip') + 2n;
    for (let index = 0; ; index++) {
      const program = seccompFilter(tid, index);
      if (!program) return 'allow';
      if (program.equals(ours)) continue;
      for (const call of calls) {
        const action = actionOf(program, seccompData(call, ip));
        if (action !== SECCOMP_RET.ALLOW && action !== SECCOMP_RET.LOG) return 'refuse';
      }
    }
  } catch {
    return 'unknown';
  }
}

/** How injected calls get past a process's own filters (passFilters). */
export type FilterPass = 'none' | 'suspended' | 'refused' | 'unreadable';

/**
 * Before calls are injected into stopped thread `tid` of process `pid`: 'none' when
 * nothing stands in their way (no filter of its own, or every filter lets `calls` run);
 * 'suspended' when a filter would not and the thread's filters are suspended now
 * (PTRACE_O_SUSPEND_SECCOMP: the caller calls resumeFilters before the thread runs its own
 * code again); 'refused' when they would not and cannot be suspended; 'unreadable' when
 * they cannot be read (UNREADABLE_FILTER says why).
 */
export function passFilters(pid: number, tid: number, calls: FilteredCall[]): FilterPass {
  if (!hasOwnSeccompFilter(pid)) return 'none';
  const verdict = filterVerdict(tid, calls);
  if (verdict === 'allow') return 'none';
  if (verdict === 'unknown') return 'unreadable';
  try {
    setOptions(tid, TRACEE_OPTIONS | PTRACE_O.SUSPEND_SECCOMP);
    return 'suspended';
  } catch {
    return 'refused';
  }
}

/**
 * Runs `inject` (calls made in stopped thread `tid` of `pid`, as `calls` says) past the
 * process's own filters where they would refuse them, and puts them back after; the
 * refusal instead where the calls cannot be made (passFilters).
 */
export function injectPastFilters<T>(pid: number, tid: number, calls: FilteredCall[], inject: () => T): T | 'refused' | 'unreadable' {
  const pass = passFilters(pid, tid, calls);
  if (pass === 'refused' || pass === 'unreadable') return pass;
  try {
    return inject();
  } finally {
    if (pass === 'suspended') resumeFilters(tid);
  }
}

/**
 * Thread `tid`'s filters apply again (after passFilters said 'suspended'). Nothing if it
 * is gone; if they cannot be put back on a live thread, its process is killed rather than
 * left to run past its sandbox.
 */
export function resumeFilters(tid: number): void {
  try {
    setOptions(tid, TRACEE_OPTIONS);
  } catch (err) {
    if (!isEsrch(err)) killIfAlive(tid);
  }
}

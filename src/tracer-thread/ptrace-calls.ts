// The program's own ptrace calls (strace, gdb, a crash reporter), trapped by the
// seccomp filter for PTRACE_TRACEME, PTRACE_ATTACH and PTRACE_SEIZE.
//
// Every task of the program is numactlx's tracee, and Linux gives a task one tracer:
// such a call on a task of the program would fail with EPERM anyway, with nothing to
// say why. It fails with EPERM here too, and the program's user reads one line on
// stderr (once per command: strace alone makes three processes that try) naming the
// limit and what to use instead. A call on a
// task outside the program is the kernel's to judge: it runs untouched.
import fs from 'node:fs';
import { PTRACE } from '../sys/ptrace.js';
import { commOf } from '../sys/procfs.js';

const NAMES = new Map<number, string>([[PTRACE.TRACEME, 'PTRACE_TRACEME'], [PTRACE.ATTACH, 'PTRACE_ATTACH'], [PTRACE.SEIZE, 'PTRACE_SEIZE']]);

/** The one line a refused call prints. */
export function ptraceRefusalMessage(comm: string, pid: number, request: number, target: number): string {
  const call = request === PTRACE.TRACEME ? 'ptrace(PTRACE_TRACEME)' : `ptrace(${NAMES.get(request)}, ${target})`;
  return `numactlx: ${comm} (pid ${pid}): ${call} fails with EPERM: the program runs under numactlx --remap, which ` +
    'traces every process of it, and Linux allows one tracer; for its memory use `numactlx snapshot` and ' +
    '`numactlx export BACKING ID --format core -o FILE` (gdb reads the core), or debug it without --remap';
}

export interface PtraceRefusals {
  /** Whether a task is one of the program's (numactlx's tracees). */
  isTraced(tid: number): boolean;
  /** The commands told already. */
  readonly told: Set<string>;
}

/**
 * Whether the call at this seccomp stop must be refused (the caller then sees EPERM);
 * says why the first time a command is refused.
 */
export function refusePtrace(pid: number, request: number, target: number, refusals: PtraceRefusals): boolean {
  if (request !== PTRACE.TRACEME && !refusals.isTraced(target)) return false;
  const comm = commOf(pid, 'a process');
  if (!refusals.told.has(comm)) {
    refusals.told.add(comm);
    fs.writeSync(2, `${ptraceRefusalMessage(comm, pid, request, target)}\n`);
  }
  return true;
}

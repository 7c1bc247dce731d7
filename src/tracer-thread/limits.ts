// What numactlx cannot do for a program, each said in one line.
//
// - numactlx itself under a tracer (strace -f, gdb following forks): the tracer that
//   follows numactlx's children attaches to the program before numactlx can, and Linux
//   gives a task one tracer, so numactlx's PTRACE_SEIZE fails with EPERM. numactlx then
//   stops at once, with one line that names the other tracer, and leaves nothing behind.
// - A process of the program that cannot have a userfaultfd (with
//   vm.unprivileged_userfaultfd = 0 userfaultfd(2) needs CAP_SYS_PTRACE; /dev/userfaultfd,
//   tried next, access to the device file, first the process's own, then numactlx's, handed
//   over — a kernel before 6.1 has no device; or it has no fd left): it runs on with
//   ordinary memory, and the user is told once.
import { errnoName, SysError } from '../sys/libc.js';
import { commOf, readProcStatus, userNamespaceOf } from '../sys/procfs.js';

export function isEperm(err: unknown): boolean {
  return err instanceof SysError && err.code === 'EPERM';
}

/** The effective uid of `pid` (the second of Uid's four), '?' when it is gone. */
function uidOf(pid: number): string {
  return readProcStatus(pid)?.field('Uid')?.split(/\s+/)[1] ?? '?';
}

/** Why userfaultfd(2) answered `errno` in `pid`. */
export function userfaultfdRefusal(pid: number, errno: number): string {
  if (errnoName(errno) !== 'EPERM') return errnoName(errno);
  const ns = userNamespaceOf(pid);
  if (ns !== '' && ns !== userNamespaceOf('self')) {
    return 'it runs in a user namespace of its own, and vm.unprivileged_userfaultfd = 0 asks for CAP_SYS_PTRACE in the initial one: EPERM';
  }
  return `it runs as uid ${uidOf(pid)}, and vm.unprivileged_userfaultfd = 0 asks for CAP_SYS_PTRACE: EPERM`;
}

/** The line for a process that runs without a userfaultfd (`errno` from userfaultfd(2)). */
export function untrappedMessage(pid: number, errno: number, reason?: string): string {
  const why = reason ?? userfaultfdRefusal(pid, errno);
  return `numactlx: ${commOf(pid, 'a process')} (pid ${pid}) cannot have a userfaultfd (${why}): its memory is ` +
    'ordinary memory, not on a virtual node, and not in snapshots (said once)';
}

/** The program was traced by another tracer before numactlx could seize it. */
export class ForeignTracerError extends Error {
  readonly tracerPid: number;

  constructor(tracerPid: number, options?: { cause?: unknown }) {
    super(`the program was attached by ${commOf(tracerPid, 'another tracer')} (pid ${tracerPid}), which traces numactlx and follows its ` +
      'children, before numactlx could trace it (PTRACE_SEIZE: EPERM; a process has one tracer): trace numactlx ' +
      'without following children (strace without -f), or run the program without --remap under the tracer', options);
    this.name = 'ForeignTracerError';
    this.tracerPid = tracerPid;
  }
}

// Process file descriptors: pidfd_open(2), pidfd_getfd(2), pidfd_send_signal(2),
// following <linux/pidfd.h> of Linux 6.1 (pidfd_getfd since 5.6).
//
// A pidfd names one process for as long as the fd is open, so a recycled pid can never
// be hit by mistake. The caller owns every fd returned here and closes it.
import { bindSyscall, check } from './libc.js';
import { SYS } from './arch/index.js';

/** PIDFD_SELF_THREAD (Linux 6.15, <linux/pidfd.h>): "the calling thread" for the calls that take a pidfd. */
export const PIDFD_SELF_THREAD = -10000;

/** pidfd_open flag: a non-blocking pidfd (waitid(P_PIDFD) returns EAGAIN while it runs). */
export const PIDFD_NONBLOCK = 0o4000;

const pidfdOpenRaw = bindSyscall(['int', 'unsigned int']);
const pidfdGetfdRaw = bindSyscall(['int', 'int', 'unsigned int']);
const pidfdSendSignalRaw = bindSyscall(['int', 'int', 'void *', 'unsigned int']);

/** pidfd_open(2): a pidfd (close-on-exec) for `pid`. */
export function pidfdOpen(pid: number, flags = 0): number {
  return check('pidfd_open', pidfdOpenRaw(SYS.pidfd_open, pid, flags));
}

/**
 * pidfd_getfd(2): a duplicate, in this process, of fd `targetFd` of the process behind
 * `pidfd` (close-on-exec; needs PTRACE_MODE_ATTACH_REALCREDS over it). Both share one
 * open file description: closing the target's copy does not affect ours.
 */
export function pidfdGetfd(pidfd: number, targetFd: number, flags = 0): number {
  return check('pidfd_getfd', pidfdGetfdRaw(SYS.pidfd_getfd, pidfd, targetFd, flags));
}

/** pidfd_send_signal(2) with no siginfo: kill(2) without the pid-reuse race. */
export function pidfdSendSignal(pidfd: number, sig: number, flags = 0): void {
  check('pidfd_send_signal', pidfdSendSignalRaw(SYS.pidfd_send_signal, pidfd, sig, null, flags));
}

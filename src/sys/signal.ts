// Signals: kill(2), tgkill(2), sigqueue(3) (over rt_sigqueueinfo(2)), rt_sigaction(2) and
// rt_sigprocmask(2) for the state an exec hands on, sigset_t handling and signal names
// (glibc 2.36 <signal.h>, <asm-generic/siginfo.h> and <asm/signal.h> of Linux 6.1).
import os from 'node:os';
import { libc, bindSyscall, check, lastErrno } from './libc.js';
import { SYS } from './arch/index.js';

/** siginfo_t.si_code of a signal sent by sigqueue(3) (<asm-generic/siginfo.h>). */
export const SI_QUEUE = -1;

/** glibc's sigset_t is 1024 bits. */
export const SIGSET_SIZE = 128;

const killRaw = libc.func('int kill(int pid, int sig)');

/** kill(2). Throws SysError('kill', errno) on failure (ESRCH when the process is gone). */
export function kill(pid: number, sig: number): void {
  check('kill', killRaw(pid, sig) as number);
}

const tgkillRaw = libc.func('int tgkill(int tgid, int tid, int sig)');

/** tgkill(2): `sig` to thread `tid` of process `tgid`. Throws SysError('tgkill', errno). */
export function tgkill(tgid: number, tid: number, sig: number): void {
  check('tgkill', tgkillRaw(tgid, tid, sig) as number);
}

// union sigval is passed by value; on x86_64 a one-word union travels in a register like
// the intptr_t declared here (its sival_int is the low 32 bits).
const sigqueueRaw = libc.func('int sigqueue(int pid, int sig, intptr_t value)');

/**
 * sigqueue(3): `sig` with `value` as si_value (si_code SI_QUEUE, si_pid = this process)
 * to process `pid`. 0 or -errno, no exception (-ESRCH when the process is gone).
 */
export function sigqueueFast(pid: number, sig: number, value: number): number {
  return (sigqueueRaw(pid, sig, value) as number) === -1 ? -lastErrno() : 0;
}

/**
 * A sigset_t holding exactly `signals`, in a buffer the caller keeps alive while in
 * use. Bits are set directly (bit sig-1, the kernel's layout) because glibc's
 * sigaddset refuses its internal signals 32 and 33 — and posix_spawn leaves those
 * *ignored* in the program unless they are in its reset-to-default set.
 */
export function sigset(signals: Iterable<number>): Buffer {
  const set = Buffer.alloc(SIGSET_SIZE);
  for (const sig of signals) set[(sig - 1) >> 3] |= 1 << ((sig - 1) & 7);
  return set;
}

/** Signal number → name ("SIGTERM"), from Node's table of this system's signals. */
export function signalName(sig: number): string {
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === sig) return name;
  return `signal ${sig}`;
}

/** Every signal number the kernel has on x86_64: 1–64 (32 and 33 are glibc's own). */
export const ALL_SIGNALS: readonly number[] = Array.from({ length: 64 }, (_, i) => i + 1);

/** Parses a SigIgn/SigBlk hex mask from /proc/PID/status into signal numbers. */
export function signalsInMask(hex: string): number[] {
  const mask = BigInt(`0x${hex.trim()}`);
  const out: number[] = [];
  for (let sig = 1; sig <= 64; sig++) if ((mask >> BigInt(sig - 1)) & 1n) out.push(sig);
  return out;
}

// struct kernel_sigaction (<asm/signal.h>, x86_64): handler, flags, restorer, then the
// kernel's 64-bit sigset. SIG_DFL and SIG_IGN need no restorer (SA_RESTORER is only for
// handlers that return).
const KERNEL_SIGACTION_BYTES = 32;
const KERNEL_SIGSET_BYTES = 8;
const SIG_DFL = 0n;
const SIG_IGN = 1n;
const SIG_SETMASK = 2;
const rtSigactionRaw = bindSyscall(['int', 'const void *', 'void *', 'size_t']);
const rtSigprocmaskRaw = bindSyscall(['int', 'const void *', 'void *', 'size_t']);

/**
 * Sets `sig` to its default action or to ignored, in the whole process: the two
 * dispositions execve(2) keeps (caught signals revert to the default). Raw rt_sigaction
 * because glibc's sigaction refuses its own signals 32 and 33.
 */
export function setSignalDisposition(sig: number, action: 'default' | 'ignore'): void {
  const act = Buffer.alloc(KERNEL_SIGACTION_BYTES);
  act.writeBigUInt64LE(action === 'ignore' ? SIG_IGN : SIG_DFL, 0);
  check('rt_sigaction', rtSigactionRaw(SYS.rt_sigaction, sig, act, null, KERNEL_SIGSET_BYTES));
}

/**
 * Sets the calling thread's signal mask to exactly `signals` (rt_sigprocmask(SIG_SETMASK)):
 * the mask is per thread and execve(2) keeps the exec'ing thread's.
 */
export function setSignalMask(signals: Iterable<number>): void {
  const set = sigset(signals).subarray(0, KERNEL_SIGSET_BYTES);
  check('rt_sigprocmask', rtSigprocmaskRaw(SYS.rt_sigprocmask, SIG_SETMASK, set, null, KERNEL_SIGSET_BYTES));
}

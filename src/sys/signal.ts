// Signals: kill(2), tgkill(2), sigqueue(3) (over rt_sigqueueinfo(2)), rt_sigaction(2) and
// rt_sigprocmask(2) for the state an exec hands on, sigset_t handling and signal names
// (glibc 2.36 <signal.h>, <asm-generic/siginfo.h> and <asm/signal.h> of Linux 6.1).
import os from 'node:os';
import { libc, bindSyscall, check, lastErrno, SysError } from './libc.js';
import { SYS } from './arch/index.js';

/** siginfo_t.si_code of a signal sent by sigqueue(3) (<asm-generic/siginfo.h>). */
export const SI_QUEUE = -1;
/** SIGBUS si_code values (<asm-generic/siginfo.h>). */
export const BUS_CODE = { ADRERR: 2, MCEERR_AR: 4 } as const;

/** siginfo_t (128 bytes on x86_64) and the offsets of the fields written here. */
const SIGINFO_SIZE = 128;
const SI = { signo: 0, errno: 4, code: 8, pid: 16, uid: 20, value: 24, addr: 16, addrLsb: 24 } as const;

/** glibc's sigset_t is 1024 bits. */
export const SIGSET_SIZE = 128;

const killRaw = libc.func('int kill(int pid, int sig)');

/** kill(2). Throws SysError('kill', errno) on failure (ESRCH when the process is gone). */
export function kill(pid: number, sig: number): void {
  check('kill', killRaw(pid, sig) as number);
}

/** kill(2): 0 or -errno, no exception. */
export function killFast(pid: number, sig: number): number {
  return (killRaw(pid, sig) as number) === -1 ? -lastErrno() : 0;
}

/** Whether process `pid` exists (kill(pid, 0) is not ESRCH: it may be another user's, or a zombie). */
export function processExists(pid: number): boolean {
  return pid > 0 && killFast(pid, 0) !== -os.constants.errno.ESRCH;
}

const { ESRCH } = os.constants.errno;
const { SIGKILL } = os.constants.signals;

/**
 * SIGKILL to `pid`, which may be gone already (ESRCH is not an error here: its end is
 * reported where it is waited for). Other errors throw.
 */
export function killIfAlive(pid: number): void {
  if ((killRaw(pid, SIGKILL) as number) !== -1) return;
  const errno = lastErrno();
  if (errno !== ESRCH) throw new SysError('kill', errno);
}

const tgkillRaw = libc.func('int tgkill(int tgid, int tid, int sig)');

/** tgkill(2): `sig` to thread `tid` of process `tgid`. Throws SysError('tgkill', errno). */
export function tgkill(tgid: number, tid: number, sig: number): void {
  check('tgkill', tgkillRaw(tgid, tid, sig) as number);
}

const rtTgsigqueueinfoRaw = bindSyscall(['int', 'int', 'int', 'void *']);
const getuidRaw = libc.func('unsigned int getuid(void)');
const queued = Buffer.alloc(SIGINFO_SIZE);

/**
 * rt_tgsigqueueinfo(2): `sig` to thread `tid` of process `tgid` with si_code SI_QUEUE,
 * si_pid and si_uid this process's, and `value` (an address: below 2^53) as si_value.
 * Another process may only be sent a negative si_code, so a receiver can tell this
 * signal from one the kernel raised. 0 or -errno, no exception.
 */
export function tgsigqueueinfoFast(tgid: number, tid: number, sig: number, value: number): number {
  queued.fill(0);
  queued.writeInt32LE(sig, SI.signo);
  queued.writeInt32LE(SI_QUEUE, SI.code);
  queued.writeInt32LE(process.pid, SI.pid);
  queued.writeUInt32LE(getuidRaw() as number, SI.uid);
  queued.writeBigUInt64LE(BigInt(value), SI.value);
  return Number(rtTgsigqueueinfoRaw(SYS.rt_tgsigqueueinfo, tgid, tid, sig, queued)) === -1 ? -lastErrno() : 0;
}

/** si_code of a tgkill(2) (<asm-generic/siginfo.h>): rt_tgsigqueueinfo may not forge it for another process. */
const SI_TKILL = -6;

/**
 * `sig` to thread `tid` of `tgid` again, with the siginfo it came with (PTRACE_GETSIGINFO
 * at its delivery stop) where rt_tgsigqueueinfo(2) lets one process send it to another —
 * a negative si_code other than SI_TKILL (sigqueue, timers, AIO, SIGIO) — so that the
 * receiver (or numactlx's own doorbell check) tells it from any other; tgkill(2) (si_code
 * SI_TKILL, numactlx's pid) otherwise. Throws SysError on failure.
 */
export function resendSignal(tgid: number, tid: number, sig: number, info?: Buffer): void {
  const code = info?.readInt32LE(SI.code) ?? 0;
  if (info && code < 0 && code !== SI_TKILL) {
    check('rt_tgsigqueueinfo', Number(rtTgsigqueueinfoRaw(SYS.rt_tgsigqueueinfo, tgid, tid, sig, info)));
  } else {
    tgkill(tgid, tid, sig);
  }
}

/** The siginfo of a SIGBUS the kernel raises for an access at `addr` (si_addr_lsb: BUS_MCEERR_* only). */
export function busSiginfo(code: number, addr: bigint, addrLsb = 0): Buffer {
  const info = Buffer.alloc(SIGINFO_SIZE);
  info.writeInt32LE(os.constants.signals.SIGBUS, SI.signo);
  info.writeInt32LE(code, SI.code);
  info.writeBigUInt64LE(addr, SI.addr);
  info.writeInt16LE(addrLsb, SI.addrLsb);
  return info;
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

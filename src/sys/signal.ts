// Signals: kill(2), sigset_t handling and signal names (glibc 2.36, <signal.h>).
import os from 'node:os';
import { libc, check } from './libc.js';

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

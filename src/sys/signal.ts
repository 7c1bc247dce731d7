// Signals: kill(2), sigset_t handling and signal names (glibc 2.36, <signal.h>).
import os from 'node:os';
import { libc, check } from './libc.js';

/** glibc's sigset_t is 1024 bits. */
export const SIGSET_SIZE = 128;

const killRaw = libc.func('int kill(int pid, int sig)');
const sigemptysetRaw = libc.func('int sigemptyset(void *set)');
const sigaddsetRaw = libc.func('int sigaddset(void *set, int sig)');

/** kill(2). Throws SysError('kill', errno) on failure (ESRCH when the process is gone). */
export function kill(pid: number, sig: number): void {
  check('kill', killRaw(pid, sig) as number);
}

/** A sigset_t holding exactly `signals`, in a buffer the caller keeps alive while in use. */
export function sigset(signals: Iterable<number>): Buffer {
  const set = Buffer.alloc(SIGSET_SIZE);
  check('sigemptyset', sigemptysetRaw(set) as number);
  for (const sig of signals) check(`sigaddset(${sig})`, sigaddsetRaw(set, sig) as number);
  return set;
}

/** Signal number → name ("SIGTERM"), from Node's table of this system's signals. */
export function signalName(sig: number): string {
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === sig) return name;
  return `signal ${sig}`;
}

/** Standard signal numbers 1–31 (real-time signals are numbered from SIGRTMIN = 34 by glibc). */
export const STANDARD_SIGNALS: readonly number[] = Array.from({ length: 31 }, (_, i) => i + 1);

/** Parses a SigIgn/SigBlk hex mask from /proc/PID/status into signal numbers. */
export function signalsInMask(hex: string): number[] {
  const mask = BigInt(`0x${hex.trim()}`);
  const out: number[] = [];
  for (let sig = 1; sig <= 64; sig++) if ((mask >> BigInt(sig - 1)) & 1n) out.push(sig);
  return out;
}

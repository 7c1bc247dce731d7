// Process-wide state numactlx changes for itself: signal(2) to restore a default
// action, getrlimit(2)/setrlimit(2) (core dumps; the open-file limit Node raises at
// start-up), and raise(3), used on the way out or into an exec; _exit(2); and what it may
// do (capabilities, RLIMIT_NICE: src/engine-thread/background-priority.ts).
import { readProcStatus } from './procfs.js';
import { libc, check } from './libc.js';

const signalRaw = libc.func('void *signal(int sig, void *handler)');
const raiseRaw = libc.func('int raise(int sig)');
const setrlimitRaw = libc.func('int setrlimit(int resource, const void *rlim)');
const sigprocmaskRaw = libc.func('int sigprocmask(int how, const void *set, void *oldset)');

const getrlimitRaw = libc.func('int getrlimit(int resource, _Out_ void *rlim)');
const exitRaw = libc.func('void _exit(int status)');

const RLIMIT_CORE = 4;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_NICE = 13;
/** RLIM_INFINITY: "unlimited" (<asm-generic/resource.h>). */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
const SIG_UNBLOCK = 1;

/**
 * Ends the process with `code` once the 'exit' listeners have run, as process.exit does,
 * but without Node's teardown after them: that stops every worker thread and waits for
 * each one's isolate to be disposed — 20 ms after a session here, between the program's
 * end and numactlx's. The caller has written everything (numactlx writes synchronously)
 * and closed what it must close (the backings, the control socket).
 */
export function exitNow(code: number): never {
  process.exitCode = code;
  process.emit('exit', code);
  exitRaw(code);
  throw new Error('_exit returned');
}

/** Restores SIG_DFL (a null handler) for `sig` in the whole process. */
export function resetSignalToDefault(sig: number): void {
  signalRaw(sig, null);
}

/** No core file for this process from now on (RLIMIT_CORE = 0). */
export function disableCoreDumps(): void {
  check('setrlimit(RLIMIT_CORE)', setrlimitRaw(RLIMIT_CORE, new BigUint64Array([0n, 0n])) as number);
}

/** The soft and hard limits of `resource` (struct rlimit: two u64). */
export function getRlimit(resource: number): { soft: bigint; hard: bigint } {
  const rlim = new BigUint64Array(2);
  check('getrlimit', getrlimitRaw(resource, rlim) as number);
  return { soft: rlim[0], hard: rlim[1] };
}

/** Sets the soft limit of `resource`, keeping the hard one. */
export function setSoftRlimit(resource: number, soft: bigint): void {
  const { hard } = getRlimit(resource);
  check('setrlimit', setrlimitRaw(resource, new BigUint64Array([soft, hard])) as number);
}

/** Unblocks `sig` on the calling thread and raises it there. */
export function raiseSignal(sigset: Buffer, sig: number): void {
  check('sigprocmask', sigprocmaskRaw(SIG_UNBLOCK, sigset, null) as number);
  check('raise', raiseRaw(sig) as number);
}

/** Whether this process has capability `bit` (<linux/capability.h>: CAP_SYS_PTRACE 19, CAP_SYS_NICE 23) in its effective set. */
export function hasCapability(bit: number): boolean {
  const st = readProcStatus('self');
  return st !== undefined && ((st.mask('CapEff') >> BigInt(bit)) & 1n) === 1n;
}

const gettidRaw = libc.func('int gettid(void)');

/** gettid(2): the calling thread's id (what /proc/PID/status shows as TracerPid for a tracee of this thread). */
export function gettid(): number {
  return gettidRaw() as number;
}

// Process-wide dispositions numactlx changes for itself: signal(2) to restore a
// default action, setrlimit(2) for core dumps, and raise(3). Used only on the way out.
import { libc, check } from './libc.js';

const signalRaw = libc.func('void *signal(int sig, void *handler)');
const raiseRaw = libc.func('int raise(int sig)');
const setrlimitRaw = libc.func('int setrlimit(int resource, const void *rlim)');
const sigprocmaskRaw = libc.func('int sigprocmask(int how, const void *set, void *oldset)');

const RLIMIT_CORE = 4;
const SIG_UNBLOCK = 1;

/** Restores SIG_DFL (a null handler) for `sig` in the whole process. */
export function resetSignalToDefault(sig: number): void {
  signalRaw(sig, null);
}

/** No core file for this process from now on (RLIMIT_CORE = 0). */
export function disableCoreDumps(): void {
  check('setrlimit(RLIMIT_CORE)', setrlimitRaw(RLIMIT_CORE, new BigUint64Array([0n, 0n])) as number);
}

/** Unblocks `sig` on the calling thread and raises it there. */
export function raiseSignal(sigset: Buffer, sig: number): void {
  check('sigprocmask', sigprocmaskRaw(SIG_UNBLOCK, sigset, null) as number);
  check('raise', raiseRaw(sig) as number);
}

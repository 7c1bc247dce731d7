// Waking the tracer, which sits in waitpid(2), for a request posted in shared memory (the
// snapshot doorbell's, doorbell.ts; the engine's eviction or pre-copy slice,
// evict-request.ts) — without a signal to the program.
//
// The tracer follows one process of its own besides the program: the waker
// (src/tracer-thread/waker.ts, `cat` of a pipe, seized with ptrace). WAKE_SIGNAL sent to it
// by kill(2) gives the tracer a signal-delivery stop of the waker: its waitpid returns, it
// suppresses the signal and looks at every request posted. A request is always posted
// before the signal is sent, and looked at after the stop is read, so a signal merged into
// one still pending (a standard signal is pending once) loses no request.
//
// Before the waker, the ring was a SIGURG queued to the program itself, and a SIGSTOP
// (the "nudge") where SIGURG could not stop it: a program that blocked SIGURG, took it
// with sigwaitinfo, was over RLIMIT_SIGPENDING, or had a SIGCONT pending (a stop signal
// discards it) saw numactlx's signals or lost its own. The program now gets none.
import os from 'node:os';
import { killFast } from '../sys/signal.js';

const WAKE_SIGNAL = os.constants.signals.SIGURG;
/** A request not taken this long is rung again (a ring the waker could not take: it was being started again). */
export const RERING_MS = 50;
const { ESRCH } = os.constants.errno;

/**
 * Wakes the tracer through waker `pid` (published by the tracer): 0, or -ESRCH when there
 * is none now (the tracer is starting another: the caller rings again later).
 */
export function wakeTracer(pid: number): number {
  return pid > 0 ? killFast(pid, WAKE_SIGNAL) : -ESRCH;
}

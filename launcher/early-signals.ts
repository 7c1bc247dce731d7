// Signals that arrive before numactlx knows what they are for. Node's own action for
// SIGUSR1 is to open its inspector on 127.0.0.1:9229 — in a root process, for anyone
// who can connect — and SIGTERM's kills numactlx half set up. So the entry point
// (entry.ts) holds every signal numactlx forwards from its first line on, and
// counts what arrives; the session's snapshot signal and the program's forwarding take
// them over once they exist (a SIGUSR1 sent during start-up becomes a snapshot once the
// program runs), and a verb lets them act as they would have.
//
// This module is loaded first and alone: nothing heavy (koffi, the engine) before the
// listeners are in place. What is left is Node's own start-up, before any JavaScript.
import os from 'node:os';

/**
 * Signals numactlx passes on to the program. Not SIGCHLD (numactlx's own children),
 * not the synchronous fault signals (SEGV, BUS, FPE, ILL, TRAP: Node cannot catch them
 * safely), not SIGKILL/SIGSTOP (uncatchable).
 */
export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM',
  'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGWINCH', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU',
  'SIGVTALRM', 'SIGPROF', 'SIGXCPU', 'SIGXFSZ', 'SIGPWR', 'SIGURG', 'SIGIO', 'SIGPIPE', 'SIGABRT',
  'SIGSYS'].filter((name) => name !== 'SIGPROF' || !underV8Profiler()) as NodeJS.Signals[];

/**
 * numactlx itself runs under one of V8's profilers (`node --cpu-prof bin/numactlx.js …`).
 * The CPU profiler samples every thread with SIGPROF, which a listener here would take over
 * (and, forwarded, kill the program): it is left to the profiler. Each profiler writes its
 * file in Node's exit teardown, which main's exit then keeps.
 */
export function underV8Profiler(): boolean {
  return process.execArgv.some((arg) => /^--(cpu-prof|heap-prof|prof)/.test(arg));
}

const held = new Map<NodeJS.Signals, { count: number; listener: () => void }>();

/** The entry point: from now on each of these signals is counted, not acted on. */
export function holdSignals(): void {
  for (const name of FORWARDED_SIGNALS) {
    if (held.has(name)) continue;
    // SIGUSR1s bin/numactlx's trap counted before Node ran (see its comment).
    const early = name === 'SIGUSR1' ? Number(process.env.NUMACTLX_EARLY_USR1 ?? 0) : 0;
    const entry = { count: Number.isSafeInteger(early) && early > 0 ? early : 0, listener: (): void => { entry.count++; } };
    held.set(name, entry);
    process.on(name, entry.listener);
  }
}

/**
 * Stops holding `name`; returns how many arrived while it was held. Install the new
 * listener first: with no listener at all, libuv restores the default action, and a
 * signal arriving in between would get it.
 */
export function takeHeld(name: NodeJS.Signals): number {
  const entry = held.get(name);
  if (!entry) return 0;
  process.off(name, entry.listener);
  held.delete(name);
  return entry.count;
}

/**
 * A verb, or a run that ends before the program starts: the held signals act as they
 * would have, by their default action (a SIGTERM sent to `numactlx export` ends it) —
 * except those numactlx inherited as ignored (`ignored`, signal numbers), which are
 * dropped, as they would have been.
 */
export function releaseHeld(ignored: ReadonlySet<number> = new Set()): void {
  for (const name of [...held.keys()]) {
    if (takeHeld(name) > 0 && !ignored.has(os.constants.signals[name])) process.kill(process.pid, name);
  }
}

// Stopping the program's threads: every one selected is interrupted (PTRACE_INTERRUPT)
// and waited for, so that none of them runs user code until the caller resumes them —
// for a freeze (freeze.ts) or an eviction's drop (evict-stop.ts). Stops that arrive
// meanwhile are kept and handed back, to be handled once the caller is done
// (handleStops). Stops within stops nest: a stop read and not yet handled is never
// waited for again (Tasks.unhandled) — the kernel would not report it twice.
//
// Kernel fact: a thread interrupted while it is in a ptrace-stop already (reported or
// not) reports no new stop; the interrupt stays pending and traps — PTRACE_EVENT_STOP
// with SIGTRAP — at its next resume, before it runs an instruction. The run loop and an
// injection take that trap as nothing and resume it.
import os from 'node:os';
import { interrupt, PTRACE_EVENT } from '../sys/ptrace.js';
import { waitpid, WIFEXITED, WIFSIGNALED, WPTRACEEVENT, WSTOPSIG, __WALL } from '../sys/wait.js';
import type { Tasks, Thread } from './state.js';
import { eventMessage } from './task-gone.js';

export interface StopHost {
  readonly tasks: Tasks;
  /** A task's death, read while the others are stopped. */
  gone(tid: number, status: number): void;
  /** Tells the engine that threads are being stopped (on) or are (off): its faults then do not wait for room. */
  stopping?(on: boolean): void;
  /** A status of a task that is not the program's (a snapshot's capture fork): true when it took it. */
  notProgram?(tid: number, status: number): boolean;
}

/**
 * A thread of one of `procs` to inject a call into: one stopped by PTRACE_INTERRUPT (not
 * a seccomp, exec, fork or job-control stop, whose handling is pending), from `stash`.
 */
export function interruptedThread(tasks: Tasks, stash: Map<number, number>, procs: Set<number>): number | undefined {
  for (const [tid, status] of stash) {
    const t = tasks.threads.get(tid);
    if (t && procs.has(t.proc.pid) && WPTRACEEVENT(status) === PTRACE_EVENT.STOP && WSTOPSIG(status) === os.constants.signals.SIGTRAP) return tid;
  }
  return undefined;
}

/**
 * Stops every thread `which` selects but `stoppedTid` (in a stop of its own already, or
 * 0) and returns the stops read, tid → status, in the order they came. A thread that
 * dies meanwhile is handed to host.gone; a task not followed yet is held.
 */
export function stopThreads(host: StopHost, stoppedTid: number, which: (thread: Thread) => boolean = () => true): Map<number, number> {
  const { tasks } = host;
  const waiting = new Set<number>();
  for (const [tid, thread] of tasks.threads) {
    // A thread already in a ptrace stop (the one at its exit stop) reports no new
    // stop for PTRACE_INTERRUPT: waiting for it would wait forever. A thread past its
    // exit stop runs no more user code and may never report again while we hold the
    // others: a thread-group leader's exit is reported only after every other thread
    // of its group has gone.
    if (tasks.held.has(tid) || tasks.unhandled.has(tid) || tid === stoppedTid || thread.exiting || !which(thread)) continue;
    try {
      interrupt(tid);
      waiting.add(tid);
    } catch {
      // exiting
    }
  }
  const stash = new Map<number, number>();
  // A vfork parent sleeps in the kernel until its child execs or ends, and stops only
  // after that: with its child stopped here before its exec, it cannot stop — nor run
  // user code — until the caller resumes the child. Waiting for it would wait for ever;
  // its stop is handled when it comes, afterwards (and it has no registers to read now).
  const asleepInVfork = (tid: number): boolean => {
    const child = tasks.threads.get(tid)?.vforkChild?.tid;
    if (child === undefined) return false;
    const status = stash.get(child);
    if (status !== undefined) return WPTRACEEVENT(status) !== PTRACE_EVENT.EXEC;
    return tasks.held.has(child) || tasks.unhandled.has(child) || child === stoppedTid;
  };
  const mustWait = (): boolean => [...waiting].some((tid) => !asleepInVfork(tid));
  host.stopping?.(true);
  try {
    waitStops(host, waiting, stash, mustWait);
  } finally {
    host.stopping?.(false);
  }
  return stash;
}

function waitStops(host: StopHost, waiting: Set<number>, stash: Map<number, number>, mustWait: () => boolean): void {
  const { tasks } = host;
  while (waiting.size > 0 && mustWait()) {
    const { pid: tid, status } = waitpid(-1, __WALL);
    if (host.notProgram?.(tid, status)) continue;
    waiting.delete(tid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) { host.gone(tid, status); continue; }
    if (!tasks.threads.has(tid)) { tasks.held.add(tid); continue; }
    // A thread other than the leader that exec'd now has the leader's tid; its own tid
    // never reports again (ptrace(2), "execve(2) under ptrace").
    if (WPTRACEEVENT(status) === PTRACE_EVENT.EXEC) {
      try {
        waiting.delete(Number(eventMessage(tid, PTRACE_EVENT.EXEC)));
      } catch {
        // killed at its exec stop: its exit stop and death come as statuses
      }
    }
    stash.set(tid, status);
    tasks.unhandled.add(tid);
  }
}

/**
 * Handles the stops stopThreads read, in order (each resumes its thread). One of them may
 * start another freeze or eviction (a doorbell's signal stop): the threads whose stops are
 * still to be handled here are stopped already, and it leaves them be (Tasks.unhandled).
 */
export function handleStops(host: StopHost & { handle(tid: number, status: number): void }, stash: Map<number, number>): void {
  for (const [tid, status] of stash) {
    host.tasks.unhandled.delete(tid);
    host.handle(tid, status);
  }
}

// The freeze: every thread of the program stopped (PTRACE_INTERRUPT), their registers
// handed to the engine, the engine write-protects what changed, every thread resumed.
// Stops that arrive meanwhile are kept and handled after the engine's freeze, so no
// thread runs while the engine freezes.
//
// Kernel fact: a thread interrupted while it is in a ptrace-stop already (reported or
// not) reports no new stop; the interrupt stays pending and traps — PTRACE_EVENT_STOP
// with SIGTRAP — at its next resume, before it runs an instruction. The run loop and an
// injection take that trap as nothing and resume it.
import fs from 'node:fs';
import { getRegs, interrupt, PTRACE_EVENT } from '../sys/ptrace.js';
import { waitpid, WIFEXITED, WIFSIGNALED, WPTRACEEVENT, __WALL } from '../sys/wait.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { Doorbell } from '../channels/doorbell.js';
import type { TracerEvent } from '../channels/tracer-messages.js';
import type { Tasks } from './state.js';
import { eventMessage } from './task-gone.js';

export interface FreezeHost {
  readonly tasks: Tasks;
  readonly engine: EngineClient;
  readonly doorbell: Doorbell;
  post(ev: TracerEvent): void;
  /** A task's death, read while the others are stopped. */
  gone(tid: number, status: number): void;
  /** A stop read during the freeze, handled once every thread runs again. */
  handle(tid: number, status: number): void;
}

/** Freezes for snapshot `id`; `stoppedTid` is a thread already stopped (at its exit stop). */
export function freeze(host: FreezeHost, id: number, stoppedTid = 0): void {
  const { tasks, engine } = host;
  const t0 = process.hrtime.bigint();
  const waiting = new Set<number>();
  for (const [tid, thread] of tasks.threads) {
    // A thread already in a ptrace stop (the one at its exit stop) reports no new
    // stop for PTRACE_INTERRUPT: waiting for it would wait forever. A thread past its
    // exit stop runs no more user code and may never report again while we hold the
    // others: a thread-group leader's exit is reported only after every other thread
    // of its group has gone.
    if (tasks.held.has(tid) || tid === stoppedTid || thread.exiting) continue;
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
  // user code — until the freeze is over. Waiting for it would wait for ever; its stop
  // is handled when it comes, after the freeze (and it has no registers to read now).
  const asleepInVfork = (tid: number): boolean => {
    const child = tasks.threads.get(tid)?.vforkChild?.tid;
    if (child === undefined) return false;
    const status = stash.get(child);
    if (status !== undefined) return WPTRACEEVENT(status) !== PTRACE_EVENT.EXEC;
    return tasks.held.has(child) || child === stoppedTid;
  };
  const mustWait = (): boolean => [...waiting].some((tid) => !asleepInVfork(tid));
  while (waiting.size > 0 && mustWait()) {
    const { pid: tid, status } = waitpid(-1, __WALL);
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
  }
  const tStopped = process.hrtime.bigint();
  // A process stopped at its exec event, or at the syscall-exit stop after it (its
  // exec event handled, its set-up not yet: Tracer.onExec), has a new image already;
  // the engine's Mm still holds the old one's pages, which /proc/PID/maps no longer
  // shows. It leaves the mm now (onExec would, after the freeze): the old image is
  // gone, not part of this point in time; its new one has nothing placed yet.
  for (const [tid, status] of stash) {
    const thread = tasks.threads.get(tid);
    if (thread && (WPTRACEEVENT(status) === PTRACE_EVENT.EXEC || thread.pending?.kind === 'exec')) engine.leaveMm(thread.proc.pid);
  }
  const regs: Array<{ tgid: number; tid: number; regs: Buffer }> = [];
  for (const [tid, thread] of tasks.threads) {
    if (tasks.held.has(tid) || (thread.exiting && tid !== stoppedTid)) continue;
    try {
      regs.push({ tgid: thread.proc.pid, tid, regs: getRegs(tid) });
    } catch {
      // a thread in group-stop (PTRACE_LISTEN) cannot be read, nor one killed since:
      // their registers are omitted
    }
  }
  host.doorbell.writeThreads(regs);
  const tRegs = process.hrtime.bigint();
  const frozen = engine.freeze(id);
  const tEngine = process.hrtime.bigint();
  for (const [tid, status] of stash) host.handle(tid, status);
  const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (process.env.NUMACTLX_DEBUG === '1') {
    fs.writeSync(2, `numactlx-tracer: freeze ${id}: stop ${Number(tStopped - t0) / 1e6} ms, regs ${Number(tRegs - tStopped) / 1e6} ms, engine ${Number(tEngine - tRegs) / 1e6} ms, resume ${Number(process.hrtime.bigint() - tEngine) / 1e6} ms\n`);
  }
  engine.setPause(pauseMs);
  host.post({ type: 'frozen', id, pause_ms: pauseMs, pages: frozen });
}

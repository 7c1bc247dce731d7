// The freeze: every thread of the program stopped (stop-threads.ts), their registers
// handed to the engine, the engine write-protects what changed, every thread resumed.
// Stops that arrive meanwhile are kept and handled after the engine's freeze, so no
// thread runs while the engine freezes.
import fs from 'node:fs';
import { getRegs, PTRACE_EVENT } from '../sys/ptrace.js';
import { WPTRACEEVENT } from '../sys/wait.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { Doorbell } from '../channels/doorbell.js';
import type { TracerEvent } from '../channels/tracer-messages.js';
import { handleStops, stopThreads, type StopHost } from './stop-threads.js';
import type { CaptureForks } from './capture-fork.js';

export interface FreezeHost extends StopHost {
  readonly engine: EngineClient;
  readonly doorbell: Doorbell;
  post(ev: TracerEvent): void;
  /** A stop read during the freeze, handled once every thread runs again. */
  handle(tid: number, status: number): void;
  /** NUMACTLX_SNAPSHOT_CAPTURE=fork: the forks that hold a snapshot's image. */
  readonly captures?: CaptureForks;
}

/** Freezes for snapshot `id`; `stoppedTid` is a thread already stopped (at its exit stop). */
export function freeze(host: FreezeHost, id: number, stoppedTid = 0): void {
  const { tasks, engine } = host;
  const t0 = process.hrtime.bigint();
  const stash = stopThreads(host, stoppedTid);
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
  const { frozen, forks } = engine.freeze(id);
  const tFrozen = process.hrtime.bigint();
  if (frozen >= 0) host.captures?.inFreeze(tasks, stash, forks);
  const tEngine = process.hrtime.bigint();
  handleStops(host, stash);
  const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (process.env.NUMACTLX_DEBUG === '1') {
    fs.writeSync(2, `numactlx-tracer: freeze ${id}: stop ${Number(tStopped - t0) / 1e6} ms, regs ${Number(tRegs - tStopped) / 1e6} ms, engine ${Number(tFrozen - tRegs) / 1e6} ms, ` +
      `${host.captures ? `capture forks ${Number(tEngine - tFrozen) / 1e6} ms, ` : ''}resume ${Number(process.hrtime.bigint() - tEngine) / 1e6} ms\n`);
  }
  engine.setPause(pauseMs);
  host.post({ type: 'frozen', id, pause_ms: pauseMs, pages: frozen });
}

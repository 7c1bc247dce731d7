// The tracer's synchronous commands (src/channels/tracer-engine.ts TracerOp), served by
// the engine loop (engine-worker.ts) when the tracer has posted one: each returns 0 or a
// value, or -errno, and the tracer waits for it.
import os from 'node:os';
import { closeFd } from '../sys/eventfd.js';
import { uffdioApi } from '../sys/userfaultfd-calls.js';
import { SysError } from '../sys/libc.js';
import { dupCloexec } from '../sys/fcntl.js';
import { TracerOp } from '../channels/tracer-engine.js';
import type { Doorbell } from '../channels/doorbell.js';
import type { EngineEvent } from '../channels/engine-messages.js';
import type { Engine } from './engine.js';
import type { SnapshotEngine } from './snapshot-engine.js';
import type { Evictor } from './eviction.js';
import { commandOf, exeOf } from '../sys/procfs.js';
import type { PagePolicy } from './ranges.js';
import { SnapshotError } from '../snapshot/queue-api.js';

const { EINVAL, EIO, ENOENT, ESRCH } = os.constants.errno;

/** What the commands work on (the engine worker's state). */
export interface CommandContext {
  engine: Engine;
  snaps: SnapshotEngine;
  evictor: Evictor | undefined;
  doorbell: Doorbell;
  /** The session's program, recorded in every snapshot. */
  program: string[];
  /** The features asked of every new uffd (engine-worker.ts FEATURES). */
  features: bigint;
  /** Tells the main thread, once, that a backing is lost. */
  tellLost(): void;
  post(msg: EngineEvent): void;
  /** What a command leaves for after its answer (the caller runs it): the tracer waits for nothing of it. */
  afterAnswer: Array<() => void>;
  /** The engine thread at the snapshot steps' priority (background-priority.ts). */
  lowerForSteps(): void;
}

function policyAt(args: Float64Array, at: number): PagePolicy {
  const n = args[at + 1];
  return { mode: args[at], nodes: Array.from(args.subarray(at + 2, at + 2 + n)) };
}

export function runCommand(c: CommandContext, op: number, a: Float64Array): number {
  const { engine, snaps, evictor, doorbell } = c;
  switch (op) {
    case TracerOp.Freeze: {
      const threads = doorbell.readThreads();
      const tgid = new Map(threads.map((t) => [t.tid, t.tgid]));
      const label = doorbell.label();
      try {
        const frozen = snaps.freeze({ id: a[0], label, program: c.program }, threads, (tid) => tgid.get(tid) ?? tid);
        a[0] = snaps.forks?.wantedCount ?? 0;
        return frozen;
      } catch (err) {
        c.tellLost();
        c.post({ type: 'snapshot-failed', id: a[0], message: (err as Error).message, noProcess: err instanceof SnapshotError && err.noProcess });
        return -EIO;
      }
    }
    case TracerOp.SetPause: snaps.setPause(a[0]); return 0;
    case TracerOp.ExitStop: snaps.flushProcess(a[0], a[1] === 1); return 0;
    case TracerOp.ThreadExit:
      evictor?.bringBack(a[0], a[1]); // [eviction] the kernel's write needs the page mapped
      return snaps.releaseForKernelWrite(a[0], a[1], a[2]);
    // The stop of the eviction channel: an eviction's drop, or a pre-copy slice (asynchronous tracking, no eviction).
    case TracerOp.EvictRanges:
      return evictor ? evictor.ranges(a[0], Array.from(a.subarray(2, 2 + 2 * Math.min(a[1], 500)))) : snaps.slices?.ranges() ?? 0;
    case TracerOp.EvictDone:
      if (evictor) evictor.done(a[0], a[1], a[2]);
      else snaps.slices?.done(a[2]);
      return 0;
    case TracerOp.AddMm: {
      const [pid, uffd] = [a[0], a[1]];
      try {
        uffdioApi(uffd, c.features);
      } catch (err) {
        return -((err as SysError).errno ?? EINVAL);
      }
      const mm = engine.addMm(pid, uffd, '');
      // Named once answered: the tracer holds the new image stopped until then, and its
      // /proc/PID/exe and cmdline cost ≈ 130 µs a process (an exec's share, §5e).
      c.afterAnswer.push(() => {
        mm.exe = exeOf(pid);
        mm.command = commandOf(pid);
      });
      return 0;
    }
    case TracerOp.Register: return engine.register(a[0], a[1], a[2], policyAt(a, 3));
    case TracerOp.Forked: return engine.forked(a[0], a[1]);
    case TracerOp.ForkedWithUffd: {
      try {
        uffdioApi(a[2], c.features);
      } catch (err) {
        closeFd(a[2]);
        return -((err as SysError).errno ?? EINVAL);
      }
      return engine.forkedWithUffd(a[0], a[1], a[2]);
    }
    case TracerOp.SharesMm: engine.sharesMm(a[0], a[1]); return 0;
    case TracerOp.CaptureNext: return snaps.forks?.next() ?? 0;
    case TracerOp.Captured: {
      const r = snaps.forks?.captured(a[0], a[1]) ?? -ENOENT;
      // The last fork made: its pages staged once answered, the program resuming (held-staging.ts), below fault service's priority.
      if (snaps.forks?.done) c.afterAnswer.push(() => { c.lowerForSteps(); snaps.forks?.stageHeld(); });
      return r;
    }
    case TracerOp.LeaveMm: engine.leaveMm(a[0]); return 0;
    case TracerOp.DupUffd: {
      const mm = engine.mmOf(a[0]);
      return mm ? dupCloexec(mm.uffd) : -ESRCH; // the tracer's from now on (tracer-notes.ts)
    }
    case TracerOp.SetRangePolicy: return engine.setRangePolicy(a[0], a[1], a[2], policyAt(a, 3));
    case TracerOp.SetProcessPolicy: engine.setProcessPolicy(a[0], policyAt(a, 1)); return 0;
    case TracerOp.QueryAddress: {
      const found = engine.queryAddress(a[0], a[1]);
      if (!found) return -ENOENT;
      a[0] = found.policy.mode;
      a[1] = found.policy.nodes.length;
      found.policy.nodes.forEach((n, i) => { a[2 + i] = n; });
      a[2 + found.policy.nodes.length] = found.node;
      return 0;
    }
    default: return -EINVAL;
  }
}

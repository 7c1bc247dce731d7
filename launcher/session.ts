// A session with virtual nodes: the engine (backings, faults, snapshots), the tracer
// (the program under ptrace), the control socket, and the snapshot triggers — the
// snapshot signal, `numactlx snapshot`, cron schedules and --snapshot-on-exit — which
// all go through one queue (one snapshot at a time, requests coalesced, none lost).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SetupError } from './errors.js';
import { EngineHandle } from './engine-handle.js';
import type { LaunchPlan } from './options.js';
import { runProgram, StartedTracer, type ProgramEnd } from './run-program.js';
import { takeHeld } from './early-signals.js';
import { FreezeWaiters, ProgramStart } from './freeze-waiters.js';
import { TriggerTally, type ScheduleTally } from '../src/snapshot/tally.js';
import { startControlServer } from '../src/control/server.js';
import { eventfd, EFD_CLOEXEC, EFD_NONBLOCK } from '../src/sys/eventfd.js';
import { signalName } from '../src/sys/signal.js';
import { Doorbell } from '../src/channels/doorbell.js';
import { SnapshotQueue, snapshotOp } from '../src/snapshot/queue.js';
import { NO_PROCESS, SnapshotError, type SnapshotDone, type SnapshotOutcome } from '../src/snapshot/queue-api.js';
import { loadCron, startSchedules } from '../src/snapshot/schedule.js';
import { createOutput } from '../src/snapshot/export-output.js';
import { MODE_NUMBER, virtualNodesOf } from '../policy/placement.js';
import type { Topology } from '../policy/topology.js';
import type { SessionStats } from '../src/channels/session-stats.js';
import type { SnapshotSummary } from '../src/channels/engine-messages.js';
import type { TracerEvent, TracerStart } from '../src/channels/tracer-messages.js';
import { sessionFeatures } from '../src/kerndat/probe.js';

/**
 * numactlx's exit status when a backing was lost under the session (deleted or
 * truncated): 128 + SIGBUS, what a shell reports for a program whose memory-mapped file
 * was truncated under it — as a QEMU whose guest memory file is truncated dies of SIGBUS.
 */
export const BACKING_LOST_STATUS = 128 + os.constants.signals.SIGBUS;

/** Runs the program on its virtual nodes; resolves with how it ended. */
export async function runOnVirtualNodes(plan: LaunchPlan, topo: Topology, pausePages: number, start: Omit<TracerStart, 'traced' | 'gate'>): Promise<ProgramEnd> {
  const { placement } = plan;
  const settings = plan.snapshots;
  // Probed once, before anything is opened or started (src/kerndat/): a missing feature
  // without a fallback ends numactlx here, in one line.
  const { features, dirtyTracking, capture } = sessionFeatures(process.env, placement.virtualNodes.some((n) => n.maxResident !== undefined));
  const eventFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const engine = new EngineHandle(eventFd);
  const engineReady = engine.start(placement.virtualNodes, plan.faultAheadPages, plan.program, features, { dirtyTracking, capture }, pausePages);
  // The tracer loads while the engine opens the backings; the program starts only once
  // the session is ready (runProgram), and a session that fails before quits it.
  const names = virtualNodesOf(placement.memory, placement.virtualNodes).length > 0;
  const tracer = new StartedTracer({
    ...start,
    traced: {
      channel: engine.channel, eventFd, doorbell: engine.doorbell, snapshotOnExit: settings?.onExit ?? false,
      evict: engine.evict,
      policy: names ? { mode: MODE_NUMBER[placement.memory.mode], nodes: placement.memory.nodes } : undefined,
      virtualNodes: placement.virtualNodes.map((v) => v.node),
      allowedReal: topo.allowedNodes,
      features, capture,
    },
  });
  try {
    await engineReady;
  } catch (err) {
    await tracer.quit();
    throw err;
  }
  const doorbell = new Doorbell(engine.doorbell);
  const freezes = new FreezeWaiters();
  // A backing deleted or truncated under the session: the node's memory cannot be kept,
  // so the session ends — one line, the program killed (by the tracer), exit status
  // BACKING_LOST_STATUS. The snapshot it cost fails for its requesters with the same reason.
  let lostBacking: string | undefined;
  engine.snapshots.on('backing-lost', (message: string, found: string) => {
    if (lostBacking) return;
    lostBacking = message;
    // `ending`: found at the end, once the program has ended by itself (nothing to kill).
    fs.writeSync(2, `numactlx: ${message} (found ${found}): its node's memory cannot be kept, so the session ends: ` +
      `${ending ? '' : 'the program is killed and '}numactlx exits with status ${BACKING_LOST_STATUS}\n`);
    doorbell.requestEnd();
  });

  // take(): let the engine stage the dirty pages, ring the tracer, learn the id when the
  // program is running again, and the commit from the engine.
  const tally = new TriggerTally();
  let lostSaid = false;
  /** The schedule whose tick started snapshot id (a copy that fails later is its failure). */
  const tickOf = new Map<number, ScheduleTally>();
  const prepareMs = new Map<number, number>();
  const programStart = new ProgramStart();
  const take = async (label: string | null): Promise<SnapshotOutcome> => {
    await programStart.reached;
    const t0 = performance.now();
    engine.startChecksums();
    await engine.prepare();
    const id = engine.nextId++;
    prepareMs.set(id, performance.now() - t0);
    // Listening before the ring: the engine's commit may reach this thread before the
    // tracer's word that the program runs again.
    let stopListening = (): void => undefined;
    const durable = new Promise<SnapshotDone>((resolve, reject) => {
      const done = (s: SnapshotSummary): void => { if (s.id === id) { stopListening(); resolve(s); } };
      const failed = (fid: number, message: string, noProcess: boolean): void => { if (fid === id) { stopListening(); reject(new SnapshotError(message, { id, label, noProcess })); } };
      stopListening = (): void => { engine.snapshots.off('done', done); engine.snapshots.off('failed', failed); };
      engine.snapshots.on('done', done);
      engine.snapshots.on('failed', failed);
    });
    durable.catch(() => undefined); // the queue observes it; never an unhandled rejection
    const frozen = freezes.wait(id);
    try {
      if (!doorbell.ring(id, label)) throw new SnapshotError(NO_PROCESS, { label, noProcess: true });
      await frozen;
    } catch (err) {
      stopListening(); // never frozen: no outcome will come
      prepareMs.delete(id);
      throw err;
    }
    return { id, durable };
  };
  const queue = new SnapshotQueue(take, {
    keep: settings?.keep,
    prune: settings?.keep === undefined ? undefined : (keep) => engine.prune(keep),
    onEvent: (ev) => {
      // Asked for by ticks alone and found no process left: the program ended as they came (tally.tickAtEnd).
      const atEnd = ev.type === 'failed' && ev.sources.every((s) => s === 'cron') && ev.error.noProcess;
      if (ev.type === 'failed' && !lostBacking && !atEnd) {
        const what = ev.id && !ev.error.message.startsWith(`snapshot ${ev.id}`) ? `snapshot ${ev.id}: ` : '';
        fs.writeSync(2, `numactlx: ${what}${ev.error.message}\n`);
      }
      if (ev.type === 'prune-failed' && !lostBacking) fs.writeSync(2, `numactlx: --keep: ${ev.error.message}\n`);
      if (ev.type === 'durable') {
        const { id, label, stats } = ev.done;
        // Never a silent hole: the pages the program let go of between the freeze and
        // their copy (munmap, MADV_DONTNEED, a process killed) are named.
        // Said once per session (a program that frees memory all the time would repeat it
        // with every snapshot); status and --stats count them for each snapshot.
        const lost = ev.done.lost_pages ?? 0;
        if (lost > 0 && !lostSaid) {
          lostSaid = true;
          fs.writeSync(2, `numactlx: snapshot ${id}: ${lost} page${lost === 1 ? '' : 's'} frozen in it were unmapped or discarded ` +
            'by the program before they could be copied: the snapshot holds the rest (said once; numactlx status and --stats count them per snapshot)\n');
        }
        tally.snapshot({ id, label, prepare_ms: round(prepareMs.get(id) ?? 0), pause_ms: stats.pause_ms, copy_ms: stats.copy_ms, lost_pages: lost });
      }
      if (ev.type === 'failed' && ev.id !== null && tickOf.has(ev.id)) {
        if (atEnd) tally.tickAtEnd(tickOf.get(ev.id)!);
        else tally.tickFailed(tickOf.get(ev.id)!);
      }
      if (ev.type === 'durable' || ev.type === 'failed') {
        const id = ev.type === 'durable' ? ev.done.id : ev.id ?? -1;
        prepareMs.delete(id);
        tickOf.delete(id);
      }
    },
  });
  const askSnapshot = (source: 'signal' | 'cron' | 'exit', label: string | null = null): Promise<unknown> =>
    queue.request({ source, label }).catch(() => false); // failures are reported by onEvent
  // A tick either starts a snapshot, joins one already waiting (the last one is still
  // being taken: under write load a schedule can outrun the snapshots), or fails.
  const onTick = (expr: string, label: string | null): void => {
    const merged = queue.isWaiting(label);
    const counted = tally.tick(expr, label, merged);
    void queue.request({ source: 'cron', label }).then((answer) => {
      if (!merged) tickOf.set(answer.id, counted);
    }, (err: Error) => {
      if (merged) return; // counted as merged, whatever that snapshot comes to
      if (err instanceof SnapshotError && err.noProcess) tally.tickAtEnd(counted); // the program ended as it came
      else tally.tickFailed(counted); // refused, or failed before its freeze
    });
  };

  // settings.signal was checked against os.constants.signals (src/snapshot/config.ts): it has a name.
  const snapshotSignal = settings ? (signalName(settings.signal) as NodeJS.Signals) : undefined;
  // The listener stays until numactlx exits: with none, libuv restores the default
  // action, and a snapshot signal sent as the program ends would kill numactlx.
  let ending = false;
  const onSignal = (): void => { if (!ending) askSnapshot('signal'); };
  if (snapshotSignal) process.on(snapshotSignal, onSignal);
  // The snapshot signal sent while numactlx was starting: one snapshot (requests
  // coalesce), asked for once the program runs — before, there is nothing to freeze.
  let heldSnapshot = snapshotSignal ? takeHeld(snapshotSignal) > 0 : false;
  if (settings?.schedules.length) await loadCron();
  const schedules = settings?.schedules.length
    ? startSchedules(settings.schedules, onTick, { onMissed: (expr, label) => tally.missed(expr, label) })
    : undefined;

  let programPid: number | null = null;
  const started = new Date().toISOString();
  const startControl = (): ReturnType<typeof startControlServer> => startControlServer({
    info: () => ({
      numactlx_pid: process.pid, program_pid: programPid, program: plan.program, started,
      uid: process.getuid?.() ?? 0,
      virtual_nodes: placement.virtualNodes.map((v) => ({ node: v.node, backing: v.backing.path, kind: v.backing.kind, size_bytes: Number(v.backing.size) })),
    }),
    handlers: {
      status: async () => {
        const { running, waiting } = queue.state();
        return { ...(await engine.stats()), snapshots: { running, waiting }, triggers: tally.report() };
      },
      snapshot: snapshotOp(queue),
    },
  });
  let control: Awaited<ReturnType<typeof startControlServer>>;
  try {
    control = await startControl();
  } catch (err) {
    // No socket, no session: let go of the backings before saying why.
    schedules?.stop();
    ending = true;
    await tracer.quit();
    await engine.shutdown();
    throw new SetupError(`control socket: ${(err as Error).message}`, { cause: err });
  }

  let end: ProgramEnd;
  try {
    end = await runProgram(tracer, {
      onSpawned: (pid) => {
        programPid = pid;
        programStart.reach();
        // The checksum worker loads after a second (or at the first snapshot): a short
        // program never waits for it, nor shares the CPUs with its loading.
        setTimeout(() => engine.startChecksums(), 1000).unref();
        if (heldSnapshot) askSnapshot('signal');
        heldSnapshot = false;
      },
      onEvent: (ev: TracerEvent) => {
        if (ev.type === 'frozen') freezes.frozen(ev.id);
        else if (ev.type === 'freeze-failed') freezes.failed(ev.id);
        else if (ev.type === 'exit-snapshot') askSnapshot('exit');
      },
      notForwarded: snapshotSignal ? [snapshotSignal] : [],
    });
  } finally {
    // The program has ended (or could not start). In order: no new requests; every
    // snapshot queued or in flight finishes, then --keep; then the control socket closes
    // (a `snapshot --wait` client gets the real outcome); then the engine lets go of the
    // backings. A failing step is one line, never the exit status: that is the program's.
    schedules?.stop();
    ending = true;
    programStart.reach(); // requests waiting for a program that never started fail now
    freezes.failAll();
    queue.close();
    await Promise.race([queue.drain().catch(() => undefined), engine.ended]);
    await control.close();
    const stats = await engine.shutdown();
    // Ticks that did not each get a snapshot of their own are said once, at the end.
    for (const line of tally.summary()) fs.writeSync(2, `numactlx: ${line}\n`);
    if (stats && settings) stats.triggers = tally.report();
    if (plan.statsFile && stats) {
      try {
        writeStats(plan.statsFile, stats);
      } catch (err) {
        fs.writeSync(2, `numactlx: ${(err as Error).message}\n`);
      }
    }
  }
  return lostBacking ? { code: BACKING_LOST_STATUS } : end;
}

/**
 * --stats FILE: it describes the program's memory (and its argv), so it is a new file,
 * mode 0600, created O_EXCL|O_NOFOLLOW next to FILE and renamed over it: an existing
 * FILE — another user's, a symlink, a file others hold open — is replaced, never
 * written into.
 */
function writeStats(file: string, stats: SessionStats): void {
  try {
    const out = createOutput(path.dirname(file), path.basename(file), file, true);
    try {
      fs.writeSync(out.fd, `${JSON.stringify(stats, null, 2)}\n`);
    } catch (err) {
      out.abort();
      throw new SetupError(`--stats ${file}: ${(err as NodeJS.ErrnoException).code ?? 'EIO'}`, { cause: err });
    }
    out.commit();
  } catch (err) {
    if (err instanceof SetupError) throw err;
    throw new SetupError(`--stats ${(err as Error).message}`, { cause: err });
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

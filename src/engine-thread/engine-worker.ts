// The engine thread (src/engine-thread/): its entry point and poll(2) loop.
//
// Owns, and is the only thread to touch: every userfaultfd of the program, every mm's
// page table and trapped ranges (engine.ts, mm.ts, page-table.ts), the backings' frame
// stores and catalogs (backing/), the snapshot in progress and its phases (snapshot-*.ts).
//
// One poll(2) loop over every userfaultfd and one eventfd that the tracer (synchronous
// calls, src/channels/tracer-engine.ts) and the main thread (src/channels/engine-mailbox.ts)
// signal. It never returns to the event loop while the session runs: everything arrives
// through fds and shared memory; answers go out with postMessage (engine-messages.ts).
import fs from 'node:fs';
import { BackingStore } from '../../backing/store.js';
import { loadCatalog, type LoadedCatalog } from '../../backing/catalog.js';
import { SnapshotCatalog } from '../../backing/catalog-commit.js';
import { repairHint } from '../../backing/catalog-image.js';
import { eventfdDrain, poll, POLLERR, POLLFD_SIZE, POLLHUP, POLLIN, POLLNVAL } from '../sys/eventfd.js';
import { UFFD_FEATURE } from '../sys/userfaultfd-uapi.js';
import { schedYield } from '../sys/sched.js';
import { TracerChannelServer } from '../channels/tracer-engine.js';
import { MainMailbox, MainRequest } from '../channels/engine-mailbox.js';
import { Engine, type Mm } from './engine.js';
import { SnapshotEngine } from './snapshot-engine.js';
import { sumStats } from './snapshot-commit.js';
import { ChecksumQueue, checksumShared } from '../channels/checksum-ring.js';
import { Doorbell } from '../channels/doorbell.js';
import { postToMain as post, type EngineStart } from '../channels/engine-messages.js';
import { EvictChannel } from '../channels/evict-request.js';
import { Evictor } from './eviction.js';
import { StopSlices } from './precopy-slices.js';
import { TurnTimer } from './turn-timer.js';
import { BackgroundPriority } from './background-priority.js';
import { raiseToService } from '../sys/thread-priority.js';
import { threadNice } from '../sys/sched.js';
import { exeOf } from '../sys/procfs.js';
import { has } from '../kerndat/features.js';
import { runCommand, type CommandContext } from './tracer-commands.js';
import { NoteReader } from './note-reader.js';
import { workerStart } from '../channels/worker-start.js';
import { FrameWarming } from './frame-warming.js';
import { faultPagesOneByOne, warmable } from '../../backing/frame-warmer.js';
import { WARM_FRAMES_ENV, warmFrames } from '../snapshot/warm-frames.js';

const start = await workerStart<EngineStart>();
const doorbell = new Doorbell(start.doorbell);

/**
 * Features asked of every new uffd: the events that keep page tables true, and what the
 * kernel has of the rest (src/kerndat/): EVENT_FORK (without it the tracer makes each
 * forked child's uffd), POISON (Linux 6.6; without it sigbus.ts signals the thread),
 * WP_ASYNC with asynchronous dirty tracking (Linux 6.7: dirty-scan.ts). A forked child's
 * uffd (UFFD_EVENT_FORK) has its parent's features.
 */
const FEATURES = UFFD_FEATURE.PAGEFAULT_FLAG_WP | UFFD_FEATURE.EVENT_REMAP | UFFD_FEATURE.EVENT_REMOVE
  | UFFD_FEATURE.EVENT_UNMAP | UFFD_FEATURE.THREAD_ID
  | (has(start.features, 'EVENT_FORK') ? UFFD_FEATURE.EVENT_FORK : 0n)
  | (has(start.features, 'POISON') ? UFFD_FEATURE.POISON : 0n)
  | (start.dirtyTracking === 'async' ? UFFD_FEATURE.WP_ASYNC : 0n);

/** Loop turns in a row that serve faults only, before a snapshot step is taken anyway. */
const FAULT_TURNS = 1024;
/** Pages copied by the step that ends such a streak. */
const STREAK_STEP_PAGES = 2;

interface OpenNode {
  store: BackingStore;
  loaded: LoadedCatalog;
}

/**
 * Opens every backing and loads its snapshot catalog — which claims the frames the
 * committed snapshots hold, so the first allocation can never hand one out.
 */
function openStores(): OpenNode[] | undefined {
  const stores: BackingStore[] = [];
  const out: OpenNode[] = [];
  try {
    for (const n of start.nodes) {
      const store = BackingStore.open(n.target);
      stores.push(store);
      if (!n.maxResidentPages) faultPagesOneByOne(store.syncTarget()); // eviction reads frames back: readahead kept
      if (store.superblockDamage) fs.writeSync(2, `numactlx: ${n.target.path}: ${store.superblockDamage}\n`);
      if (store.durabilityNote) fs.writeSync(2, `numactlx: ${n.target.path}: ${store.durabilityNote}\n`);
      const loaded = loadCatalog(store);
      for (const d of loaded.damaged) {
        fs.writeSync(2, `numactlx: ${n.target.path}: ${d.reason}: that snapshot is left out (${repairHint(n.target.path)})\n`);
      }
      out.push({ store, loaded });
    }
    return out;
  } catch (err) {
    for (const s of stores) s.close();
    post({ type: 'init-failed', message: (err as Error).message });
    return undefined;
  }
}

/** A backing lost under the session, told to the main thread once (it ends the session). */
let lostTold = false;
function tellLost(snaps: SnapshotEngine): void {
  const lost = snaps.lostMedium;
  if (!lost || lostTold) return;
  lostTold = true;
  post({ type: 'backing-lost', message: lost.problem, found: lost.found });
}

/** One step of the snapshot's commit; tells the main thread when it is done or failed. */
function commitStep(snaps: SnapshotEngine, finishNow = false, warming?: FrameWarming): void {
  const id = snaps.currentId; // before the step: a failing step may end the snapshot
  try {
    const result = finishNow ? snaps.finishNow() : snaps.commitStep();
    if (!result) return;
    const r = result.records[0];
    warming?.took(result.records.map((rec) => rec.stats.new_pages));
    post({ type: 'snapshot-done', snapshot: { id: result.id, label: r?.label ?? null, time: r?.time ?? new Date().toISOString(), stats: sumStats(result.records), lost_pages: result.lostPages } });
  } catch (err) {
    // A catalog frame that could not be written or read back (BackingError 'lost').
    snaps.noteMedium(`as snapshot ${id} was being committed`);
    tellLost(snaps);
    post({ type: 'snapshot-failed', id, message: (err as Error).message });
  }
}

/** One step of --keep's deletion; posts the outcome when it ends. Returns the deletion still under way. */
function pruneStep(snaps: SnapshotEngine, pruning: Generator<void, number[]>): Generator<void, number[]> | undefined {
  try {
    const r = pruning.next();
    if (!r.done) return pruning;
    post({ type: 'pruned', ids: r.value });
  } catch (err) {
    snaps.noteMedium('while --keep deleted old snapshots');
    tellLost(snaps);
    post({ type: 'pruned', ids: [], error: (err as Error).message });
  }
  return undefined;
}

function loop(engine: Engine, stores: BackingStore[], checksums: ChecksumQueue,
  existing: Array<{ id: number; label: string | null }>): void {
  const snaps = new SnapshotEngine(engine, checksums, existing, { extraPages: true, capture: start.capture });
  // [eviction] After the snapshot engine: it wraps the write-fault handler that one set.
  const limits = start.nodes.map((n) => n.maxResidentPages ?? 0);
  const evictor = start.evict && limits.some((l) => l > 0)
    ? new Evictor(engine, limits, new EvictChannel(start.evict), checksums) : undefined;
  // Asynchronous tracking has no eviction (it forces synchronous): the channel's stops are pre-copy slices.
  if (start.evict && !evictor && start.dirtyTracking === 'async') snaps.slices = new StopSlices(new EvictChannel(start.evict), start.pausePages);
  const channel = new TracerChannelServer(start.channel);
  const notes = new NoteReader(channel.notes, {
    mmOf: (pid) => engine.mmOf(pid), isOpen: (mm) => engine.mms.get(mm.uffd) === mm, service: (mm) => engine.service(mm),
    forked: (parent, child) => engine.forked(parent, child), sharesMm: (parent, child) => engine.sharesMm(parent, child),
    leaveMm: (pid) => engine.leaveMm(pid),
    exited: (pid) => snaps.flushProcess(pid, true),
  });
  engine.readNotes = () => notes.drain();
  const readNotes = (): void => notes.apply();
  // Snapshot and eviction work reads program memory: the tracer must not register ranges
  // meanwhile that the engine has not seen, nor note a process's end without a copy.
  const guardReads = (): void => {
    const reads = snaps.busy || snaps.active || evictor !== undefined;
    if (reads === channel.notes.busy) return;
    channel.notes.setBusy(reads, schedYield);
    readNotes();
  };
  const commands: CommandContext = {
    engine, snaps, evictor, doorbell, program: start.program, features: FEATURES, tellLost: () => tellLost(snaps), post, afterAnswer: [],
    lowerForSteps: () => background.lowerFor(true),
  };
  const mailbox = new MainMailbox(start.mailbox);
  const slices = snaps.slices;
  const warming = new FrameWarming(stores, checksums.shared.warm, warmFrames(process.env[WARM_FRAMES_ENV]) && !evictor);
  const stats = () => {
    const s = engine.stats(exeOf);
    return { ...s, nodes: warming.report(s.nodes), snapshot_capture: start.capture, engine_nice_changes: background.changes, ...(slices ? { precopy_slices: { slices: slices.count, stopped_ms: slices.stopMs, stalled: slices.stalled, skipped: slices.skipped, outrun: slices.outrun } } : {}) };
  };
  let fds = Buffer.alloc(POLLFD_SIZE);
  let order: Mm[] = [];
  let faultTurns = 0;
  const turn = new TurnTimer();
  // Fault service above the program where numactlx may (thread-priority.ts); snapshot steps at or below numactlx's own.
  const base = threadNice();
  raiseToService();
  const background = new BackgroundPriority(start.dirtyTracking, undefined, undefined, base);
  /** --keep's deletion under way (MainRequest.Prune), a step per turn. */
  let pruning: Generator<void, number[]> | undefined;
  for (;;) {
    // Before the poll, which may block: the goals are those of the frames handed out by now.
    warming.turn(snaps.busy || snaps.active || pruning !== undefined);
    if (engine.takePollListChanged()) {
      order = [...engine.mms.values()];
      fds = Buffer.alloc(POLLFD_SIZE * (order.length + 1));
      fds.writeInt32LE(start.eventFd, 0);
      fds.writeInt16LE(POLLIN, 4);
      order.forEach((mm, i) => { fds.writeInt32LE(mm.uffd, (i + 1) * POLLFD_SIZE); fds.writeInt16LE(POLLIN, (i + 1) * POLLFD_SIZE + 4); });
    }
    // While a snapshot is prepared, copied or committed, poll without blocking between steps.
    // (1 ms while the only work is waiting for the checksum worker's sync: no spinning.)
    let timeout = snaps.busy || pruning ? (snaps.waitingOnWorker || snaps.slices?.waiting ? 1 : 0) : engine.hasRetries ? 1 : -1;
    const evictWait = evictor ? evictor.pollTimeout : -1;
    if (evictWait >= 0 && (timeout < 0 || evictWait < timeout)) timeout = evictWait;
    poll(fds, order.length + 1, timeout);
    turn.start();
    readNotes();
    if (engine.hasRetries) engine.retryPending();
    // Userfaultfds first: a faulting thread is waiting on each of these.
    let served = false;
    for (let i = 0; i < order.length; i++) {
      const revents = fds.readInt16LE((i + 1) * POLLFD_SIZE + 6);
      if (revents === 0) continue;
      if (!served) background.serve();
      served = true;
      const mm = order[i];
      if (engine.mms.get(mm.uffd) !== mm) continue; // closed (its fd number may be reused already)
      if (revents & (POLLERR | POLLNVAL)) engine.leaveAll(mm);
      else if (revents & (POLLIN | POLLHUP)) engine.service(mm);
    }
    if (fds.readInt16LE(6) !== 0) {
      eventfdDrain(start.eventFd);
      readNotes();
      const op = channel.pending();
      if (op !== 0) {
        background.serve();
        const result = runCommand(commands, op, channel.args);
        guardReads(); // before the answer: a Freeze has just made a snapshot active
        channel.reply(result);
        for (const f of commands.afterAnswer.splice(0)) f();
      }
      const req = mailbox.take();
      if (req & (1 << MainRequest.Stats)) post({ type: 'stats', stats: { ...stats(), copying: snaps.progress } });
      // Pruned in steps below (the queue asks for no snapshot meanwhile).
      if (req & (1 << MainRequest.Prune)) pruning = snaps.pruneSteps(mailbox.value());
      if (req & (1 << MainRequest.Prepare)) snaps.prepare();
      if (req & (1 << MainRequest.Shutdown)) {
        // The program's last LeftMm note may have come after the readNotes above (while a
        // command ran) and before main's Shutdown: main asks only once the tracer has told
        // it the program ended, after that note. Unread, the final statistics kept the
        // program resident (pages_resident 220–508 of a 4 MiB node in 6 of 340 loaded runs).
        readNotes();
        while (pruning) pruning = pruneStep(snaps, pruning);
        if (snaps.active) commitStep(snaps, true); // the program has ended: copy what is left, then commit
        // Deleted or truncated while no snapshot looked: said now, not lost in silence.
        snaps.noteMedium('as the session ended');
        tellLost(snaps);
        post({ type: 'stats', stats: stats() });
        checksums.stop(); // it reads the frames: before they are unmapped
        for (const s of stores) s.close();
        post({ type: 'closed' });
        return;
      }
    }
    // One step of whatever snapshot work there is, between fault batches: prepare,
    // copy, commit (once copied and the pause is known).
    // A writer waiting on a copy was let go: give it the CPU, and look for its next fault
    // before the next snapshot step (at most FAULT_TURNS times in a row, so that a
    // program faulting without pause cannot starve the copier; each of its faults copies
    // a page anyway).
    // [eviction] A step of the round in progress (or its start), whatever else is going on:
    // a program faulting without pause is what fills the node.
    readNotes();
    guardReads();
    evictor?.step();
    turn.mark('faults, commands, eviction');
    if (snaps.takeWoken()) schedYield();
    if (served && faultTurns < FAULT_TURNS) {
      faultTurns++;
      continue;
    }
    // A step after a streak of faults is a short one: a writer is likely waiting already.
    const streak = faultTurns === FAULT_TURNS;
    faultTurns = 0;
    background.lowerFor(snaps.busy || snaps.active || pruning !== undefined);
    if (pruning) pruning = pruneStep(snaps, pruning);
    if (snaps.prepareStep()) post({ type: 'prepared' });
    turn.mark('prune, prepare');
    if (snaps.active) {
      snaps.step(streak ? STREAK_STEP_PAGES : undefined);
      tellLost(snaps); // found by the copy: the session ends without waiting for the commit
      commitStep(snaps, false, warming);
    }
    background.endTurn(snaps.busy || pruning !== undefined);
    turn.end('copy, commit');
  }
}

const opened = openStores();
if (opened) {
  const stores = opened.map((o) => o.store);
  const engine = new Engine(start.nodes.map((n, i) => ({
    node: n.node, backing: n.target.path, kind: n.target.kind, store: stores[i],
    catalog: new SnapshotCatalog(stores[i], opened[i].loaded),
    refs: opened[i].loaded.refs,
  })), start.faultAheadPages, has(start.features, 'POISON'), start.dirtyTracking);
  const checksums = new ChecksumQueue(checksumShared(stores.map((s) => ({ frameBase: Number(s.frameBase), frameCount: s.frameCount, sync: s.syncTarget(),
    warm: warmable(s.kind) ? { dataOffset: Number(s.superblock.dataOffset) } : undefined }))));
  post({ type: 'ready', nextId: Math.max(1, ...opened.map((o) => o.loaded.catalog.nextId)), checksums: checksums.shared });
  try {
    loop(engine, stores, checksums, opened[0]?.loaded.snapshots.map((r) => ({ id: r.id, label: r.label })) ?? []);
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message ?? String(err), stack: (err as Error).stack });
  }
}

// Driving a snapshot through the engine: prepare (the program runs), freeze (called
// while the tracer holds every thread stopped), copy in small batches between fault
// service, write faults on frozen pages, then sync and commit in steps. The page states
// and the invariants are in snapshot.ts. Every long phase is a generator the engine
// loop advances one step at a time, so that a faulting thread never waits behind more
// than one step (COPY_BATCH_PAGES, PREPARE_STEP_PAGES, COMMIT_STEP_CHUNKS).
import fs from 'node:fs';
import os from 'node:os';
import { errnoName } from '../sys/libc.js';
import { schedYield } from '../sys/sched.js';
import { COPYING, DIRTY, PAGE, PENDING } from './page-table.js';
import { PageMap } from './page-map.js';
import { RemoteCopier, MAX_IOV } from './remote-copy.js';
import { pagesInRuns, SnapshotRun, takePending, vmasOf, type MmPart, type SnapshotRequest } from './snapshot.js';
import type { Engine, Mm } from './engine.js';
import type { ChecksumQueue } from './checksums.js';
import type { SnapshotPage, SnapshotRecord, ThreadRegs } from '../snapshot/types.js';

/**
 * Pages copied per step before the engine looks at its userfaultfds again: 64 KiB, about
 * 30 µs of process_vm_readv here — the most a write to a frozen page waits for the copier.
 */
const COPY_BATCH_PAGES = 16;
/** Pages write-protected per prepare step (about 50 µs of UFFDIO_WRITEPROTECT). */
const PREPARE_STEP_PAGES = 1024;
/** Prepare passes at most; another pass when the last one staged at least PREPARE_AGAIN pages. */
const PREPARE_PASSES = 3;
const PREPARE_AGAIN = 256;
/** Page-map chunks (512 pages each) turned into record pages per commit step (~0.15 ms). */
const COMMIT_STEP_CHUNKS = 1;
/** Frame references taken per commit step. */
const COMMIT_STEP_PAGES = 16384;

/** The checksum worker made no progress for this long: the engine computes what is left. */
const CHECKSUM_STALL_MS = 2000;
/** CRCs the engine computes per commit step when there is no checksum worker (~0.2 ms). */
const CHECKSUM_STEP_PAGES = 256;

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const { EAGAIN, ENOENT, ESRCH } = os.constants.errno;
/** Tries (with sched_yield between) before a freeze gives up on a range that keeps answering EAGAIN. */
const FREEZE_EAGAIN_TRIES = 1000;
const ms = (from: bigint, to: bigint = process.hrtime.bigint()): number => Number(to - from) / 1e6;

export interface SnapshotResult {
  id: number;
  records: SnapshotRecord[];
}

export class SnapshotEngine {
  private readonly copier = new RemoteCopier();
  private readonly batch: number[] = [];
  private readonly batchSlot = new Int32Array(MAX_IOV);
  private readonly batchFrame = new Int32Array(MAX_IOV);
  private readonly batchOld = new Int32Array(MAX_IOV);
  private readonly batchAddr = new Float64Array(MAX_IOV);
  private preparing: Generator<void, void> | undefined;
  /** A prepare asked for while the previous snapshot is still being copied or committed. */
  private prepareWanted = false;
  private finishing: Generator<void, SnapshotResult> | undefined;
  /** The id of the snapshot `finishing` commits. */
  private committingId = 0;
  /** A write waited for a copy and was let go since the last takeWoken(). */
  private woken = false;
  /** The commit waits for the checksum worker's sync: the engine loop may sleep 1 ms in poll. */
  waitingOnWorker = false;

  /** Committed snapshots of the backings, oldest first (for --keep). */
  private readonly committed: Array<{ id: number; label: string | null }>;

  constructor(private readonly engine: Engine, private readonly checksums: ChecksumQueue,
    existing: Array<{ id: number; label: string | null }> = []) {
    engine.writeFault = (mm, addr) => this.onWriteFault(mm, addr);
    this.committed = [...existing].sort((a, b) => a.id - b.id);
  }

  /**
   * --keep N: deletes the oldest unlabelled snapshots beyond N from every node and
   * drops their references (a frame no snapshot and no live page holds is freed).
   */
  prune(keep: number): number[] {
    const unlabelled = this.committed.filter((s) => s.label === null);
    const ids = unlabelled.slice(0, Math.max(0, unlabelled.length - keep)).map((s) => s.id);
    if (ids.length === 0) return [];
    this.engine.nodes.forEach((node, slot) => {
      const removed = node.catalog?.remove(ids) ?? [];
      for (const r of removed) for (const p of r.processes) for (const page of p.pages) this.engine.unref(slot, page.frame);
    });
    const gone = new Set(ids);
    this.committed.splice(0, this.committed.length, ...this.committed.filter((s) => !gone.has(s.id)));
    return ids;
  }

  /** A snapshot is frozen and not committed yet. */
  get active(): boolean {
    return this.engine.run !== undefined || this.finishing !== undefined;
  }

  /** Something to do between polls: the engine loop must not block in poll. */
  get busy(): boolean {
    // Copying starts once the tracer has resumed the program (pauseKnown): until then the
    // engine blocks in poll, so that a tracer sharing its CPU gets it at once.
    return this.preparing !== undefined || this.prepareWanted || this.finishing !== undefined
      || (this.engine.run !== undefined && this.engine.run.pauseKnown);
  }

  /**
   * Whether a thread waiting on a copy-before-write was woken since the last call: the
   * engine then yields its CPU, so that the writer runs now, not after the copier's slice.
   */
  takeWoken(): boolean {
    const w = this.woken;
    this.woken = false;
    return w;
  }

  /**
   * The id of the snapshot being copied or committed (0 when none). Not engine.run's
   * alone: the commit clears engine.run in its first step, and a snapshot that fails in a
   * later step must still be reported under its id (with 0 its client waited forever).
   */
  get currentId(): number {
    return this.engine.run?.req.id ?? this.committingId;
  }

  // ---- prepare --------------------------------------------------------------------------
  /** Starts staging the dirty pages for the next freeze (now, or when the current snapshot is committed). */
  prepare(): void {
    this.prepareWanted = true;
  }

  /**
   * One step of the prepare; true when it has just finished (the caller tells the
   * main thread, which then rings the doorbell).
   */
  prepareStep(): boolean {
    if (this.prepareWanted && !this.preparing && !this.active) {
      this.prepareWanted = false;
      this.preparing = this.prepareSteps();
    }
    if (!this.preparing) return false;
    if (!this.preparing.next().done) return false;
    this.preparing = undefined;
    return true;
  }

  private *prepareSteps(): Generator<void, void> {
    const t0 = process.hrtime.bigint();
    const passes: number[] = [];
    let budget = PREPARE_STEP_PAGES;
    for (let pass = 0; pass < PREPARE_PASSES; pass++) {
      let staged = 0;
      for (const mm of this.freezable()) {
        for (const key of mm.table.takeDirtyChunks()) {
          if (!this.engine.mms.has(mm.uffd)) break; // the mm went away during a yield
          const runs: number[] = [];
          const n = mm.table.stageChunk(key, runs);
          if (mm.pins.size > 0) unstagePinned(mm, runs);
          for (let i = 0; i < runs.length; i += 2) {
            if (this.engine.protect(mm, runs[i], runs[i + 1] - runs[i]) === 0) {
              mm.staged.push(runs[i], runs[i + 1]);
              continue;
            }
            // Not protected (the range is going away): DIRTY again, for the freeze to decide.
            for (let a = runs[i]; a < runs[i + 1]; a += PAGE) if (mm.table.get(a) > 0) mm.table.setFlags(a, DIRTY);
          }
          staged += n;
          budget -= n + 16; // a chunk walk costs about 16 pages' protection
          if (budget <= 0) {
            budget = PREPARE_STEP_PAGES;
            yield;
          }
        }
      }
      passes.push(staged);
      if (staged < PREPARE_AGAIN) break;
    }
    if (DEBUG) fs.writeSync(2, `numactlx-engine: prepare ${ms(t0).toFixed(2)} ms, staged per pass ${passes.join(' ')}\n`);
  }

  /** The mms a snapshot covers: every distinct address space with a process. */
  private freezable(): Mm[] {
    return [...new Set(this.engine.mms.values())].filter((mm) => mm.pids.size > 0);
  }

  // ---- freeze ---------------------------------------------------------------------------
  /**
   * The freeze. Every thread of the program is stopped. Write-protects the pages DIRTY
   * now and takes the staged ones; records what the snapshot will hold; returns the
   * number of pages frozen for copying.
   */
  freeze(req: SnapshotRequest, threads: ThreadRegs[], tgidOf: (tid: number) => number): number {
    const engine = this.engine;
    if (engine.run || this.finishing) throw new Error(`snapshot ${engine.run?.req.id ?? ''} is still being taken`);
    // A freeze before its prepare ended (--snapshot-on-exit, a prepare that lost its
    // program): what it staged is in mm.staged, the rest is DIRTY and protected now.
    this.preparing = undefined;
    const run = new SnapshotRun(req);
    let frozen = 0;
    for (const mm of this.freezable()) {
      const pid = mm.pids.values().next().value as number;
      // Messages queued before the threads stopped (faults they left to enter the stop,
      // events) are handled now, before the dirty pages are staged.
      engine.service(mm);
      if (!engine.mms.has(mm.uffd)) continue;
      mm.pins.clear();
      const t0 = process.hrtime.bigint();
      const runs: number[] = [];
      let count = 0;
      for (const key of mm.table.takeDirtyChunks()) count += mm.table.stageChunk(key, runs);
      const t1 = process.hrtime.bigint();
      for (let i = 0; i < runs.length; i += 2) {
        const r = this.protectFrozen(mm, runs[i], runs[i + 1]);
        if (r !== 0) {
          // Nothing of this freeze may stay PENDING unprotected: back to DIRTY.
          for (let j = 0; j < runs.length; j += 2) {
            for (let a = runs[j]; a < runs[j + 1]; a += PAGE) if (mm.table.get(a) > 0) mm.table.setFlags(a, DIRTY);
          }
          throw new Error(`UFFDIO_WRITEPROTECT of pid ${pid} failed: ${errnoName(-r)}`);
        }
      }
      if (!engine.mms.has(mm.uffd)) continue; // its last process died during the freeze
      const t2 = process.hrtime.bigint();
      const stagedPages = pagesInRuns(mm.staged);
      const all = mm.staged.length > 0 ? mm.staged.concat(runs) : runs;
      // Memory is read through a thread that still has it: at an exit snapshot the
      // thread-group leader may be a zombie already (its mm released), its last thread not.
      const mmThreads = threads.filter((t) => mm.pids.has(tgidOf(t.tid)));
      const reader = mmThreads.length > 0 ? mmThreads[0].tid : pid;
      // The text only: parsed at the commit, out of the pause (cold code costs ~0.3 ms here).
      const maps = readMaps(reader);
      if (DEBUG) {
        fs.writeSync(2, `numactlx-engine: freeze pid ${pid}: scan ${ms(t0, t1)} ms (${count} pages, ${runs.length / 2} runs; ` +
          `${stagedPages} staged), protect ${ms(t1, t2)} ms, maps ${ms(t2)} ms\n`);
      }
      frozen += stagedPages + count;
      const part: MmPart = {
        pid: mm.ownerPid || pid, exe: mm.exe, command: mm.command, vmas: [], maps,
        threads: mmThreads, reader,
        runs: all, run: 0, next: all.length > 0 ? all[0] : 0, left: stagedPages + count,
        copied: new PageMap(), newPages: engine.nodes.map(() => 0), lost: new Set(), prev: mm.snap, drops: mm.drops,
      };
      mm.staged = [];
      mm.drops = [];
      run.parts.set(mm, part);
    }
    engine.run = run;
    return frozen;
  }

  /**
   * Write-protects the run [start, end) of a freeze; 0 or -errno. The freeze read every
   * pending message first (a write fault handled after the runs were staged could let a
   * staged page go writable), so EAGAIN here means a thread that caused an event has not
   * run since it was read (mmap_changing drops when it does): yield and try again, and
   * past FREEZE_EAGAIN_TRIES fail the snapshot with the reason rather than wait forever.
   * ENOENT: part of the run is no longer mapped: protect the pages still in the table one
   * by one. A process gone meanwhile: nothing to do.
   */
  private protectFrozen(mm: Mm, start: number, end: number): number {
    const engine = this.engine;
    if (!engine.mms.has(mm.uffd)) return 0;
    let r = engine.protect(mm, start, end - start);
    for (let tries = 0; r === -EAGAIN && tries < FREEZE_EAGAIN_TRIES; tries++) {
      schedYield();
      r = engine.protect(mm, start, end - start);
    }
    if (r !== -ENOENT) return r;
    for (let a = start; a < end; a += PAGE) {
      if (mm.table.get(a) <= 0) continue;
      const p = engine.protect(mm, a, PAGE);
      if (p !== 0 && p !== -ENOENT) return p;
    }
    return 0;
  }

  // ---- copy -----------------------------------------------------------------------------
  /**
   * A write to a write-protected page: copy it first if frozen, then let the write go.
   * Before the freeze a staged page is not copied: it becomes DIRTY|PENDING.
   */
  private onWriteFault(mm: Mm, addr: number): void {
    const entry = mm.table.get(addr);
    if (entry > 0 && mm.table.flagsOf(addr) & PENDING) {
      const part = this.engine.run?.parts.get(mm);
      if (part) {
        this.batch.length = 0;
        this.batch.push(addr);
        this.copyPages(mm, part, this.batch);
        this.woken = true;
      }
    }
    const flags = mm.table.flagsOf(addr);
    if (entry > 0 && !(flags & DIRTY)) mm.table.setFlags(addr, flags | DIRTY);
    this.engine.unprotect(mm, addr, PAGE);
  }

  /**
   * Makes the page holding addr writable now, for a write the kernel does on the
   * program's behalf where a userfaultfd cannot trap it: an exiting thread's
   * clear_child_tid (handle_userfault gives up on PF_EXITING tasks, so a write-protected
   * page makes the kernel skip the write — and pthread_join waits forever). Copied first
   * when frozen and not copied yet, as a write fault would. 0 or -errno.
   */
  releaseForKernelWrite(pid: number, addr: number): number {
    const mm = this.engine.mmOf(pid);
    if (!mm) return 0;
    const page = addr - (addr % PAGE);
    const entry = mm.table.get(page);
    if (entry <= 0) return 0; // never placed, or ordinary memory: never protected
    // Pinned even when writable now: a prepare step may run before the kernel's write.
    mm.pins.add(page);
    const flags = mm.table.flagsOf(page);
    if ((flags & (DIRTY | PENDING)) === DIRTY) return 0; // written since the last snapshot: writable
    if (flags & PENDING) {
      const part = this.engine.run?.parts.get(mm);
      if (part) {
        this.batch.length = 0;
        this.batch.push(page);
        this.copyPages(mm, part, this.batch);
      }
    }
    mm.table.setFlags(page, mm.table.flagsOf(page) | DIRTY);
    return this.engine.unprotectNow(mm, page, PAGE);
  }

  /**
   * Copies up to `pages` pending pages (a batch; fewer when the program is faulting
   * without pause and waits behind this step); true while pages remain.
   */
  step(pages = COPY_BATCH_PAGES): boolean {
    const run = this.engine.run;
    if (!run || !run.pauseKnown) return false;
    let budget = pages;
    const batch = this.batch;
    for (const [key, part] of run.parts) {
      const mm = key as Mm;
      while (budget > 0 && part.left > 0) {
        const taken = takePending(part, budget, batch);
        const kept = this.keepPending(mm, batch, taken);
        if (kept > 0) this.copyPages(mm, part, batch);
        budget -= taken;
      }
      if (budget <= 0) return true;
    }
    return run.remaining > 0;
  }

  /**
   * Keeps the pages of batch[0, taken) still present and PENDING, each once (marked
   * COPYING until copyPages sets its flags); returns how many.
   */
  private keepPending(mm: Mm, batch: number[], taken: number): number {
    let kept = 0;
    for (let i = 0; i < taken; i++) {
      const addr = batch[i];
      const flags = mm.table.flagsOf(addr);
      if (mm.table.get(addr) > 0 && (flags & (PENDING | COPYING)) === PENDING) {
        mm.table.setFlags(addr, flags | COPYING);
        batch[kept++] = addr;
      }
    }
    batch.length = kept;
    return kept;
  }

  /**
   * Copies pending pages of one mm into frames: in place when no committed snapshot
   * holds the page's frame, else into a new one. After this the pages are clean and
   * still write-protected. Typed scratch arrays: this runs once per 16 pages.
   */
  private copyPages(mm: Mm, part: MmPart, addrs: number[]): void {
    const engine = this.engine;
    const run = engine.run!;
    const { batchSlot: slots, batchFrame: frames, batchOld: olds, batchAddr: dest } = this;
    let m = 0;
    this.copier.reset();
    for (const addr of addrs) {
      const slot = mm.table.nodeOf(addr);
      const old = mm.table.get(addr) - 1;
      const node = engine.nodes[slot];
      let frame = old;
      if (node.refs[old] > 1) {
        frame = node.store.allocFrame();
        if (frame < 0) {
          run.failed ??= `backing ${node.backing}: no free frame for snapshot ${run.req.id} (the node is full)`;
          part.lost.add(addr);
          mm.table.setFlags(addr, DIRTY); // copied by a later snapshot
          continue;
        }
        node.refs[frame] = 1;
      }
      slots[m] = slot; frames[m] = frame; olds[m] = old; dest[m] = addr;
      m++;
      this.copier.add(node.store.frameAddr(frame), addr, PAGE);
    }
    let n = this.copier.run(part.reader);
    if (n === -ESRCH) {
      // The reader thread has exited since the freeze: any live process of the mm will do.
      const pid = mm.pids.values().next().value;
      if (pid !== undefined && pid !== part.reader) n = this.copier.run(pid);
    }
    const copied = n < 0 ? 0 : Math.floor(n / PAGE);
    for (let i = 0; i < m; i++) {
      const addr = dest[i];
      const slot = slots[i];
      const frame = frames[i];
      if (i >= copied) {
        // The process is gone or the page was unmapped under us: lost to this snapshot.
        part.lost.add(addr);
        if (frame !== olds[i]) engine.unref(slot, frame);
        if (mm.table.get(addr) > 0) mm.table.setFlags(addr, DIRTY);
        continue;
      }
      if (frame !== olds[i]) {
        mm.table.set(addr, frame + 1, slot, 0);
        engine.unref(slot, olds[i]);
      } else {
        mm.table.setFlags(addr, 0);
      }
      // The snapshot's hold on the frame starts now, not at the commit: a page munmapped
      // after its copy must not free the frame the record will name (finishSteps lets
      // this reference go once the record holds its own, or the snapshot failed).
      engine.nodes[slot].refs[frame]++;
      part.copied.set(addr, frame, 0, slot); // the CRC: from the checksum worker, at the commit
      this.checksums.written(slot, frame);
      part.newPages[slot]++;
    }
    this.checksums.kick();
  }

  /** Copies every frozen page of pid's mm now (the process is about to lose its memory). */
  flushProcess(pid: number): void {
    const mm = this.engine.mmOf(pid);
    const part = mm && this.engine.run?.parts.get(mm);
    if (!mm || !part) return;
    const batch = this.batch;
    while (part.left > 0) {
      const taken = takePending(part, MAX_IOV, batch);
      const kept = this.keepPending(mm, batch, taken);
      if (kept) this.copyPages(mm, part, batch);
    }
  }

  /** Records the pause the tracer measured (interrupt to resume). */
  setPause(ms: number): void {
    if (this.engine.run) {
      this.engine.run.pauseMs = ms;
      this.engine.run.pauseKnown = true;
      this.engine.run.resumedAt = process.hrtime.bigint();
    }
  }

  /** Every frozen page is copied (the commit may still wait for the pause). */
  get copied(): boolean {
    return (this.engine.run?.remaining ?? 0) === 0;
  }

  // ---- commit ---------------------------------------------------------------------------
  /**
   * One step of the commit: starts it once every page is copied and the pause is known;
   * returns the result when the snapshot is committed, undefined while not. Throws when
   * the snapshot failed (earlier ones intact).
   */
  commitStep(): SnapshotResult | undefined {
    const run = this.engine.run;
    if (!this.finishing) {
      if (!run || !run.pauseKnown || run.remaining > 0) return undefined;
      this.finishing = this.finishSteps(run);
      this.committingId = run.req.id;
    }
    let r: IteratorResult<void, SnapshotResult>;
    try {
      r = this.finishing.next();
    } catch (err) {
      this.finishing = undefined;
      this.committingId = 0;
      throw err;
    }
    if (!r.done) return undefined;
    this.finishing = undefined;
    this.committingId = 0;
    return r.value;
  }

  /** The program has ended: copy what is left and commit now. */
  finishNow(): SnapshotResult | undefined {
    const run = this.engine.run;
    if (run) {
      run.pauseKnown = true;
      while (this.step()) { /* copy what is left */ }
    }
    for (;;) {
      const r = this.commitStep();
      if (r || !this.finishing) return r;
    }
  }

  /**
   * Every pending page is copied: make the frames durable, then commit a record per
   * node. Yields between steps; returns the records.
   */
  /**
   * The frames durable: msync + fsync on the checksum worker (half a second for 4 GiB on
   * a file, which the engine must not spend away from faults), here without one. A sync
   * that failed there runs again here, which throws the BackingError that says why.
   */
  private *syncFrames(): Generator<void, void> {
    if (this.checksums.hasWorker) {
      const gen = this.checksums.requestSync();
      this.waitingOnWorker = true;
      try {
        for (;;) {
          let done = false;
          try {
            done = this.checksums.synced(gen);
          } catch {
            break; // failed there: sync here for the error
          }
          if (done) return;
          if (!this.checksums.hasWorker) break; // it stopped: sync here
          yield;
        }
      } finally {
        this.waitingOnWorker = false;
      }
    }
    this.engine.nodes.forEach((node) => node.store.sync());
  }

  private *finishSteps(run: SnapshotRun): Generator<void, SnapshotResult> {
    const engine = this.engine;
    engine.run = undefined;
    try {
      return yield* this.commitRun(run);
    } finally {
      for (const part of run.parts.values()) part.copied.forEach((_addr, frame, _crc, slot) => engine.unref(slot, frame));
    }
  }

  private *commitRun(run: SnapshotRun): Generator<void, SnapshotResult> {
    const engine = this.engine;
    // The checksums of the frames copied (checksums.ts): computed meanwhile by the checksum
    // worker; waited for here, between fault service, and done here if it stalls.
    let waitedSince = process.hrtime.bigint();
    let lastPending = -1;
    while (!this.checksums.settled) {
      if (!this.checksums.hasWorker) {
        this.checksums.settleSome(CHECKSUM_STEP_PAGES);
        yield;
        continue;
      }
      const pending = this.checksums.pending;
      if (pending !== lastPending) { lastPending = pending; waitedSince = process.hrtime.bigint(); }
      if (ms(waitedSince) > CHECKSUM_STALL_MS) { this.checksums.settleSome(); break; }
      yield;
    }
    for (const part of run.parts.values()) part.copied.fillCrcs((frame, slot) => this.checksums.crc(slot, frame));
    const tFinish = process.hrtime.bigint();
    // Whether or not the commit succeeds, each mm's pages now live in the frames this
    // run left them in: the next snapshot must start from this map, not the older one.
    const maps = new Map<MmPart, PageMap>();
    for (const [key, part] of run.parts) {
      const map = part.prev.derive(part.drops, part.lost, part.copied);
      (key as Mm).snap = map;
      maps.set(part, map);
    }
    if (run.failed) throw new Error(run.failed);
    for (const part of run.parts.values()) part.vmas = vmasOf(part.maps);
    const tSync = process.hrtime.bigint();
    yield* this.syncFrames();
    const tSynced = process.hrtime.bigint();
    // copy_ms: from the resume to the frames being durable (the record is committed next).
    const copyMs = ms(run.resumedAt, tSynced);
    yield;
    const records: SnapshotRecord[] = [];
    for (let slot = 0; slot < engine.nodes.length; slot++) {
      const node = engine.nodes[slot];
      const pagesByPart = new Map<MmPart, SnapshotPage[]>();
      for (const [part, map] of maps) {
        const pages: SnapshotPage[] = [];
        const keys = map.keys();
        for (let i = 0; i < keys.length; i++) {
          map.pagesIn(keys[i], slot, (addr, frame, crc) => { pages.push({ addr, frame, crc }); });
          if (i % COMMIT_STEP_CHUNKS === COMMIT_STEP_CHUNKS - 1) yield;
        }
        pagesByPart.set(part, pages);
      }
      const record = run.record(node.node, slot, pagesByPart, copyMs);
      if (node.catalog) yield* node.catalog.commitSteps(record);
      yield;
      // The snapshot now holds a reference on each of its frames.
      let n = 0;
      for (const p of record.processes) {
        for (const page of p.pages) {
          node.refs[page.frame]++;
          if (++n % COMMIT_STEP_PAGES === 0) yield;
        }
      }
      records.push(record);
      yield;
    }
    if (DEBUG) {
      fs.writeSync(2, `numactlx-engine: snapshot ${run.req.id}: copy ${copyMs.toFixed(1)} ms (process_vm_readv ${(this.copier.readvNs / 1e6).toFixed(1)}, ` +
        `populate ${(this.copier.populateNs / 1e6).toFixed(1)}), ` +
        `maps ${ms(tFinish, tSync)} ms, sync ${ms(tSync, tSynced)} ms, commit ${ms(tSynced)} ms\n`);
    }
    this.copier.readvNs = 0;
    this.copier.populateNs = 0;
    this.committed.push({ id: run.req.id, label: run.req.label });
    return { id: run.req.id, records };
  }
}

/**
 * Takes the pinned pages (Mm.pins) out of runs just staged by a prepare: DIRTY again
 * and left writable, for the freeze to take.
 */
function unstagePinned(mm: Mm, runs: number[]): void {
  const out: number[] = [];
  for (let i = 0; i < runs.length; i += 2) {
    let start = runs[i];
    const end = runs[i + 1];
    for (let a = start; a < end; a += PAGE) {
      if (!mm.pins.has(a)) continue;
      if (a > start) out.push(start, a);
      mm.table.setFlags(a, DIRTY);
      start = a + PAGE;
    }
    if (start < end) out.push(start, end);
  }
  runs.splice(0, runs.length, ...out);
}

/** /proc/PID/maps as text ('' when the process is gone). */
function readMaps(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return '';
  }
}

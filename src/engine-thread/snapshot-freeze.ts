// Freeze, the second phase of a snapshot: called while the tracer holds every thread of
// the program stopped. Protects what was written since the prepare, takes the staged
// runs, and reads /proc/PID/maps; the result is the SnapshotRun the copy works through.
import fs from 'node:fs';
import os from 'node:os';
import { errnoName } from '../sys/libc.js';
import { schedYield } from '../sys/sched.js';
import { mapsText } from '../sys/procfs.js';
import { DIRTY, PAGE } from './page-table.js';
import { newPart, pagesInRuns, SnapshotRun, type MmPart, type SnapshotRequest } from './snapshot.js';
import { freezable } from './snapshot-prepare.js';
import type { Engine, Mm } from './engine.js';
import type { ThreadRegs } from '../snapshot/types.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const { EAGAIN, ENOENT, ESRCH } = os.constants.errno;
/** Tries (with sched_yield between) before a freeze gives up on a range that keeps answering EAGAIN. */
const FREEZE_EAGAIN_TRIES = 1000;
const ms = (from: bigint, to: bigint = process.hrtime.bigint()): number => Number(to - from) / 1e6;

/** Every DIRTY page of mm becomes PENDING, its runs ([start, end) pairs) added to `runs`; how many pages. */
export function stageDirty(mm: Mm, runs: number[]): number {
  let count = 0;
  for (const key of mm.table.takeDirtyChunks()) count += mm.table.stageChunk(key, runs);
  return count;
}

/**
 * The freeze. Every thread of the program is stopped. Write-protects the pages DIRTY
 * now and takes the staged ones; records what the snapshot will hold; returns the
 * number of pages frozen for copying, and the run the copy then works through.
 */
export function freeze(engine: Engine, req: SnapshotRequest, threads: ThreadRegs[], tgidOf: (tid: number) => number): { run: SnapshotRun; frozen: number } {
  const run = new SnapshotRun(req);
  let frozen = 0;
  for (const mm of freezable(engine)) {
    const pid = mm.pids.values().next().value as number;
    // Messages queued before the threads stopped (faults they left to enter the stop,
    // events) are handled now, before the dirty pages are staged.
    engine.service(mm);
    if (!engine.mms.has(mm.uffd)) continue;
    mm.dropEndedPins();
    const t0 = process.hrtime.bigint();
    const runs: number[] = [];
    const count = stageDirty(mm, runs);
    const t1 = process.hrtime.bigint();
    // Nothing of this freeze may stay PENDING unprotected: back to DIRTY.
    const unstage = (): void => {
      for (let j = 0; j < runs.length; j += 2) {
        for (let a = runs[j]; a < runs[j + 1]; a += PAGE) if (mm.table.get(a) > 0) mm.table.setFlags(a, DIRTY);
      }
    };
    let gone = false;
    for (let i = 0; i < runs.length && !gone; i += 2) {
      const r = protectFrozen(engine, mm, runs[i], runs[i + 1]);
      if (r === 0) continue;
      unstage();
      // ESRCH: the mm has no user left — every process of it has exited (a forked child
      // that just ended) and the tracer has not reported it yet. Nothing of it to freeze.
      if (r === -ESRCH) gone = true;
      else throw new Error(`UFFDIO_WRITEPROTECT of pid ${pid} failed: ${errnoName(-r)}`);
    }
    if (gone || !engine.mms.has(mm.uffd)) continue; // its last process died before or during the freeze
    const t2 = process.hrtime.bigint();
    const stagedPages = pagesInRuns(mm.staged);
    const all = mm.staged.length > 0 ? mm.staged.concat(runs) : runs;
    const { reader, maps, mmThreads } = readerOf(mm, pid, threads, tgidOf);
    if (maps === '') {
      // The process let go of its memory between the protect and here: it is past its
      // exit stop (a thread the tracer did not stop) and now a zombie. Its pages would be
      // recorded with no mapping around them; it is not part of this point in time.
      unstage();
      continue;
    }
    if (DEBUG) {
      fs.writeSync(2, `numactlx-engine: freeze pid ${pid}: scan ${ms(t0, t1)} ms (${count} pages, ${runs.length / 2} runs; ` +
        `${stagedPages} staged), protect ${ms(t1, t2)} ms, maps ${ms(t2)} ms\n`);
    }
    frozen += stagedPages + count;
    const part: MmPart = { ...newPart(mm, pid, engine.nodes.length), maps, threads: mmThreads, reader,
      runs: all, next: all.length > 0 ? all[0] : 0, left: stagedPages + count, drops: mm.drops };
    mm.staged = [];
    mm.drops = [];
    run.parts.set(mm, part);
    // [eviction] Frames eviction wrote since the last snapshot join this one as they are.
    engine.eviction?.recordFresh(mm, part);
  }
  run.frozenPages = frozen;
  return { run, frozen };
}

/**
 * The task the copier reads an mm through, its /proc/PID/maps text ('' when the mm is
 * gone) and its threads' registers. Memory is read through the thread-group leader: its
 * pid cannot name another task while its process exists (it stays a zombie until the
 * tracer reaps it). Any other thread's tid is freed when it exits, and a fork may get it:
 * the copier would then read the child's memory — and a missing page of a child whose
 * FORK event is not read yet faults on a userfaultfd only this thread serves (the churn
 * test hung so). Only at an exit snapshot, where the leader may be a zombie already (its
 * mm released) and its last thread not, is a thread the reader. The maps are kept as
 * text: parsed at the commit, out of the pause (cold code costs ~0.3 ms here).
 */
export function readerOf(mm: Mm, pid: number, threads: ThreadRegs[], tgidOf: (tid: number) => number):
  { reader: number; maps: string; mmThreads: ThreadRegs[] } {
  const mmThreads = threads.filter((t) => mm.pids.has(tgidOf(t.tid)));
  let reader = pid;
  let maps = mapsText(reader);
  if (maps === '' && mmThreads.length > 0) {
    reader = mmThreads[0].tid;
    maps = mapsText(reader);
  }
  return { reader, maps, mmThreads };
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
function protectFrozen(engine: Engine, mm: Mm, start: number, end: number): number {
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

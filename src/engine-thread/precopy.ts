// Pre-copy snapshots, with asynchronous dirty tracking (dirty-scan.ts; QEMU's live
// migration has the same shape). There are no write faults to copy a page before its
// first write, so the snapshot's pages are copied ahead of the freeze, while the
// program runs, and what it wrote meanwhile is copied in the freeze:
//
// Prepare (precopySteps, the program runs): passes of {read-and-reset of the written
// pages (PAGEMAP_SCAN) → copy every DIRTY page into this snapshot's frames}. Frames are
// redirect-on-write exactly as in the synchronous mode (snapshot-copy.ts copyPages): a
// frame an older snapshot holds is never written, and a page copied twice by one
// snapshot is copied again into the frame it got the first time. Passes repeat while the
// written set shrinks (at most PASSES; it stops when what a pass found is at most SMALL,
// or not below SHRINK of what the pass before copied — a program rewriting all its
// memory faster than it is copied gains nothing from another pass; that is looked at
// with a read-only scan first, so such a pass protects nothing again; under =auto a first
// pass that the program outruns stops early: precopy-probe.ts).
//
// Freeze (freezeAsync, every thread stopped by the tracer): a last read-and-reset, and
// every DIRTY page is copied now, in the pause; then what the freeze does in either mode
// (the pages no virtual node holds: snapshot-extras.ts; /proc/PID/maps; the registers).
// The program resumes with nothing left to copy: no write-protect fault, no
// copy-before-write; the commit follows as in the synchronous mode. (Unless a fork holds the
// image: always with =fork; with =auto, the default, where pre-copy cannot converge: snapshot-capture.ts.)
//
// Why the snapshot is the freeze's instant: a page's frame in this snapshot is either a
// copy made in the pause (its content at the freeze), or a pre-copy made after a scan
// had write-protected the page. A write after that scan clears the page's uffd-wp bit
// before the store lands (the kernel resolves the protection fault first), so a page
// written after its pre-copy is WRITTEN at the freeze's scan and copied again in the
// pause. A page not in the freeze's set was not written since its last pre-copy (or,
// not copied by this snapshot, since the snapshot that copied it: the same argument, one
// snapshot earlier). Pages the kernel cannot report are DIRTY in the table (mremap moves,
// a fork's pages, adopted pages) and copied in the pause as well.
//
// Pages that leave the program before the freeze (munmap, DONTNEED, mremap's source,
// a process's exit or exec) are not in the snapshot: their pre-copies are let go
// (Precopy.uncopy through SnapshotHooks.dropped; a part whose mm is gone at the freeze is
// released whole). Eviction (pages dropped by numactlx itself) goes through the same
// REMOVE event, so it needs nothing more here.
import fs from 'node:fs';
import { PAGE } from './page-table.js';
import { copyDirty, copyUntil } from './precopy-copy.js';
import { drain } from '../../backing/steps.js';
import { newPart, SnapshotRun, type CopyTarget, type MmPart, type SnapshotRequest } from './snapshot.js';
import { adoptUntracked, freezable } from './snapshot-prepare.js';
import { readerOf } from './snapshot-freeze.js';
import { applyCarried } from './held-staging.js';
import { RewriteProbe } from './precopy-probe.js';
import type { DirtyScanner } from './dirty-scan.js';
import type { FrozenPageCopier } from './snapshot-copy.js';
import type { Engine, Mm } from './engine.js';
import type { ThreadRegs } from '../snapshot/types.js';
import { SLICE_MS, sliceUntilSmall, type StopSlices } from './precopy-slices.js';
import { forkWouldLack, holdAhead, holdUnconverged } from './snapshot-capture.js';
import type { SmapsVma } from '../sys/procfs.js';
import type { SnapshotCapture } from '../kerndat/features.js';

const PASSES = 4; // pre-copy passes at most
/** A pass that found at most this many written pages is copied, and is the last (16 MiB: a few ms in the pause). */
const SMALL = 4096;
/** A pass that finds more than this share of what the pass before copied is not made: the freeze takes it. */
const SHRINK = 0.7;
// A look finding this share of the last pass's copy written again: no slice (nor, under auto, a pass for a few prepares:
// holdAhead). A dirty set grows ever more slowly: in a ≥ 16 ms run a writer dirties ≥ 16 ms × seen/pass, so a 6 ms slice
// gains only by copying 2.4× faster than the pass did.
const SATURATED = 0.9;
/** Bytes scanned per step of a pass (≈ 4 ms of PAGEMAP_SCAN when all written). */
const SCAN_STEP = 32 << 20;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

/** A pre-copy between its prepare and its freeze; owned by the SnapshotEngine. */
export class Precopy implements CopyTarget {
  readonly parts = new Map<Mm, MmPart>();
  failed: string | undefined;
  readonly name = 'the snapshot being prepared';
  /** Written pages found per pass (NUMACTLX_DEBUG). */
  readonly passes: number[] = [];

  constructor(private readonly engine: Engine) {}

  partOf(mm: Mm, pid: number): MmPart {
    let part = this.parts.get(mm);
    if (!part) {
      part = newPart(mm, pid, this.engine.nodes.length);
      this.parts.set(mm, part);
    }
    return part;
  }

  /** Page `addr` of mm left the program before the freeze: its pre-copy is not the snapshot's. */
  uncopy(mm: Mm, addr: number): void {
    const part = this.parts.get(mm);
    const frame = part ? part.copied.frameOf(addr) : -1;
    if (frame < 0) return;
    const slot = part!.copied.slotOf(addr);
    part!.copied.clearRange(addr, addr + PAGE);
    part!.newPages[slot]--;
    this.engine.unref(slot, frame);
  }

  /** Lets go of every frame the part of mm holds (its mm is not in the snapshot). */
  release(mm: Mm): void {
    const part = this.parts.get(mm);
    if (!part) return;
    part.copied.forEach((_a, frame, _crc, slot) => this.engine.unref(slot, frame));
    this.parts.delete(mm);
  }
}

/** A process of mm still running (the pagemap and the copies go through it). */
const livePid = (mm: Mm): number | undefined => [...mm.pids].find((p) => !mm.exited.has(p));

/** The prepare of a pre-copy snapshot, as steps for the engine loop (the header says what it does). */
export function* precopySteps(engine: Engine, copier: FrozenPageCopier, scanner: DirtyScanner, state: Precopy,
  slicer?: StopSlices, held: SnapshotCapture = 'precopy'): Generator<void, void> {
  const t0 = performance.now();
  const capture = held === 'fork';
  for (const mm of freezable(engine)) {
    applyCarried(mm);
    mm.holdByFork = held === 'auto' && holdAhead(mm, livePid(mm));
  }
  const ahead = freezable(engine).filter((m) => m.holdByFork).map(livePid);
  // The smaps a first prepare reads to adopt pages are the ones forkWouldLack looks at: read once.
  const smapsRead = new Map<Mm, { pid: number; vmas: SmapsVma[] }>();
  yield* adoptUntracked(engine, capture ? (mm, pid, vmas) => smapsRead.set(mm, { pid, vmas }) : undefined);
  // Pre-copied: the mms no fork holds (Mm.noCapture; looked for now with =fork: snapshot-capture.ts).
  // The others' written pages are read and reset now, the program running: the freeze's own then
  // finds only what was written since (a 1M-key redis-server: 2–3 ms in the pause instead of 11–20).
  const precopied = (mm: Mm): boolean => !(capture || mm.holdByFork) || mm.noCapture !== undefined;
  if (capture) {
    for (const mm of freezable(engine)) {
      const pid = livePid(mm);
      const read = smapsRead.get(mm);
      if (pid !== undefined) mm.noCapture = forkWouldLack(pid, read?.pid === pid ? read.vmas : undefined);
      yield;
    }
  }
  const mmsOf = (): Mm[] => freezable(engine).filter(precopied);
  for (const mm of freezable(engine).filter((m) => !precopied(m))) {
    const pid = livePid(mm);
    if (pid !== undefined) yield* scanner.scanProcess(mm, pid, SCAN_STEP, true);
  }
  let [before, saturated, outrun] = [Number.POSITIVE_INFINITY, false, ''];
  // The pause copies what a pass leaves unless slices hold it by a fork: only then may a pass stop early.
  const probing = held === 'auto' && slicer !== undefined && slicer.pausePages > 0;
  for (let pass = 0; pass < PASSES; pass++) {
    // After the first pass, what was written is looked at before it is reset: a pass that
    // would not shrink the set stops here, and the program is not made to take a
    // protection fault on every page it writes once more for nothing (the freeze resets).
    if (pass > 0) {
      let seen = 0;
      for (const mm of mmsOf()) {
        const pid = livePid(mm);
        if (pid !== undefined) seen += Math.max(0, yield* scanner.scanProcess(mm, pid, SCAN_STEP, true, false));
      }
      if (seen > before * SHRINK) {
        state.passes.push(seen);
        saturated = seen >= before * SATURATED;
        break;
      }
    }
    let written = 0;
    for (const mm of mmsOf()) {
      const pid = livePid(mm);
      if (pid !== undefined) written += Math.max(0, yield* scanner.scanProcess(mm, pid, SCAN_STEP, true));
    }
    state.passes.push(written);
    let copied = 0;
    for (const mm of mmsOf()) {
      const pid = livePid(mm);
      if (pid === undefined || !engine.mms.has(mm.uffd)) continue;
      const part = state.partOf(mm, pid);
      part.reader = pid;
      // A first pass the program outruns stops there, where a fork will hold what it leaves (precopy-probe.ts).
      const probe = pass === 0 && probing ? new RewriteProbe(scanner, mm, pid) : undefined;
      copied += yield* copyDirty(copier, state, mm, part, true, () => engine.mms.has(mm.uffd) && !probe?.outrun());
      if (probe?.seen) {
        [outrun, saturated] = [`; first pass outrun after ${copied} pages (${probe.seen})`, true];
        slicer!.outrun++;
      }
      if (outrun) break;
    }
    if (outrun || (pass > 0 && written <= SMALL)) break;
    before = copied;
  }
  const skips = slicer?.skipped ?? 0;
  const sliced = (slicer ? yield* slices(engine, copier, scanner, state, slicer, mmsOf, held === 'auto', saturated) : '') +
    (ahead.length > 0 ? `; held by a fork without passes: ${ahead.join(' ')}` : '');
  if (slicer && ahead.length > 0 && slicer.skipped === skips) slicer.skipped++; // one count a prepare
  if (DEBUG) fs.writeSync(2, `numactlx-engine: pre-copy ${(performance.now() - t0).toFixed(1)} ms, written per pass ${state.passes.join(' ')}${outrun}${sliced}\n`);
}

/**
 * What the passes left, copied in slices with the program stopped, and between them with
 * it running, until it fits in the pause (precopy-slices.ts). Its written pages are read
 * and reset first with the program running: a reset of 200,000 written pages in the first
 * stop made it 61 ms long. None when the last look was `saturated` (SATURATED; unless
 * NUMACTLX_PAUSE_PAGES=0 asks for slices). Returns a note for NUMACTLX_DEBUG.
 */
function* slices(engine: Engine, copier: FrozenPageCopier, scanner: DirtyScanner, state: Precopy,
  slicer: StopSlices, mmsOf: () => Mm[], holdLeft: boolean, saturated: boolean): Generator<void, string> {
  const left = new Map<Mm, number>();
  if ((state.passes.at(-1) ?? 0) <= slicer.pausePages) return '';
  for (const mm of mmsOf()) {
    const pid = livePid(mm);
    if (pid === undefined) continue;
    yield* scanner.scanProcess(mm, pid, SCAN_STEP, true);
    left.set(mm, mm.table.dirtyCount());
  }
  const found = [...left.values()].reduce((a, b) => a + b, 0);
  const [count, stopMs, stalled] = [slicer.count, slicer.stopMs, slicer.stalled];
  const partFor = (mm: Mm): MmPart | undefined => {
    const pid = livePid(mm);
    if (pid === undefined || !engine.mms.has(mm.uffd)) return undefined;
    const part = state.partOf(mm, pid);
    part.reader = pid;
    return part;
  };
  const skip = saturated && slicer.pausePages > 0 && found > slicer.pausePages;
  if (skip) slicer.skipped++;
  else yield* sliceUntilSmall(slicer, () => mmsOf(), left, {
    stopped: (mm) => {
      // The program is stopped: what was queued first, then a scan of mm and a copy of SLICE_MS.
      engine.service(mm);
      const part = partFor(mm);
      if (!part) return -1;
      drain(scanner.scanProcess(mm, part.reader, Number.POSITIVE_INFINITY, false));
      drain(copyUntil(copier, state, mm, part, performance.now() + SLICE_MS, false, () => true));
      return mm.table.dirtyCount();
    },
    running: function* (mm, until) {
      const part = partFor(mm);
      if (part) yield* copyUntil(copier, state, mm, part, until, true, () => engine.mms.has(mm.uffd));
    },
  });
  const n = slicer.count - count;
  const held = holdLeft ? holdUnconverged(left, slicer.pausePages, livePid, skip) : '';
  return held + (n === 0 ? `; left ${found}, no slice${skip ? ' (rewritten as fast as copied)' : ''}` : `; left ${found}, ${n} slices, stopped ${(slicer.stopMs - stopMs).toFixed(1)} ms` +
    (slicer.stalled > stalled ? ', no progress' : ''));
}

/**
 * The freeze of a pre-copy snapshot (every thread stopped): the last read-and-reset and
 * the copy of what it found, per mm; returns the run (nothing left to copy) and how many
 * pages were copied in the pause.
 */
export function freezeAsync(engine: Engine, copier: FrozenPageCopier, scanner: DirtyScanner, state: Precopy,
  req: SnapshotRequest, threads: ThreadRegs[], tgidOf: (tid: number) => number, held: SnapshotCapture = 'precopy'): { run: SnapshotRun; frozen: number } {
  const run = new SnapshotRun(req);
  run.failed = state.failed;
  const mms = freezable(engine);
  for (const mm of [...state.parts.keys()]) if (!mms.includes(mm)) state.release(mm);
  let frozen = 0;
  for (const mm of mms) {
    const pid = mm.pids.values().next().value as number;
    // Messages queued before the threads stopped (faults, events) are handled first.
    engine.service(mm);
    const { reader, maps, mmThreads } = readerOf(mm, pid, threads, tgidOf);
    if (!engine.mms.has(mm.uffd) || maps === '') {
      // Its last process ended before or during the freeze: not part of this instant.
      state.release(mm);
      continue;
    }
    mm.dropEndedPins();
    const part = state.partOf(mm, pid);
    // A pre-copy that failed (its reader gone, a page gone: copy-guard.ts) is not a page
    // lost to the snapshot: still in the table, the page is DIRTY and copied now; gone
    // from it, it leaves the snapshot as a dropped page does.
    for (const addr of part.lost) if (mm.table.get(addr) <= 0) mm.drops.push([addr, addr + PAGE]);
    Object.assign(part, { pid: mm.ownerPid || pid, exe: mm.exe, command: mm.command, maps, threads: mmThreads, reader,
      prev: mm.snap, drops: mm.drops, lost: new Set<number>() });
    mm.drops = [];
    // Held by a fork (snapshot-capture.ts): nothing read now, the written pages are staged out of the fork after the pause (held-staging.ts).
    const byFork = !mm.noCapture && (held === 'fork' || (held === 'auto' && mm.holdByFork));
    mm.holdByFork = false;
    applyCarried(mm);
    const t0 = performance.now();
    if (!byFork) drain(scanner.scanProcess(mm, reader, Number.POSITIVE_INFINITY, false));
    const t1 = performance.now();
    part.unstaged = byFork;
    const copied = byFork ? 0 : drain(copyDirty(copier, run, mm, part, false, () => true));
    if (DEBUG) fs.writeSync(2, `numactlx-engine: freeze pid ${pid}: ${byFork ? 'held, staged after the pause' : `scan ${(t1 - t0).toFixed(2)} ms, copy ${copied} pages ${(performance.now() - t1).toFixed(2)} ms`}\n`);
    frozen += copied;
    run.parts.set(mm, part);
  }
  run.frozenPages = frozen;
  return { run, frozen };
}

// Pre-copy slices: the end of a pre-copy (precopy.ts) whose written set is still too big
// for the pause. QEMU's live migration has the same problem and throttles the vCPUs
// (auto-converge); here the program is stopped for short slices instead. In each slice
// every thread of one address space is stopped (the tracer's stop for eviction,
// src/channels/evict-request.ts, which asks nothing else of the tracer: the engine runs
// the slice in its EvictRanges call and drops nothing), the written pages are read and
// reset, and DIRTY pages are copied for SLICE_MS; then the program runs again for a while,
// and the copy goes on meanwhile as in a pass. The stops make progress that a pass with
// the program running cannot: nothing is written while they copy. Slices go on until the
// DIRTY set fits in the pause (StopSlices.pausePages); the program runs less between slices while
// they make little progress (from FIRST_RUN_MS down to MIN_RUN_MS), and stop when they make
// none (STALL_SLICES): the freeze then takes what is left, as it would after any number of them
// (a fork holds it with NUMACTLX_SNAPSHOT_CAPTURE=auto: snapshot-capture.ts holdUnconverged).
//
// Why: with asynchronous dirty tracking no write fault reaches numactlx, so what a
// pre-copy leaves is copied in the pause — a program writing 64 random pages a turn of
// 1 GiB left 4,700–49,000 pages, a pause of 51–498 ms, where fork() stalls it 36–40 ms
// (docs/BENCHMARKS.md "Pre-copy slices"). A slice stops the program ≈ the scan of the mm
// plus SLICE_MS.
//
// Correctness is the pre-copy's: a slice is a pass that happens to run with the program
// stopped; every page written after its reset is found by the next scan, the freeze's
// included.
import { RERING_MS, type EvictChannel } from '../channels/evict-request.js';
import type { Mm } from './engine.js';
/** How long one slice copies (its scan comes first: ≈ 3–5 ms for 1 GiB here). */
export const SLICE_MS = 6;
/** Slices at most in one prepare; then the freeze takes what is left. */
const MAX_SLICES = 400;
/** The program's run between two slices: the first, and the least it is cut to. */
const FIRST_RUN_MS = 24;
// Long enough for a writer faulting on each page to get something done between two stops: at
// 2 ms and at 8 ms its turns of 64 page writes spanned two stops (stalls of 40–90 ms, against
// 20–30 at 16 ms; docs/BENCHMARKS.md "Pre-copy slices").
const MIN_RUN_MS = 16;
/** A request not taken this long: no more slices (the freeze takes what is left). */
const GIVE_UP_MS = 1000;
/**
 * Slices that did not bring what is left a tenth below the least seen so far: the program
 * writes faster than slices copy, and slices stop (the freeze takes what is left). stress-ng's
 * two 1 GiB rewriters took all MAX_SLICES, 4.6 s of stops in 19 s, and then a pause of 270 ms
 * that copied what they had left, as much as before the first slice (docs/BENCHMARKS.md §5o).
 */
const STALL_SLICES = 8;
const PROGRESS = 0.1;

type Poll = 'done' | 'waiting' | 'failed';

/** The engine's side of slice stops (the channel's other user is eviction, which forces synchronous tracking). */
export class StopSlices {
  private work: (() => void) | undefined;
  private state: 'idle' | 'requested' | 'done' = 'idle';
  private abandoned = false;
  private requestedAt = 0;
  private rungAt = 0;
  /** Slices taken, and their total stop time (ms, the tracer's count), for NUMACTLX_DEBUG. */
  count = 0;
  stopMs = 0;
  /** Prepares whose slices stopped for making no progress (STALL_SLICES). */
  stalled = 0;
  /** Prepares that took no slice: their last pass found nearly all it copied written again (precopy.ts SATURATED). */
  skipped = 0;
  /** Prepares whose first pass the program outran (precopy-probe.ts). */
  outrun = 0;
  /** Waiting for a slice or between two: the engine loop may block in poll (1 ms at a time). */
  waiting = false;

  /**
   * @param pausePages what the pause may copy: slices stop once the DIRTY set is this small
   * (NUMACTLX_PAUSE_PAGES, src/snapshot/pause-limit.ts; 0: every written page is copied in a
   * slice, as the consistency test does to run slices in every snapshot).
   */
  constructor(private readonly channel: EvictChannel, readonly pausePages: number) {}

  /** Whether a new slice can be asked for (the last one is over). */
  get ready(): boolean {
    return this.state === 'idle';
  }

  /** Asks the tracer to stop `pids` (one mm's processes) and run `work` while they are stopped; false if none is left. */
  request(pids: number[], work: () => void): boolean {
    this.work = work;
    this.abandoned = false;
    this.channel.post(pids, false);
    this.state = 'requested';
    this.requestedAt = performance.now();
    return this.ring();
  }

  private ring(): boolean {
    this.rungAt = performance.now();
    if (!this.channel.ringOrWithdraw()) {
      this.state = 'idle';
      this.work = undefined;
      return false;
    }
    return true;
  }

  /** Where the slice asked for is: done, still waited for, or failed (not taken in time; the processes are gone). */
  poll(): Poll {
    if (this.state === 'done') {
      this.state = 'idle';
      return 'done';
    }
    if (this.state === 'idle') return 'failed';
    if (this.channel.taken) return 'waiting';
    const now = performance.now();
    if (now - this.requestedAt > GIVE_UP_MS) {
      if (!this.channel.cancel()) return 'waiting'; // taken just now: EvictDone follows
      this.state = 'idle';
      this.work = undefined;
      return 'failed';
    }
    if (now - this.rungAt > RERING_MS && !this.ring()) return 'failed';
    return 'waiting';
  }

  /** The tracer has stopped the processes (TracerOp EvictRanges): the slice now. Nothing to drop. */
  ranges(): number {
    const work = this.work;
    this.work = undefined;
    work?.();
    return 0;
  }

  /** The stop is over (TracerOp EvictDone). */
  done(pauseMs: number): void {
    this.channel.finish();
    if (this.state !== 'requested') return;
    this.count++;
    this.stopMs += pauseMs;
    this.state = this.abandoned ? 'idle' : 'done';
  }

  /** The prepare ended early (a freeze came): a request not taken is taken back; a taken one ends with no work. */
  abandon(): void {
    this.work = undefined;
    if (this.state === 'done' || (this.state === 'requested' && this.channel.cancel())) this.state = 'idle';
    else if (this.state === 'requested') this.abandoned = true;
  }
}

/** What a slice does: `stopped` in the stop (returns the pages of mm still DIRTY, -1: mm is gone), `running` after it. */
export interface SliceWork {
  stopped(mm: Mm): number;
  running(mm: Mm, until: number): Generator<void, void>;
}

/**
 * Slices until the DIRTY set of the mms fits in the pause. `left`: the pages each mm is
 * thought to have to copy (the last pass's look, before any slice).
 */
export function* sliceUntilSmall(slicer: StopSlices, mms: () => Mm[], left: Map<Mm, number>,
  work: SliceWork): Generator<void, void> {
  let runMs = FIRST_RUN_MS;
  const total = (): number => [...left.values()].reduce((a, b) => a + b, 0);
  let least = total();
  let sinceLeast = 0;
  try {
    for (let n = 0; n < MAX_SLICES && total() > slicer.pausePages; n++) {
      const live = mms();
      for (const mm of left.keys()) if (!live.includes(mm)) left.delete(mm);
      // The mm with the most to copy.
      const [mm, before] = [...left].reduce((a, b) => (b[1] > a[1] ? b : a), [undefined as Mm | undefined, -1]);
      if (!mm) return;
      let after: number | undefined;
      const pids = [...mm.pids].filter((p) => !mm.exited.has(p));
      slicer.waiting = true;
      while (!slicer.ready) yield;
      if (pids.length === 0 || !slicer.request(pids, () => { after = work.stopped(mm); })) return;
      let state: Poll;
      while ((state = slicer.poll()) === 'waiting') yield;
      slicer.waiting = false;
      if (state === 'failed') return;
      if (after === undefined) continue; // stopped, but no thread to run it in: asked again
      if (after < 0) {
        left.delete(mm);
        continue;
      }
      left.set(mm, after);
      // Little progress (a tenth of the set): the program writes nearly as fast as it is copied; it runs less.
      if (before - after < before / 10) runMs = Math.max(MIN_RUN_MS, runMs / 2);
      if (total() <= slicer.pausePages) return;
      if (total() < least * (1 - PROGRESS)) {
        least = total();
        sinceLeast = 0;
      } else if (++sinceLeast >= STALL_SLICES) {
        slicer.stalled++;
        return;
      }
      // The program runs; the copy goes on meanwhile, as in a pass.
      yield* work.running(mm, performance.now() + runMs);
    }
  } finally {
    slicer.waiting = false;
    slicer.abandon();
  }
}

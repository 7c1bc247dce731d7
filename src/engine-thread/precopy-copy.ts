// The pre-copy's copy of DIRTY pages (precopy.ts: passes, slices, the freeze), and how
// big a step of it is when it yields to fault service between steps.
//
// A step must be short: a missing fault (a first touch) waits for the step in progress.
// Its cost per page is not a constant: 1–2 µs when the frames are mapped already, 10–40 µs
// when they are fresh (the hypervisor backs a new page on first write; a file's frame
// takes a page-cache page and ext4's page_mkwrite), measured 15–19 ms for one 512-page
// step while a program kept first-touching memory (touch_stall, docs/BENCHMARKS.md "Fault
// service during a pre-copy"). So a step is sized from the speed of the steps before it:
// about STEP_MS, between MIN_STEP_PAGES and MAX_STEP_PAGES.
import { DIRTY, PAGES_PER_CHUNK } from './page-table.js';
import { MAX_IOV } from './remote-copy.js';
import type { CopyTarget, MmPart } from './snapshot.js';
import type { FrozenPageCopier } from './snapshot-copy.js';
import type { Mm } from './engine.js';

/** What one yielding step of the copy should take. */
const STEP_MS = 2;
const MIN_STEP_PAGES = 16;
/** 1 MiB: ≈ 0.5 ms into mapped frames. */
const MAX_STEP_PAGES = 256;

/** Pages per step, from the last steps' speed (an average weighted to the latest). */
export class CopyStepSizer {
  private msPerPage = 0;

  get pages(): number {
    if (this.msPerPage <= 0) return MIN_STEP_PAGES;
    return Math.max(MIN_STEP_PAGES, Math.min(MAX_STEP_PAGES, Math.floor(STEP_MS / this.msPerPage)));
  }

  /** A step copied `pages` in `ms`. */
  measured(pages: number, ms: number): void {
    if (pages <= 0) return;
    const sample = ms / pages;
    this.msPerPage = this.msPerPage <= 0 ? sample : 0.5 * this.msPerPage + 0.5 * sample;
  }
}

/** One sizer for the engine's pre-copies: the frames' speed is the backing's, not a snapshot's. */
const engineSizer = new CopyStepSizer();

/**
 * Copies every DIRTY page of mm into part's frames; with `yielding`, a step at a time
 * (CopyStepSizer), so a chunk's pages may wait in the batch across a yield: copied then
 * only if still in the table and DIRTY (the program may have discarded one meanwhile).
 * Closed at a yield, the pages not copied stay DIRTY and listed, for the next pass or the
 * freeze. Returns how many pages were copied.
 */
export function* copyDirty(copier: FrozenPageCopier, target: CopyTarget, mm: Mm, part: MmPart, yielding: boolean,
  alive: () => boolean, sizer = engineSizer): Generator<void, number> {
  let batch: number[] = [];
  // Without yields: a chunk adds up to PAGES_PER_CHUNK pages, and a batch stays below
  // MAX_IOV (one process_vm_readv).
  const max = MAX_IOV - PAGES_PER_CHUNK;
  let copied = 0;
  const flush = (addrs: number[]): void => {
    copied += addrs.length;
    copier.copyPresent(mm, target, part, addrs);
  };
  try {
    for (const key of mm.table.dirtyChunks()) {
      mm.table.dirtyPages(key, batch);
      if (!yielding) {
        if (batch.length >= max) flush(batch.splice(0));
        continue;
      }
      for (let step = sizer.pages; batch.length >= step; step = sizer.pages) {
        const t0 = performance.now();
        const addrs = batch.splice(0, step);
        flush(addrs);
        sizer.measured(addrs.length, performance.now() - t0);
        yield;
        if (!alive()) return copied;
        batch = batch.filter((a) => mm.table.get(a) > 0 && (mm.table.flagsOf(a) & DIRTY) !== 0);
      }
    }
    if (batch.length > 0) flush(batch.splice(0));
    return copied;
  } finally {
    // Closed at a yield (a freeze, a slice's deadline) with pages of chunks already taken
    // from the table's dirty list still in the batch: they are listed again (setFlags with
    // DIRTY does that), or no later walk — the next pass, the freeze — would copy them.
    for (const a of batch) {
      const flags = mm.table.flagsOf(a);
      if (mm.table.get(a) > 0 && (flags & DIRTY) !== 0) mm.table.setFlags(a, flags);
    }
  }
}

/** Copies mm's DIRTY pages until none is left, `deadline` has passed or mm is gone (a copy cut short leaves the rest DIRTY). */
export function* copyUntil(copier: FrozenPageCopier, target: CopyTarget, mm: Mm, part: MmPart, deadline: number,
  yielding: boolean, alive: () => boolean): Generator<void, void> {
  const steps = copyDirty(copier, target, mm, part, true, alive);
  try {
    while (!steps.next().done && performance.now() < deadline) if (yielding) yield;
  } finally {
    steps.return(0);
  }
}

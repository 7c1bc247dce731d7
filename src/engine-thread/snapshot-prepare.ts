// Prepare, the first phase of a snapshot: while the program runs, the pages written since
// the last snapshot are write-protected in steps (staged, Mm.staged) so that the freeze
// has little left to protect while every thread is stopped. The page states and the
// invariants are in snapshot.ts.
import fs from 'node:fs';
import { DIRTY, PAGE } from './page-table.js';
import type { Engine, Mm } from './engine.js';
import { adoptPresentSteps, type SmapsSeen } from './present-pages.js';

/** Pages write-protected per prepare step (about 50 µs of UFFDIO_WRITEPROTECT). */
const PREPARE_STEP_PAGES = 1024;
/** Prepare passes at most; another pass when the last one staged at least PREPARE_AGAIN pages. */
const PREPARE_PASSES = 3;
const PREPARE_AGAIN = 256;

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const ms = (from: bigint, to: bigint = process.hrtime.bigint()): number => Number(to - from) / 1e6;

/**
 * The prepare as a generator the engine loop advances one step at a time (one step is
 * about PREPARE_STEP_PAGES pages' protection), so a faulting thread never waits behind more.
 */
export function* prepareSteps(engine: Engine): Generator<void, void> {
  const t0 = process.hrtime.bigint();
  const adopted = yield* adoptUntracked(engine);
  const passes: number[] = [];
  let budget = PREPARE_STEP_PAGES;
  for (let pass = 0; pass < PREPARE_PASSES; pass++) {
    let staged = 0;
    for (const mm of freezable(engine)) {
      for (const key of mm.table.dirtyChunks()) {
        if (!engine.mms.has(mm.uffd)) break; // the mm went away during a yield
        const runs: number[] = [];
        const n = mm.table.stageChunk(key, runs);
        if (mm.pins.size > 0) unstagePinned(mm, runs);
        for (let i = 0; i < runs.length; i += 2) {
          if (engine.protect(mm, runs[i], runs[i + 1] - runs[i]) === 0) {
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
  if (DEBUG) fs.writeSync(2, `numactlx-engine: prepare ${ms(t0).toFixed(2)} ms, ${adopted} pages adopted, staged per pass ${passes.join(' ')}\n`);
}

/**
 * Pages the program had before their range was registered join the snapshot as new, in
 * steps; returns how many. `seen` is told of each smaps read on the way.
 */
export function* adoptUntracked(engine: Engine, seen?: SmapsSeen): Generator<void, number> {
  let adopted = 0;
  for (const mm of freezable(engine)) {
    if (mm.untracked.length > 0 && engine.mms.has(mm.uffd)) adopted += yield* adoptPresentSteps(engine, mm, seen);
  }
  return adopted;
}

/** The mms a snapshot covers: every distinct address space with a process. */
export function freezable(engine: Engine): Mm[] {
  return [...new Set(engine.mms.values())].filter((mm) => [...mm.pids].some((pid) => !mm.exited.has(pid)));
}

/**
 * Takes the pinned pages (Mm.pins) out of runs just staged by a prepare: DIRTY again
 * and left writable, for the freeze to take.
 */
function unstagePinned(mm: Mm, runs: number[]): void {
  // Pins are few (threads that exited since the last freeze) and runs are one chunk's:
  // look each pin up, rather than every staged page in the pin set.
  if (runs.length === 0) return;
  const lo = runs[0];
  const hi = runs[runs.length - 1];
  for (const pin of mm.pins.keys()) {
    if (pin < lo || pin >= hi) continue;
    for (let i = 0; i < runs.length; i += 2) {
      const [start, end] = [runs[i], runs[i + 1]];
      if (pin < start || pin >= end) continue;
      const pieces: number[] = [];
      if (start < pin) pieces.push(start, pin);
      if (pin + PAGE < end) pieces.push(pin + PAGE, end);
      runs.splice(i, 2, ...pieces);
      mm.table.setFlags(pin, DIRTY);
      break;
    }
  }
}

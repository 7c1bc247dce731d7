// A snapshot held by a fork (snapshot-capture.ts) takes its written pages out of the fork,
// after the pause, not in it: the pause holds the fork alone, as Redis BGSAVE's does.
// (Until stop 38 a held mm's pages were read-and-reset and staged in the pause: 20–25 ms of a
// 60 ms pause for 1 GiB written; bench/fork_capture.c `capture` against `late`, BENCHMARKS §5q.)
//
// After the pause (stageHeldParts, before the engine reads any of the program's events
// after it, so that the page table is still the freeze's; 2 in steps after it, run.carry):
// 1. The fork never runs: its ptes are the freeze's, uffd-wp bits included (a fork copies
//    them while its uffd is open: HeldForks closes it only after this). A read-only scan of
//    the fork's pagemap gives the pages written since the last reset, up to the freeze:
//    they become DIRTY and are staged, as the freeze's own scan did.
// 2. The program's written pages are reset (write-protected again) so that its next
//    snapshot counts from this freeze. The reset cannot tell a write before the freeze from
//    one after: a page the program wrote after the freeze is the one copy-on-write gave it,
//    mapped by the program alone (pagemap's exclusive bit, 56), where every other page is
//    still shared with the fork. Those, read after the reset, are kept in Mm.carryDirty and
//    become DIRTY at the next prepare or freeze (applyCarried); a page written after the
//    reset is the kernel's to report. A page not present (swapped, gone) is carried too.
// Not reset at all (the fork ended, a scan failed): the next snapshot copies every page
// written since this one's prepare — more, never less.
import fs from 'node:fs';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapPresentShared, readPagemapRun } from '../sys/pagemap.js';
import { DIRTY, PAGE } from './page-table.js';
import { stageDirty } from './snapshot-freeze.js';
import { drain } from '../../backing/steps.js';
import type { DirtyScanner } from './dirty-scan.js';
import type { Mm } from './mm.js';
import type { MmPart, SnapshotRun } from './snapshot.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
/** Bytes of the program's ranges reset in one step (≈ 3 ms for 64 MiB written, pinned). */
const CARRY_STEP = 64 << 20;
/** Pagemap entries read at a time for the exclusive bit. */
const ENTRIES = 4096;
const entries = Buffer.alloc(ENTRIES * 8);

/** mm's DIRTY pages become PENDING, listed as part's runs for the copier (snapshot-copy.ts); returns how many. */
export function stageWritten(mm: Mm, part: MmPart): number {
  const runs: number[] = [];
  const count = stageDirty(mm, runs);
  Object.assign(part, { runs, run: 0, next: runs.length > 0 ? runs[0] : 0, left: count });
  return count;
}

/**
 * Every part of `run` left unstaged in the freeze, staged out of its fork (the header's 1: one
 * engine turn, ≈ 25 ms for 1 GiB written); the programs' resets (its 2) are left to run.carry,
 * stepped between fault service before the commit (≈ 100 ms for 1 GiB, the program running).
 */
export function stageHeldParts(run: SnapshotRun | undefined, scanner: DirtyScanner): void {
  if (!run) return;
  const staged: Mm[] = [];
  for (const [mm, part] of run.parts) {
    if (!part.unstaged) continue;
    part.unstaged = false;
    if (!part.forked) { // not expected: a fork not made is copied in the pause (HeldForks copyNow)
      run.failed ??= `pid ${part.pid}: no fork held its image and it was not copied in the pause: nothing is lost, take it again`;
      continue;
    }
    const t0 = performance.now();
    const count = drain(scanner.scanProcess(mm, part.reader, Number.POSITIVE_INFINITY, false, false)) >= 0 ? stageWritten(mm, part) : -1;
    if (count < 0) {
      run.failed ??= `pid ${part.pid}: the fork that holds its image ended before its pages were read: nothing is lost, take it again`;
      continue;
    }
    staged.push(mm);
    if (DEBUG) fs.writeSync(2, `numactlx-engine: held pid ${part.pid}: staged ${count} pages from its fork in ${(performance.now() - t0).toFixed(2)} ms\n`);
  }
  if (staged.length > 0) run.carry = carrySteps(scanner, staged);
}

/** One step of run.carry (snapshot-engine.ts step); the commit waits until there is none. */
export function carryStep(run: SnapshotRun | undefined): void {
  if (run?.carry?.next().done) run.carry = undefined;
}

/** The programs' resets, a span of CARRY_STEP bytes a step; what each wrote since the freeze to Mm.carryDirty. */
function* carrySteps(scanner: DirtyScanner, mms: Mm[]): Generator<void, void> {
  for (const mm of mms) {
    const t0 = performance.now();
    const pid = mm.pids.values().next().value;
    let fd: number;
    try {
      if (pid === undefined) continue;
      fd = openPagemap(pid);
    } catch {
      continue; // the program is gone: nothing to carry
    }
    let [carried, steps] = [0, 0];
    try {
      for (const [s, e] of scanner.spans(mm, CARRY_STEP)) {
        carried += resetAndCarry(scanner, mm, fd, s, e);
        steps++;
        yield;
      }
    } finally {
      closeFd(fd); // also when a session's end drops the steps (finishNow)
    }
    if (DEBUG) fs.writeSync(2, `numactlx-engine: held mm of pid ${mm.ownerPid}: reset in ${steps} steps over ${(performance.now() - t0).toFixed(1)} ms, ${carried} pages written since the freeze\n`);
  }
}

/** A held part whose fork could not be made: staged from the program, stopped (the freeze's old way). */
export function stageFromProgram(scanner: DirtyScanner, mm: Mm, part: MmPart, pid: number): void {
  if (!part.unstaged) return;
  part.unstaged = false;
  drain(scanner.scanProcess(mm, pid, Number.POSITIVE_INFINITY, false));
  stageWritten(mm, part);
}

/** What a held snapshot's reset found written after its freeze: DIRTY now (a prepare's or a freeze's start). */
export function applyCarried(mm: Mm): void {
  const runs = mm.carryDirty;
  if (runs.length === 0) return;
  mm.carryDirty = [];
  for (let i = 0; i < runs.length; i += 2) {
    for (let a = runs[i]; a < runs[i + 1]; a += PAGE) {
      if (mm.table.get(a) <= 0) continue;
      const flags = mm.table.flagsOf(a);
      if (!(flags & DIRTY)) mm.table.setFlags(a, flags | DIRTY);
    }
  }
}

/** Resets [start, end) of the program's written pages (`fd`: its pagemap); those it wrote since the freeze go to mm.carryDirty. How many. */
function resetAndCarry(scanner: DirtyScanner, mm: Mm, fd: number, start: number, end: number): number {
  let carried = 0;
  const carry = mm.carryDirty;
  const runs = scanner.resetRuns(fd, start, end);
  for (let i = 0; i < runs.length; i += 2) {
    for (let a = runs[i]; a < runs[i + 1]; a += ENTRIES * PAGE) {
      const count = Math.min(ENTRIES, (runs[i + 1] - a) / PAGE);
      const got = readPagemapRun(fd, a, count, entries);
      for (let k = 0; k < count; k++) {
        if (k < got && pagemapPresentShared(entries, k)) continue; // still the fork's: not written since
        const page = a + k * PAGE;
        if (carry.length > 0 && carry[carry.length - 1] === page) carry[carry.length - 1] = page + PAGE;
        else carry.push(page, page + PAGE);
        carried++;
      }
    }
  }
  return carried;
}

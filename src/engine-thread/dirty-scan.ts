// Asynchronous dirty tracking (src/kerndat/features.ts 'async': UFFD_FEATURE_WP_ASYNC +
// PAGEMAP_SCAN, Linux 6.7). The program's userfaultfd is made with WP_ASYNC (engine-worker.ts;
// the kernel turns WP_UNPOPULATED on with it): a write to a page whose pte carries the
// uffd-wp bit is resolved by the kernel itself, which clears the bit before the store
// lands — no write fault reaches numactlx. MISSING faults stay synchronous and are served
// as ever (fault-service.ts); a page they place (UFFDIO_COPY without MODE_WP) has no
// uffd-wp bit, so it counts as written, as a new page must.
//
// The written set is read with PAGEMAP_SCAN over the mm's trapped ranges
// (src/sys/pagemap.ts WrittenPageScanner): each page reported is write-protected again in
// the same walk (read-and-reset), and each one on a virtual node becomes DIRTY in the page
// table, which stays the engine's one record of what a snapshot must copy (it also holds
// what the kernel cannot report: pages moved by mremap, a fork's pages, pages adopted by
// present-pages.ts).
import fs from 'node:fs';
import os from 'node:os';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, WrittenPageScanner } from '../sys/pagemap.js';
import { DIRTY, PAGE } from './page-table.js';
import type { Mm } from './mm.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const { EPERM } = os.constants.errno;

/** Owned by the SnapshotEngine (engine thread): the scanner's buffers, reused. */
export class DirtyScanner {
  private readonly scanner = new WrittenPageScanner();
  private readonly runs: number[] = [];

  /**
   * The spans to scan: mm's ranges with adjacent ones merged (one ioctl walks many
   * VMAs), cut into pieces of at most `step` bytes (a pre-copy pass yields between them).
   */
  spans(mm: Mm, step = Number.POSITIVE_INFINITY): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let start = -1;
    let end = -1;
    const flush = (): void => {
      for (let a = start; a < end; a += step) out.push([a, Math.min(end, a + step)]);
    };
    for (const r of mm.ranges.all()) {
      if (r.start === end) { end = r.end; continue; }
      if (start >= 0) flush();
      start = r.start;
      end = r.end;
    }
    if (start >= 0) flush();
    return out;
  }

  /**
   * Read-and-reset of [start, end) of mm, through `fd` (its /proc/PID/pagemap): every
   * present virtual-node page written since the last scan becomes DIRTY. Returns how many
   * such pages were reported. `reset` false: read only (the pages stay written for the
   * next scan; marking them DIRTY now changes nothing the next scan would not). A span holding a VMA without async write protection (ranges
   * not yet told of an unmap, a mapping numactlx did not register) is scanned again
   * without the check: the kernel then skips that VMA, and the pages it had reset before
   * the error are kept (WrittenPageScanner). A process gone: nothing.
   */
  scan(fd: number, mm: Mm, start: number, end: number, reset = true): number {
    const runs = this.scanRuns(fd, start, end, reset);
    let n = 0;
    const table = mm.table;
    for (let i = 0; i < runs.length; i += 2) {
      for (let a = runs[i]; a < runs[i + 1]; a += PAGE) {
        if (table.get(a) <= 0) continue; // ordinary memory (read in the freeze: snapshot-extras.ts), or not placed by the engine
        const flags = table.flagsOf(a);
        if (!(flags & DIRTY)) table.setFlags(a, flags | DIRTY);
        n++;
      }
    }
    return n;
  }

  /**
   * Read-and-reset (or read only) of mm's written pages through pid's pagemap, a span of
   * `step` bytes at a time (yielding between them if asked); how many, or -1 when the
   * pagemap cannot be opened (the process is gone: its mm closes when the tracer says so).
   */
  *scanProcess(mm: Mm, pid: number, step: number, yielding: boolean, reset = true): Generator<void, number> {
    let fd: number;
    try {
      fd = openPagemap(pid);
    } catch {
      return -1;
    }
    let written = 0;
    try {
      for (const [s, e] of this.spans(mm, step)) {
        written += this.scan(fd, mm, s, e, reset);
        if (yielding) yield;
      }
    } finally {
      closeFd(fd);
    }
    return written;
  }

  /**
   * A read-only look at `windows` windows of `bytes` spread evenly over mm's spans, through
   * `fd`, the table left alone: of the virtual-node pages not DIRTY there (copied since their
   * last reset, or not written since), how many (`clean`) and how many of those the program
   * has written again since (`rewritten`).
   */
  sampleRewritten(fd: number, mm: Mm, windows: number, bytes: number): { clean: number; rewritten: number } {
    const spans = this.spans(mm);
    const total = spans.reduce((n, [s, e]) => n + e - s, 0);
    let [clean, rewritten] = [0, 0];
    const table = mm.table;
    const isClean = (a: number): boolean => table.get(a) > 0 && (table.flagsOf(a) & DIRTY) === 0;
    for (let w = 0, span = 0, before = 0; w < windows && total > 0; w++) {
      const at = Math.floor((total * (w + 0.5)) / windows / PAGE) * PAGE; // offset into the spans, laid end to end
      while (before + spans[span][1] - spans[span][0] <= at) {
        before += spans[span][1] - spans[span][0];
        span++;
      }
      const start = spans[span][0] + at - before;
      const end = Math.min(spans[span][1], start + bytes);
      for (let a = start; a < end; a += PAGE) if (isClean(a)) clean++;
      const runs = this.scanRuns(fd, start, end, false);
      for (let i = 0; i < runs.length; i += 2) for (let a = runs[i]; a < runs[i + 1]; a += PAGE) if (isClean(a)) rewritten++;
    }
    return { clean, rewritten };
  }

  /** Read-and-reset of [start, end) as scan's, the table left alone: the written pages as [start, end) runs (scratch). */
  resetRuns(fd: number, start: number, end: number): number[] {
    return this.scanRuns(fd, start, end, true);
  }

  private scanRuns(fd: number, start: number, end: number, reset: boolean): number[] {
    const runs = this.runs;
    runs.length = 0;
    let r = this.scanner.scan(fd, start, end, runs, true, reset);
    if (r === -EPERM) {
      if (DEBUG) fs.writeSync(2, `numactlx-engine: PAGEMAP_SCAN 0x${start.toString(16)}-0x${end.toString(16)}: a VMA without async write protection; skipped\n`);
      r = this.scanner.scan(fd, start, end, runs, false, reset);
    }
    if (r < 0 && DEBUG) fs.writeSync(2, `numactlx-engine: PAGEMAP_SCAN 0x${start.toString(16)}-0x${end.toString(16)} failed: errno ${-r}\n`);
    return runs;
  }
}

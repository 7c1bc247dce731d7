// How far around a missing fault the engine serves zeros (fault-ahead): by what the
// program has placed next to the faulting page, as the kernel's readahead grows with a
// sequential read. Every page served holds a frame of the node, as a touched one does,
// so a fixed window (1 MiB by default) made a program that touches its memory sparsely
// hold up to 256 times what it touched: 100 idle Python threads 92 MiB of the node
// (10 MiB of memory natively: each thread stack's first touch was served a window), a
// page touched per GiB of a 1 TiB reservation a full 1 GiB node (SIGBUS under --membind
// where a real node of that size holds the 4 MiB touched).
import { PAGE } from './page-table.js';

/**
 * The run a fault next to no placed page gets (a first touch, a sparse one, a thread
 * stack's top): 64 KiB, the kernel's fault-around for file pages. A region filled in
 * order reaches the whole window in five faults more than a fixed window takes.
 */
export const FIRST_RUN_PAGES = 16;

/**
 * The window [start, end) inside [rangeStart, rangeEnd) whose absent pages a missing
 * fault at page `addr` may be served with, at most `maxPages` long (`placed(a)`: page a
 * holds something already):
 * - pages placed below addr (a walk upwards): forward from addr, as long as the run
 *   placed behind it — a sequential fill doubles the window fault by fault;
 * - else pages placed above it (a walk downwards, a stack): the same backwards;
 * - else the FIRST_RUN_PAGES-aligned block around addr.
 * Never shorter than FIRST_RUN_PAGES (or maxPages, if less).
 */
export function aheadWindow(addr: number, rangeStart: number, rangeEnd: number, maxPages: number,
  placed: (a: number) => boolean): [number, number] {
  const least = Math.min(FIRST_RUN_PAGES, maxPages);
  const pages = (run: number): number => Math.min(maxPages, Math.max(least, run)) * PAGE;
  const below = placedRun(addr, -PAGE, maxPages, placed);
  const above = below > 0 ? 0 : placedRun(addr, PAGE, maxPages, placed);
  let start: number;
  let end: number;
  if (below > 0) [start, end] = [addr, addr + pages(below)];
  else if (above > 0) [start, end] = [addr + PAGE - pages(above), addr + PAGE];
  else {
    start = addr - (addr % (least * PAGE));
    end = start + least * PAGE;
  }
  return [Math.max(rangeStart, start), Math.min(rangeEnd, end)];
}

/**
 * How long the placed run next to addr in direction `step` (±PAGE) is, probed at 1, 2,
 * 4, … pages away (log2(max) lookups, not a walk: a lower bound for a contiguous run).
 */
function placedRun(addr: number, step: number, max: number, placed: (a: number) => boolean): number {
  if (!placed(addr + step)) return 0;
  let n = 1;
  while (n * 2 <= max && placed(addr + step * n * 2)) n *= 2;
  return n;
}

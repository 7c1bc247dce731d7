// The trapped ranges of one mm and the policy each was registered with, sorted by
// start and never overlapping. munmap and mremap split and move them; a fault looks
// its range up by binary search.

import type { PagePolicy } from '../../policy/placement.js';

export type { PagePolicy };

export interface Range {
  start: number;
  end: number;
  policy: PagePolicy;
}

export class RangeSet {
  private ranges: Range[] = [];

  get size(): number {
    return this.ranges.length;
  }

  find(addr: number): Range | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid];
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** The index of the first range ending after `addr` (ranges.length when none does). */
  private firstEndingAfter(addr: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ranges[mid].end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Removes [start, end) from every range, splitting as needed. */
  remove(start: number, end: number): void {
    const from = this.firstEndingAfter(start);
    let to = from;
    while (to < this.ranges.length && this.ranges[to].start < end) to++;
    if (from === to) return;
    const kept: Range[] = [];
    const first = this.ranges[from];
    const last = this.ranges[to - 1];
    if (first.start < start) kept.push({ start: first.start, end: start, policy: first.policy });
    if (last.end > end) kept.push({ start: end, end: last.end, policy: last.policy });
    this.ranges.splice(from, to - from, ...kept);
  }

  /**
   * Adds [start, end) with `policy`, replacing whatever covered it. Neighbours are not
   * joined, even with equal policies: a range is one mapping, so fault-ahead never runs
   * into the next one (another thread's, which the engine may not know yet, or whose
   * unmap is under way — measured: joining made test/fixtures/map_race.c serve hundreds
   * of pages the table then held wrongly, events.stale).
   */
  add(start: number, end: number, policy: PagePolicy): void {
    this.remove(start, end);
    this.ranges.splice(this.firstEndingAfter(start), 0, { start, end, policy });
  }

  /**
   * Splits the range containing `addr` (strictly inside) in two with the same policy:
   * a VMA boundary the engine learned, which fault-ahead must not cross.
   */
  splitAt(addr: number): void {
    const r = this.find(addr);
    if (!r || r.start === addr) return;
    this.ranges.splice(this.ranges.indexOf(r), 1, { start: r.start, end: addr, policy: r.policy },
      { start: addr, end: r.end, policy: r.policy });
  }

  /**
   * The pieces of ranges inside [start, end), clipped. By binary search: every range the
   * tracer notes asks for it, and a break grown a page at a time makes one range a page
   * (20,000 of them: a scan of them all was a third of a brk's cost, docs/BENCHMARKS.md §5c).
   */
  slice(start: number, end: number): Range[] {
    const out: Range[] = [];
    for (let i = this.firstEndingAfter(start); i < this.ranges.length && this.ranges[i].start < end; i++) {
      const r = this.ranges[i];
      out.push({ start: Math.max(r.start, start), end: Math.min(r.end, end), policy: r.policy });
    }
    return out;
  }

  all(): readonly Range[] {
    return this.ranges;
  }

  clone(): RangeSet {
    const copy = new RangeSet();
    copy.ranges = this.ranges.map((r) => ({ ...r }));
    return copy;
  }
}

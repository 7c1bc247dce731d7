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

  /** Removes [start, end) from every range, splitting as needed. */
  remove(start: number, end: number): void {
    const out: Range[] = [];
    for (const r of this.ranges) {
      if (r.end <= start || r.start >= end) { out.push(r); continue; }
      if (r.start < start) out.push({ start: r.start, end: start, policy: r.policy });
      if (r.end > end) out.push({ start: end, end: r.end, policy: r.policy });
    }
    this.ranges = out;
  }

  /** Adds [start, end) with `policy`, replacing whatever covered it. */
  add(start: number, end: number, policy: PagePolicy): void {
    this.remove(start, end);
    this.ranges.push({ start, end, policy });
    this.ranges.sort((a, b) => a.start - b.start);
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

  /** The pieces of ranges inside [start, end), clipped. */
  slice(start: number, end: number): Range[] {
    return this.ranges.filter((r) => r.end > start && r.start < end)
      .map((r) => ({ start: Math.max(r.start, start), end: Math.min(r.end, end), policy: r.policy }));
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

// The trapped ranges of one mm and the policy each was registered with, sorted by
// start and never overlapping. munmap and mremap split and move them; a fault looks
// its range up by binary search.

import type { PagePolicy } from '../../policy/placement.js';
import { MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE } from '../sys/mempolicy.js';

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
   * Adds [start, end) with `policy`, replacing whatever covered it. A neighbour that
   * touches it with an equal policy is joined to it: a break grown a page at a time
   * stays one range (the kernel merges those registered VMAs too; where it does not, a
   * fault-ahead run that crosses the boundary learns it: fault-service.ts).
   */
  add(start: number, end: number, policy: PagePolicy): void {
    this.remove(start, end);
    let at = this.firstEndingAfter(start);
    const before = at > 0 ? this.ranges[at - 1] : undefined;
    const after = this.ranges[at];
    if (before && before.end === start && samePolicy(before.policy, policy)) {
      start = before.start;
      at--;
      this.ranges.splice(at, 1);
    }
    if (after && after.start === end && samePolicy(after.policy, policy)) {
      end = after.end;
      this.ranges.splice(at, 1);
    }
    this.ranges.splice(at, 0, { start, end, policy });
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

/**
 * Whether two neighbours can be one range: equal policies, and not an interleave one
 * (placement.ts interleaves by the page's index in its range: joining would move pages).
 */
/** The mode without its MPOL_F_* flags (as placement.ts reads it). */
const MODE_MASK = 0xff;

function samePolicy(a: PagePolicy, b: PagePolicy): boolean {
  const mode = a.mode & MODE_MASK;
  if (mode === MPOL_INTERLEAVE || mode === MPOL_WEIGHTED_INTERLEAVE) return false;
  if (a === b) return true;
  if (a.mode !== b.mode || a.nodes.length !== b.nodes.length) return false;
  return a.nodes.every((n, i) => n === b.nodes[i]);
}

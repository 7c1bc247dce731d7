// The pages of one virtual node that are in the program's memory, and which of them to
// evict next (--max-resident): a CLOCK over the page tables of every mm, approximating
// LRU with what the kernel tells us here. A page is referenced (REF) when it comes back
// by a refault or is written while clean (a write-protect fault); reads of a present
// page are invisible (no accessed bits without DAMON's vaddr monitoring or idle page
// tracking, both off in this kernel), so a page only read stays while the hand has not
// come round, and once evicted its refault marks it. The hand gives a referenced page a
// second chance (clears REF) and takes the others, in address order within an mm, so
// that victims come in runs (one range per run to drop).
//
// Never taken: pages frozen for a snapshot and not copied yet (PENDING, COPYING: the
// copier reads them from the program), pages already evicted or chosen, pages pinned for
// the kernel's write at a thread's exit (Mm.pins), and pages on other nodes.
import { COPYING, EVICTED, PAGE, PAGES_PER_CHUNK, PENDING, REF, VICTIM } from './page-table.js';
import type { Mm } from './mm.js';

const CHUNK = PAGE * PAGES_PER_CHUNK;
const SKIP = EVICTED | PENDING | COPYING | VICTIM;

export class ResidentSet {
  /** The mms in the hand's order (refreshed at each wrap), the one it is in, and where. */
  private order: Mm[] = [];
  private mmAt = 0;
  private keys: number[] = [];
  private keyAt = 0;
  private pageAt = 0;

  /** `slot`: the node's index in the engine's table; `limit`: its pages at most. */
  constructor(readonly slot: number, readonly limit: number) {}

  /**
   * Moves the hand over at most `budget` chunks and collects up to `max` victims of one
   * mm into `out` (ascending). Returns that mm, or undefined when none was found within
   * the budget. `mms`: the engine's mms now (for the next wrap).
   */
  sweep(mms: Iterable<Mm>, max: number, budget: number, out: number[]): Mm | undefined {
    out.length = 0;
    let from: Mm | undefined;
    /** mms passed in a row without a page to look at: a whole turn of them ends the sweep. */
    let empty = 0;
    while (budget > 0) {
      if (this.keyAt >= this.keys.length) {
        // The end of this mm: victims are per mm (one stop drops one address space's).
        if (out.length > 0) return from;
        this.nextMm(mms);
        if (this.keys.length === 0 && ++empty > this.order.length) return undefined;
        continue;
      }
      empty = 0;
      const mm = this.order[this.mmAt];
      const key = this.keys[this.keyAt];
      const c = mm.table.chunkArrays(key);
      if (c === undefined || mm.pids.size === 0 || mm.eviction.refused) {
        budget--;
        this.keyAt++;
        this.pageAt = 0;
        continue;
      }
      const base = key * CHUNK;
      const { entry, node, flags } = c;
      let i = this.pageAt;
      for (; i < PAGES_PER_CHUNK && out.length < max; i++) {
        if (entry[i] <= 0 || node[i] !== this.slot) continue;
        const f = flags[i];
        if (f & SKIP) continue;
        if (f & REF) { flags[i] = f & ~REF; continue; }
        const addr = base + i * PAGE;
        if (mm.pins.size > 0 && mm.pins.has(addr)) continue;
        out.push(addr);
        from = mm;
      }
      budget--;
      if (i < PAGES_PER_CHUNK) {
        this.pageAt = i;
        return from;
      }
      this.keyAt++;
      this.pageAt = 0;
    }
    return out.length > 0 ? from : undefined;
  }

  /** On to the next mm (the first again, with the mms as they are now, after the last). */
  private nextMm(mms: Iterable<Mm>): void {
    this.mmAt++;
    if (this.mmAt >= this.order.length) {
      this.order = [...new Set(mms)];
      this.mmAt = 0;
    }
    const mm = this.order[this.mmAt];
    this.keys = mm ? mm.table.chunkKeys() : [];
    this.keyAt = 0;
    this.pageAt = 0;
  }
}

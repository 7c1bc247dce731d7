// How much a write fault on a write-protected page opens: not one page but a run around
// it, sized per mm by what the program did last. A program rewriting memory in order
// then takes one write-protect fault per run instead of one per page (each fault is a
// round trip through this thread: ≈ 70 µs when the writer runs on the other CPU), and
// during a snapshot's copy its frozen pages in the run are copied in one batch.
//
// The price: every placed page of an opened run is marked DIRTY, so the next snapshot
// copies the run's pages the program did not write. The run therefore grows only while
// the faults come in order — a fault at the page just past (or just before) the last
// run doubles it, up to MAX_RUN_PAGES (2 MiB, one page-table chunk) — and halves at a
// fault anywhere else, down to one page: a random writer pays for the pages it writes.
import { PAGE } from './page-table.js';

export const MAX_RUN_PAGES = 512;

export class WriteRunSizer {
  private pages = 1;
  private lastStart = -1;
  private lastEnd = -1;

  /**
   * The run to open for a write fault at page `addr`: [start, end), aligned to its own
   * size, inside [lo, hi) (the trapped range holding addr).
   */
  runAt(addr: number, lo: number, hi: number): [number, number] {
    if (addr === this.lastEnd || addr === this.lastStart - PAGE) this.pages = Math.min(MAX_RUN_PAGES, this.pages * 2);
    else if (this.pages > 1) this.pages >>= 1;
    const span = this.pages * PAGE;
    const start = Math.max(lo, addr - (addr % span));
    const end = Math.min(hi, start + span);
    this.lastStart = start;
    this.lastEnd = end;
    return [start, end];
  }
}

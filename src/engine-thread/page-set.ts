// The set of pages ever placed in one mm (page-table.ts keeps what is placed now).
import { PAGE, PAGES_PER_CHUNK } from './page-table.js';

const CHUNK = PAGE * PAGES_PER_CHUNK;

/**
 * The set of pages ever placed in one mm (a bit per page, sparse like the table): what
 * makes `pages_placed` count distinct pages, not placements — a page dropped by
 * DONTNEED and touched again is the same page of the program.
 */
export class PageSet {
  private readonly chunks = new Map<number, Uint8Array>();

  /** Adds the page; true when it was not in the set. */
  add(addr: number): boolean {
    const key = Math.floor(addr / CHUNK);
    let bits = this.chunks.get(key);
    if (bits === undefined) {
      bits = new Uint8Array(PAGES_PER_CHUNK / 8);
      this.chunks.set(key, bits);
    }
    const i = (addr % CHUNK) / PAGE;
    const had = bits[i >> 3] & (1 << (i & 7));
    bits[i >> 3] |= 1 << (i & 7);
    return had === 0;
  }
}

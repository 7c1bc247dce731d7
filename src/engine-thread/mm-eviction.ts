// What eviction (--max-resident, eviction.ts) keeps per address space, beside the page
// table (mm.ts holds one). Owned by the engine thread.
export class MmEviction {
  /** Pages of this mm evicted now (in their frames, not in the program). */
  evicted = 0;
  /** Chunk keys (page-table.ts) holding FRESH pages: what the next freeze records. */
  readonly freshChunks = new Set<number>();
  /** The end of the last refault's run and the read-ahead window now (refault.ts), in pages. */
  lastEnd = -1;
  window = 1;
  /** Its pages cannot be dropped (a seccomp filter of its own) or written back (non-dumpable): rounds pass it by. */
  refused = false;
}

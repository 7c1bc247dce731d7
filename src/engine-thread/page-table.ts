// The engine's page table for one mm: for every page of a trapped range, whether it is
// present in the program and where it is placed. Sparse: 2 MiB chunks of 512 entries,
// created on first use, so a 1 TiB PROT_NONE reservation costs nothing until touched.
//
// Numbers, not bigints: user-space addresses are below 2^47, so page numbers and
// chunk numbers are exact doubles, and the hot path (one lookup per fault) stays cheap.
//
// Entry encoding (Int32): 0 = absent (never placed, or dropped by munmap/DONTNEED);
// PLACED_REAL = present in ordinary memory (a real node, or a --preferred fallback);
// f + 1 (f ≥ 0) = present on a virtual node, its home frame f in that node's backing.
// The node of a virtual page is in a parallel Uint8Array (index into the virtual node table).
import { PAGE_SIZE } from '../sys/page.js';

/** The engine's page: the base page size (src/sys/page.ts). */
export const PAGE = PAGE_SIZE;
export const PAGES_PER_CHUNK = 512;
const CHUNK = PAGE * PAGES_PER_CHUNK;

export const ABSENT = 0;
export const PLACED_REAL = -1;

/** Page flags (virtual-node pages only). DIRTY: the page's content is newer than its frame: the next snapshot copies it. */
export const DIRTY = 1;
/**
 * Write-protected for a snapshot and not copied yet: staged by the prepare pass (the
 * program still runs, the snapshot is not cut), or frozen in the snapshot being copied
 * (or, held by a capture fork, not protected: snapshot-capture.ts). A staged page
 * written before the freeze is DIRTY|PENDING (snapshot-copy.ts).
 */
export const PENDING = 2;
/**
 * In the copier's current batch (with PENDING): a page can be in the staged runs and in
 * the frozen ones, and must not be copied twice in one batch (it would take two frames).
 */
export const COPYING = 4;
// ---- eviction (--max-resident: eviction.ts, resident-set.ts, refault.ts) ---------------
/**
 * Evicted: not in the program any more; the entry keeps its frame, which holds the
 * page's content (a missing fault brings it back from there). Never DIRTY, never PENDING.
 */
export const EVICTED = 8;
/**
 * The frame was written by eviction after the last snapshot (and the page is clean or
 * evicted since): the next freeze records it as it is, without a copy.
 */
export const FRESH = 16;
/** Referenced since the CLOCK hand last passed: a refault or a write fault set it. */
export const REF = 32;
/** Chosen by the CLOCK hand and clean: dropped at the next eviction stop unless a fault touches it first. */
export const VICTIM = 64;
/**
 * Came back from its frame (a refault) and that frame not written since: it still holds
 * what the page held while evicted. A fork the engine learns of late needs it (a uffd
 * gives faults before events): the child was copied while the page was evicted, so it
 * has the page evicted (fork-pages.ts). Cleared when the frame is written.
 */
export const BACK = 128;

interface Chunk {
  entry: Int32Array;
  node: Uint8Array;
  flags: Uint8Array;
  /** Entries that are not ABSENT, so empty chunks can be dropped. */
  used: number;
  /** Entries that are PLACED_REAL (the freeze reads only those of trapped ranges: snapshot-extras.ts). */
  real: number;
  /** The chunk's key is in the table's dirty list (some page became DIRTY since it was taken). */
  listed: boolean;
}

export class PageTable {
  private readonly chunks = new Map<number, Chunk>();
  /**
   * Keys of chunks where a page became DIRTY since takeDirtyChunks: what makes finding
   * the dirty pages cost O(dirty chunks), not O(table). May hold duplicates (a chunk
   * dropped and made again) and keys of chunks gone since.
   */
  private dirtyKeys: number[] = [];

  private noteDirty(c: Chunk, key: number): void {
    if (!c.listed) {
      c.listed = true;
      this.dirtyKeys.push(key);
    }
  }

  /** The entry for the page at `addr` (page aligned). */
  get(addr: number): number {
    const c = this.chunks.get(Math.floor(addr / CHUNK));
    return c === undefined ? ABSENT : c.entry[(addr % CHUNK) / PAGE];
  }

  nodeOf(addr: number): number {
    const c = this.chunks.get(Math.floor(addr / CHUNK));
    return c === undefined ? 0 : c.node[(addr % CHUNK) / PAGE];
  }

  flagsOf(addr: number): number {
    const c = this.chunks.get(Math.floor(addr / CHUNK));
    return c === undefined ? 0 : c.flags[(addr % CHUNK) / PAGE];
  }

  /** Sets the flags of a present page. */
  setFlags(addr: number, flags: number): void {
    const key = Math.floor(addr / CHUNK);
    const c = this.chunks.get(key);
    if (c === undefined) return;
    c.flags[(addr % CHUNK) / PAGE] = flags;
    if (flags & DIRTY) this.noteDirty(c, key);
  }

  set(addr: number, entry: number, node = 0, flags = 0): void {
    const key = Math.floor(addr / CHUNK);
    let c = this.chunks.get(key);
    if (c === undefined) {
      if (entry === ABSENT) return;
      c = { entry: new Int32Array(PAGES_PER_CHUNK), node: new Uint8Array(PAGES_PER_CHUNK), flags: new Uint8Array(PAGES_PER_CHUNK), used: 0, real: 0, listed: false };
      this.chunks.set(key, c);
    }
    if (flags & DIRTY && entry !== ABSENT) this.noteDirty(c, key);
    const i = (addr % CHUNK) / PAGE;
    if (c.entry[i] === ABSENT && entry !== ABSENT) c.used++;
    else if (c.entry[i] !== ABSENT && entry === ABSENT) c.used--;
    c.real += (entry === PLACED_REAL ? 1 : 0) - (c.entry[i] === PLACED_REAL ? 1 : 0);
    c.entry[i] = entry;
    c.node[i] = node;
    c.flags[i] = entry === ABSENT ? 0 : flags;
    if (c.used === 0) this.chunks.delete(key);
  }

  /**
   * Calls `fn(addr, entry, node)` for every non-absent page in [start, end) and clears
   * it. Used by munmap, DONTNEED and mremap's source.
   */
  takeRange(start: number, end: number, fn: (addr: number, entry: number, node: number, flags: number) => void): void {
    for (let key = Math.floor(start / CHUNK); key * CHUNK < end; key++) {
      const c = this.chunks.get(key);
      if (c === undefined) continue;
      const base = key * CHUNK;
      const lo = Math.max(start, base);
      const hi = Math.min(end, base + CHUNK);
      for (let addr = lo; addr < hi; addr += PAGE) {
        const i = (addr - base) / PAGE;
        if (c.entry[i] !== ABSENT) {
          fn(addr, c.entry[i], c.node[i], c.flags[i]);
          if (c.entry[i] === PLACED_REAL) c.real--;
          c.entry[i] = ABSENT;
          c.flags[i] = 0;
          c.used--;
        }
      }
      if (c.used === 0) this.chunks.delete(key);
    }
  }

  /** The keys of the chunks where a page became DIRTY since the last call, ascending and distinct; the list starts again empty. */
  takeDirtyChunks(): number[] {
    const keys = this.dirtyKeys;
    this.dirtyKeys = [];
    keys.sort((a, b) => a - b);
    const out: number[] = [];
    for (const key of keys) {
      if (out.length > 0 && out[out.length - 1] === key) continue;
      const c = this.chunks.get(key);
      if (c === undefined) continue;
      c.listed = false;
      out.push(key);
    }
    return out;
  }

  /** How many pages are DIRTY now: a look, nothing taken (precopy-slices.ts). */
  dirtyCount(): number {
    let n = 0;
    for (const c of new Set(this.dirtyKeys.map((k) => this.chunks.get(k)))) {
      for (let i = 0; c && i < PAGES_PER_CHUNK; i++) n += c.entry[i] > 0 && c.flags[i] & DIRTY ? 1 : 0;
    }
    return n;
  }

  /** takeDirtyChunks one key at a time; closed early (a freeze ends a prepare), the keys not reached are listed again (an unlisted DIRTY page is missed by every later walk). */
  *dirtyChunks(): Generator<number, void> {
    const keys = this.takeDirtyChunks();
    let i = 0;
    try {
      for (; i < keys.length; i++) yield keys[i];
    } finally {
      for (let j = i + 1; j < keys.length; j++) {
        const c = this.chunks.get(keys[j]);
        if (c !== undefined) this.noteDirty(c, keys[j]);
      }
    }
  }

  /**
   * Every present DIRTY page of chunk `key` becomes PENDING (DIRTY cleared); appends them
   * to `runs` as ascending [start, end) runs, flattened (extending the last run when it
   * ends where this chunk's first page is). Returns how many pages. Typed arrays, no
   * per-page allocation: the freeze runs this while the program is stopped.
   */
  stageChunk(key: number, runs: number[]): number {
    const c = this.chunks.get(key);
    if (c === undefined) return 0;
    const base = key * CHUNK;
    const { entry, flags } = c;
    let count = 0;
    let end = runs.length > 0 ? runs[runs.length - 1] : -1;
    for (let i = 0; i < PAGES_PER_CHUNK; i++) {
      if (entry[i] > 0 && flags[i] & DIRTY) {
        flags[i] = PENDING;
        count++;
        const addr = base + i * PAGE;
        if (addr === end) {
          runs[runs.length - 1] = end = addr + PAGE;
        } else {
          runs.push(addr, addr + PAGE);
          end = addr + PAGE;
        }
      }
    }
    return count;
  }

  /** Appends the present DIRTY pages of chunk `key` to `out` (ascending), flags unchanged (precopy.ts). */
  dirtyPages(key: number, out: number[]): void {
    const c = this.chunks.get(key);
    if (c === undefined) return;
    const base = key * CHUNK;
    for (let i = 0; i < PAGES_PER_CHUNK; i++) if (c.entry[i] > 0 && c.flags[i] & DIRTY) out.push(base + i * PAGE);
  }

  /** Whether a page of [start, end) is not absent; costs O(min(chunks, range / 2 MiB)). */
  anyIn(start: number, end: number): boolean {
    const first = Math.floor(start / CHUNK);
    const last = Math.floor((end - 1) / CHUNK);
    const keys = last - first + 1 <= this.chunks.size
      ? Array.from({ length: last - first + 1 }, (_, i) => first + i)
      : [...this.chunks.keys()].filter((k) => k >= first && k <= last);
    for (const key of keys) {
      const c = this.chunks.get(key);
      if (c === undefined || c.used === 0) continue;
      const lo = Math.max(start, key * CHUNK);
      const hi = Math.min(end, (key + 1) * CHUNK);
      for (let addr = lo; addr < hi; addr += PAGE) if (c.entry[(addr - key * CHUNK) / PAGE] !== ABSENT) return true;
    }
    return false;
  }

  /** Every non-absent page of [start, end), in no particular order; costs O(chunks), not O(range). */
  forEachIn(start: number, end: number, fn: (addr: number, entry: number) => void): void {
    for (const [key, c] of this.chunks) {
      const base = key * CHUNK;
      if (base + CHUNK <= start || base >= end) continue;
      for (let i = 0; i < PAGES_PER_CHUNK; i++) {
        const addr = base + i * PAGE;
        if (c.entry[i] !== ABSENT && addr >= start && addr < end) fn(addr, c.entry[i]);
      }
    }
  }

  /** The PLACED_REAL pages of [start, end), ascending within a chunk; costs O(chunks) where none is. */
  forEachRealIn(start: number, end: number, fn: (addr: number) => void): void {
    for (const [key, c] of this.chunks) {
      const base = key * CHUNK;
      if (c.real === 0 || base + CHUNK <= start || base >= end) continue;
      for (let i = 0; i < PAGES_PER_CHUNK; i++) {
        const addr = base + i * PAGE;
        if (c.entry[i] === PLACED_REAL && addr >= start && addr < end) fn(addr);
      }
    }
  }

  // ---- eviction hooks (resident-set.ts scans chunks in place) ----------------------------
  /** How many chunks the table has. */
  get chunkCount(): number { return this.chunks.size; }

  /** The keys of the table's chunks, ascending. */
  chunkKeys(): number[] {
    return [...this.chunks.keys()].sort((a, b) => a - b);
  }

  /** Every chunk's arrays, in no order (not to be changed: engine.ts closeMm releases their frames). */
  allChunks(): IterableIterator<{ readonly entry: Int32Array; readonly node: Uint8Array; readonly flags: Uint8Array }> {
    return this.chunks.values();
  }

  /** The arrays of chunk `key` (read and changed in place by the CLOCK hand), or undefined. */
  chunkArrays(key: number): { entry: Int32Array; node: Uint8Array; flags: Uint8Array } | undefined {
    return this.chunks.get(key);
  }

  /** A fork's copy (this table empty): `parent`'s chunks, arrays and all; fork-pages.ts then sets each page's flags in place (listDirty). */
  copyChunksOf(parent: PageTable): void {
    for (const [key, c] of parent.chunks) this.chunks.set(key, { ...c, entry: c.entry.slice(), node: c.node.slice(), flags: c.flags.slice(), listed: false });
  }

  /** Chunk `key` has DIRTY pages set in place (through chunkArrays): the walks of dirty chunks must find it. */
  listDirty(key: number): void { const c = this.chunks.get(key); if (c !== undefined) this.noteDirty(c, key); }
}

// The page → frame map of one address space in a snapshot: for each page, the frame of
// its content, that content's CRC32 and the node (slot) of the frame. Sparse and chunked
// like the page table (2 MiB chunks of 512 entries), so that:
// - the pages a snapshot copies are collected without a per-page object or a sort;
// - the next snapshot's map is derived from the last one in O(chunks touched): chunks
//   nothing touched are shared between the two maps (a map is never changed once a
//   snapshot holds it; `derive` clones a chunk before changing it);
// - the record's page list comes out in address order by walking sorted chunk keys.
import { PAGE, PAGES_PER_CHUNK } from './page-table.js';

const CHUNK = PAGE * PAGES_PER_CHUNK;

interface MapChunk {
  /** frame + 1; 0 = the page is not in the map. */
  frame: Int32Array;
  crc: Uint32Array;
  slot: Uint8Array;
  used: number;
}

function newChunk(): MapChunk {
  return { frame: new Int32Array(PAGES_PER_CHUNK), crc: new Uint32Array(PAGES_PER_CHUNK), slot: new Uint8Array(PAGES_PER_CHUNK), used: 0 };
}

function cloneChunk(c: MapChunk): MapChunk {
  return { frame: c.frame.slice(), crc: c.crc.slice(), slot: c.slot.slice(), used: c.used };
}

export class PageMap {
  /** Chunks this map made or cloned itself (may be changed); the others are shared. */
  private readonly own = new Set<MapChunk>();

  constructor(private readonly chunks = new Map<number, MapChunk>()) {}

  /** Pages in the map. */
  get size(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.used;
    return n;
  }

  private writable(key: number, create: boolean): MapChunk | undefined {
    let c = this.chunks.get(key);
    if (c === undefined) {
      if (!create) return undefined;
      c = newChunk();
    } else if (!this.own.has(c)) {
      c = cloneChunk(c);
    } else {
      return c;
    }
    this.own.add(c);
    this.chunks.set(key, c);
    return c;
  }

  set(addr: number, frame: number, crc: number, slot: number): void {
    const c = this.writable(Math.floor(addr / CHUNK), true)!;
    const i = (addr % CHUNK) / PAGE;
    if (c.frame[i] === 0) c.used++;
    c.frame[i] = frame + 1;
    c.crc[i] = crc;
    c.slot[i] = slot;
  }

  /** Chunk `key`'s frames, each frame + 1 (0: not in the map), or undefined; read only (fork-pages.ts). */
  framesOf(key: number): Int32Array | undefined {
    return this.chunks.get(key)?.frame;
  }

  /** The frame of the page at `addr`, or -1. */
  frameOf(addr: number): number {
    const c = this.chunks.get(Math.floor(addr / CHUNK));
    return c === undefined ? -1 : c.frame[(addr % CHUNK) / PAGE] - 1;
  }

  /** The slot of the page at `addr`'s frame (0 when the page is not in the map). */
  slotOf(addr: number): number {
    const c = this.chunks.get(Math.floor(addr / CHUNK));
    return c === undefined ? 0 : c.slot[(addr % CHUNK) / PAGE];
  }

  /** Removes every page in [start, end). */
  clearRange(start: number, end: number): void {
    const first = Math.floor(start / CHUNK);
    const last = Math.floor((end - 1) / CHUNK);
    // A drop may span a huge reservation: walk whichever is smaller, its keys or ours.
    const keys = last - first + 1 <= this.chunks.size
      ? Array.from({ length: last - first + 1 }, (_, i) => first + i)
      : [...this.chunks.keys()].filter((k) => k >= first && k <= last);
    for (const key of keys) {
      const base = key * CHUNK;
      const lo = Math.max(start, base);
      const hi = Math.min(end, base + CHUNK);
      const c0 = this.chunks.get(key);
      if (c0 === undefined) continue;
      let any = false;
      for (let a = lo; a < hi; a += PAGE) if (c0.frame[(a - base) / PAGE] !== 0) { any = true; break; }
      if (!any) continue;
      const c = this.writable(key, false)!;
      for (let a = lo; a < hi; a += PAGE) {
        const i = (a - base) / PAGE;
        if (c.frame[i] !== 0) { c.frame[i] = 0; c.used--; }
      }
      if (c.used === 0) this.chunks.delete(key);
    }
  }

  /**
   * The next snapshot's map: this one less the ranges dropped since (munmap, DONTNEED,
   * mremap's source) and the pages lost before they could be copied, plus the pages
   * copied now (which win). This map is unchanged.
   */
  derive(drops: ReadonlyArray<readonly [number, number]>, lost: Iterable<number>, copied: PageMap): PageMap {
    const next = new PageMap(new Map(this.chunks));
    for (const [s, e] of drops) next.clearRange(s, e);
    for (const addr of lost) next.clearRange(addr, addr + PAGE);
    for (const [key, src] of copied.chunks) {
      if (!next.chunks.has(key)) {
        // Nothing of the old map here: share the copied chunk (copied is not changed after).
        next.chunks.set(key, src);
        continue;
      }
      const c = next.writable(key, false)!;
      for (let i = 0; i < PAGES_PER_CHUNK; i++) {
        if (src.frame[i] === 0) continue;
        if (c.frame[i] === 0) c.used++;
        c.frame[i] = src.frame[i];
        c.crc[i] = src.crc[i];
        c.slot[i] = src.slot[i];
      }
    }
    return next;
  }

  /** Chunk keys, ascending: walk them with `pagesIn` for the pages in address order. */
  keys(): number[] {
    return [...this.chunks.keys()].sort((a, b) => a - b);
  }

  /** Calls fn for each page of chunk `key` whose frame is on `slot`, ascending. */
  pagesIn(key: number, slot: number, fn: (addr: number, frame: number, crc: number) => void): void {
    const c = this.chunks.get(key);
    if (c === undefined) return;
    const base = key * CHUNK;
    for (let i = 0; i < PAGES_PER_CHUNK; i++) {
      if (c.frame[i] !== 0 && c.slot[i] === slot) fn(base + i * PAGE, c.frame[i] - 1, c.crc[i]);
    }
  }

  /** Sets the CRC of every page from `crcOf(frame, slot)` (a map being built: its chunks are its own). */
  fillCrcs(crcOf: (frame: number, slot: number) => number): void {
    for (const c of this.chunks.values()) {
      for (let i = 0; i < PAGES_PER_CHUNK; i++) if (c.frame[i] !== 0) c.crc[i] = crcOf(c.frame[i] - 1, c.slot[i]);
    }
  }

  /** Every page, in no particular order. */
  forEach(fn: (addr: number, frame: number, crc: number, slot: number) => void): void {
    for (const [key, c] of this.chunks) {
      const base = key * CHUNK;
      for (let i = 0; i < PAGES_PER_CHUNK; i++) if (c.frame[i] !== 0) fn(base + i * PAGE, c.frame[i] - 1, c.crc[i], c.slot[i]);
    }
  }

  /** Pages per slot (index: slot). */
  countBySlot(slots: number): number[] {
    const out = new Array<number>(slots).fill(0);
    for (const c of this.chunks.values()) {
      for (let i = 0; i < PAGES_PER_CHUNK; i++) if (c.frame[i] !== 0) out[c.slot[i]]++;
    }
    return out;
  }
}

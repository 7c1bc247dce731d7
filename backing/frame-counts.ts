// Per-frame tables that cost memory in proportion to the frames in use, not to the
// node's size: a 4 TiB node has 2^30 frames, and a Uint32Array over all of them is
// 4 GiB before the program touches a page (reliability issue, item 7: `true` on a 4 TiB
// node took 20 s and 4.3 GB). Frames are handed out from the bottom (frames.ts), so the
// ones in use sit in few chunks; a chunk of 64 Ki frames is allocated on its first
// non-zero entry and never given back (a session's high-water mark).

const CHUNK_SHIFT = 16;
const CHUNK = 1 << CHUNK_SHIFT;
const MASK = CHUNK - 1;

/** A counter per frame (snapshot references), zero unless set. */
export class FrameCounts {
  private readonly chunks: Array<Uint32Array | undefined>;

  constructor(readonly length: number) {
    this.chunks = new Array<Uint32Array | undefined>(Math.ceil(length / CHUNK));
  }

  get(f: number): number {
    const c = this.chunks[f >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c[f & MASK];
  }

  set(f: number, v: number): void {
    const c = this.chunks[f >>> CHUNK_SHIFT] ?? (v === 0 ? undefined : this.grow(f));
    if (c !== undefined) c[f & MASK] = v;
  }

  /** Adds one; returns the new count. */
  inc(f: number): number {
    const c = this.chunks[f >>> CHUNK_SHIFT] ?? this.grow(f);
    return ++c[f & MASK];
  }

  /** Takes one off a count above zero; returns the new count (0 stays 0). */
  dec(f: number): number {
    const c = this.chunks[f >>> CHUNK_SHIFT];
    if (c === undefined || c[f & MASK] === 0) return 0;
    return --c[f & MASK];
  }

  /** The frames with a non-zero count, ascending. */
  *nonZero(): Generator<number> {
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k];
      if (c === undefined) continue;
      for (let i = 0; i < CHUNK; i++) if (c[i] !== 0) yield k * CHUNK + i;
    }
  }

  private grow(f: number): Uint32Array {
    const c = new Uint32Array(CHUNK);
    this.chunks[f >>> CHUNK_SHIFT] = c;
    return c;
  }
}

/** One bit per frame (in use or not), in the same chunks. */
export class FrameBits {
  private readonly chunks: Array<Uint32Array | undefined>;

  constructor(readonly length: number) {
    this.chunks = new Array<Uint32Array | undefined>(Math.ceil(length / CHUNK));
  }

  has(f: number): boolean {
    const c = this.chunks[f >>> CHUNK_SHIFT];
    return c !== undefined && (c[(f & MASK) >>> 5] & (1 << (f & 31))) !== 0;
  }

  add(f: number): void {
    let c = this.chunks[f >>> CHUNK_SHIFT];
    if (c === undefined) {
      c = new Uint32Array(CHUNK / 32);
      this.chunks[f >>> CHUNK_SHIFT] = c;
    }
    c[(f & MASK) >>> 5] |= 1 << (f & 31);
  }

  delete(f: number): void {
    const c = this.chunks[f >>> CHUNK_SHIFT];
    if (c !== undefined) c[(f & MASK) >>> 5] &= ~(1 << (f & 31));
  }
}

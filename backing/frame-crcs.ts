// CRC32 of backing frames by (slot, frame) — the slots being the session's virtual nodes —
// for the checksum ring (src/channels/checksum-ring.ts): read by kernel copies
// (frame-copy.ts), so that a frame past the end of a file truncated under the session is
// "unreadable", not a SIGBUS that ends numactlx. On /dev/dax the frame is also flushed
// from the CPU caches once its CRC is computed (persist.ts), on the thread that computed
// it: every frame a snapshot writes passes here once, before the commit that names it.
import zlib from 'node:zlib';
import type { BackingKind } from './inspect.js';
import { FRAME_SIZE } from './format.js';
import { FRAME_BATCH, FrameCopy } from './frame-copy.js';
import { FrameViews } from './frame-views.js';
import { cacheFlush, type CacheFlush } from './persist.js';

/**
 * CRC32 of frames by (slot, frame), in batches of FRAME_BATCH: one kernel copy per batch
 * into a buffer of this thread's, then the CRCs (bench/frame-crc.mjs: no dearer than
 * reading the mapping). A device's frames (which no truncation can take away) are read
 * through the mapping.
 */
export class FrameCrcs {
  private readonly copy = new FrameCopy();
  private readonly buf = Buffer.alloc(FRAME_BATCH * FRAME_SIZE);
  private readonly addrs = new Float64Array(FRAME_BATCH);
  private readonly at = new Int32Array(FRAME_BATCH);
  /** Per slot: views over a device's mapping, or undefined (a file: kernel copies). */
  private readonly direct: Array<FrameViews | undefined>;
  /** Per slot: a device's CPU cache flush (libpmem), or undefined. */
  private readonly caches: Array<CacheFlush | undefined>;

  constructor(private readonly nodes: ReadonlyArray<{ frameBase: number; frameCount: number; sync: { kind: BackingKind } }>) {
    this.direct = nodes.map((n) => (n.sync.kind === 'dax' ? new FrameViews(n.frameBase, n.frameCount) : undefined));
    this.caches = nodes.map((n) => cacheFlush(n.sync.kind));
  }

  /**
   * CRCs of the entries (slots[i], frames[i]), i in [0, n), n ≤ FRAME_BATCH, into
   * out[i]. Returns n, or the index of the first entry that could not be read (its CRC
   * and the later ones' are not computed).
   */
  compute(slots: ArrayLike<number>, frames: ArrayLike<number>, n: number, out: Uint32Array): number {
    let m = 0;
    for (let i = 0; i < n; i++) {
      const views = this.direct[slots[i]];
      if (views) {
        out[i] = zlib.crc32(views.view(frames[i]));
        this.caches[slots[i]]?.persist(this.nodes[slots[i]].frameBase + frames[i] * FRAME_SIZE, FRAME_SIZE);
        continue;
      }
      this.addrs[m] = this.nodes[slots[i]].frameBase + frames[i] * FRAME_SIZE;
      this.at[m++] = i;
    }
    const got = m > 0 ? this.copy.read(this.addrs, m, this.buf) : 0;
    for (let j = 0; j < got; j++) out[this.at[j]] = zlib.crc32(this.buf.subarray(j * FRAME_SIZE, (j + 1) * FRAME_SIZE));
    return got < m ? this.at[got] : n;
  }
}

/** One entry's CRC with `crcs`, or undefined when its frame could not be read. */
export function crcOne(crcs: FrameCrcs, slot: number, frame: number, one: Uint32Array): number | undefined {
  return crcs.compute([slot], [frame], 1, one) === 1 ? one[0] : undefined;
}

// Frames as Buffers over a mapping of the backing, without a copy: koffi views over
// 256 MiB windows, made once (a koffi.view per frame would cost more than the copy into
// it). Any thread of the process that mapped the backing can make its own: the store
// (catalog, export) and the checksum worker (src/checksum-thread/checksum-loop.ts). A view must not
// be used after the mapping is gone: touching it is a crash, not an exception.
import { addressView } from '../src/sys/mman.js';
import { FRAME_SIZE } from './format.js';

const WINDOW_FRAMES = 65536;

export class FrameViews {
  private readonly windows: Buffer[] = [];

  /** Over `frameCount` frames mapped from address `frameBase` (exact as a Number: below 2^47). */
  constructor(private readonly frameBase: number, private readonly frameCount: number) {}

  /** The 4 KiB of frame `f` (0 ≤ f < frameCount: the caller checks). */
  view(f: number): Buffer {
    const w = Math.floor(f / WINDOW_FRAMES);
    let win = this.windows[w];
    if (win === undefined) {
      const first = w * WINDOW_FRAMES;
      const n = Math.min(WINDOW_FRAMES, this.frameCount - first);
      win = Buffer.from(addressView(BigInt(this.frameBase + first * FRAME_SIZE), n * FRAME_SIZE));
      this.windows[w] = win;
    }
    const off = (f - w * WINDOW_FRAMES) * FRAME_SIZE;
    return win.subarray(off, off + FRAME_SIZE);
  }
}

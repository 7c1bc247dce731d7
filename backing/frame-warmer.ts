// Frames read once, in idle time, before a copy writes them ("warmed").
//
// Why: a frame of a file backing that was never written is space fallocate reserved (an
// unwritten extent). The first touch of such a frame — a snapshot's copy writing it
// through the mapping — makes its page-cache page and zero-fills it (ext4:
// zero_user_segments under page_cache_ra_order), and on a VM whose host backs guest
// memory lazily that fill is the host's first touch of the memory: 7–8 µs a page on
// average here and up to 190 µs, where a frame whose page is cached takes 0.5 µs
// (docs/BENCHMARKS.md §5n). A snapshot ends copying with the program stopped (the
// pre-copy's slices, the pause): redis-server's slowest requests were those copies into
// fresh frames (§5m).
//
// pread(2), not the mapping: it fills the same page-cache pages, clean (nothing is
// written, and reclaim may take them back), takes no lock of numactlx's address space, and
// a file truncated under the session makes it return short where the mapping would raise
// SIGBUS. Regular files only: a device has no page cache, and tmpfs and hugetlbfs read a
// fallocated page as zeros without filling it.
import { FRAME_SIZE } from './format.js';
import { pread } from '../src/sys/fcntl.js';

/** Frames read per step (128 KiB): ≈ 0.3 ms at the average price, between looks at other work. */
export const WARM_STEP_FRAMES = 32;

export class FrameWarmer {
  private readonly buf = new ArrayBuffer(WARM_STEP_FRAMES * FRAME_SIZE);

  /** Over the frames from byte `dataOffset` of the file `fd` (open while this is used). */
  constructor(private readonly fd: number, private readonly dataOffset: number) {}

  /**
   * Reads frames [from, from + count), at most WARM_STEP_FRAMES; returns how many were
   * read whole: fewer when the file ends there (truncated) or the read fails.
   */
  read(from: number, count: number): number {
    const n = Math.min(count, WARM_STEP_FRAMES);
    if (n <= 0) return 0;
    try {
      const got = pread(this.fd, new Uint8Array(this.buf, 0, n * FRAME_SIZE), BigInt(this.dataOffset + from * FRAME_SIZE));
      return Math.floor(got / FRAME_SIZE);
    } catch {
      return 0;
    }
  }
}

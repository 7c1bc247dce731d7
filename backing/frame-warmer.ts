// Frames read once, in idle time, before a copy writes them ("warmed"), and how the
// engine's own mapping of them faults.
//
// Why: a frame of a file backing that was never written is space fallocate reserved (an
// unwritten extent). The first touch of such a frame — a snapshot's copy writing it
// through the mapping — makes its page-cache page and zero-fills it, and a snapshot ends
// copying with the program stopped (the pre-copy's slices, the pause). Read beforehand,
// a frame costs the copy 2.6–2.8 µs instead of 3.8–3.9 (one page per fault, below), and
// the page cache is filled off the snapshot's path (docs/BENCHMARKS.md §5n).
//
// pread(2), not the mapping: it fills the same page-cache pages, clean (nothing is
// written, and reclaim may take them back), takes no lock of numactlx's address space, and
// a file truncated under the session makes it return short where the mapping would raise
// SIGBUS. Regular files only: a device has no page cache, and tmpfs and hugetlbfs read a
// fallocated page as zeros without filling it.
//
// One page at a time, both ways (kernel quirk): ext4's readahead fills large folios and
// zero-fills each in one stretch that nothing preempts. On this VM's lazily backed memory
// that held a CPU for up to 38 ms at a time against a thread at nice -20 (the program's,
// numactlx's fault service) — stop 35's `memset` under `zero_user_segments` ←
// `page_cache_ra_order` — where one page at a time never held it 6 ms and cost 1.4 µs a
// page to read instead of 9 (bench/frame-stall.sh). So the warmer reads through a
// description of its own with POSIX_FADV_RANDOM, and the engine's mapping is MADV_RANDOM
// (faultPagesOneByOne).
import { FRAME_SIZE } from './format.js';
import type { SyncTarget } from './durability.js';
import { close, O_CLOEXEC, O_RDONLY, open, posixFadvise, POSIX_FADV_RANDOM, pread } from '../src/sys/fcntl.js';
import { MADV_RANDOM, madviseFast } from '../src/sys/mman.js';

/** Whether a backing of `kind` is warmed and faulted one page at a time: a regular file (the header says why only it). */
export function warmable(kind: string): boolean {
  return kind === 'file';
}

/** Frames read per step (128 KiB): ≈ 50 µs of fresh frames, between looks at other work. */
export const WARM_STEP_FRAMES = 32;

export class FrameWarmer {
  private readonly buf = new ArrayBuffer(WARM_STEP_FRAMES * FRAME_SIZE);
  private fd: number;

  /**
   * Over the frames from byte `dataOffset` of the file `fd` is open on (open while this is
   * made): opens the file again, read-only, as a description of its own (throws when it cannot).
   */
  constructor(fd: number, private readonly dataOffset: number) {
    this.fd = open(`/proc/self/fd/${fd}`, O_RDONLY | O_CLOEXEC);
    posixFadvise(this.fd, 0, 0, POSIX_FADV_RANDOM); // advice: a failure only costs speed
  }

  close(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
  }

  /**
   * Reads frames [from, from + count), at most WARM_STEP_FRAMES; returns how many were
   * read whole: fewer when the file ends there (truncated) or the read fails.
   */
  read(from: number, count: number): number {
    const n = Math.min(count, WARM_STEP_FRAMES);
    if (n <= 0 || this.fd < 0) return 0;
    try {
      const got = pread(this.fd, new Uint8Array(this.buf, 0, n * FRAME_SIZE), BigInt(this.dataOffset + from * FRAME_SIZE));
      return Math.floor(got / FRAME_SIZE);
    } catch {
      return 0;
    }
  }
}

/**
 * The engine's faults on a file backing's frames (its copies into them) fill one page each,
 * without readahead: a fault that reads ahead fills a large folio and zero-fills it in one
 * stretch nothing preempts — 30–40 ms on this VM, stalling whatever else shares the CPU, the
 * program among them — where one page at a time cost 3.9 µs a page instead of 9.6 and held
 * the CPU at most 5 ms (docs/BENCHMARKS.md §5n). Only the session's engine, and not on a
 * node with a resident limit: a verb reading a cold backing from disk, and eviction's
 * refaults reading frames back, want readahead. Advice: a failure only costs that.
 */
export function faultPagesOneByOne(frames: SyncTarget): void {
  if (warmable(frames.kind)) madviseFast(frames.frameBase, frames.mapLength, MADV_RANDOM);
}

// Frames mapped before a copy needs them. A frame of a file backing that was never written
// is a hole the filesystem reserved (fallocate): its first touch through the mapping makes
// a page-cache page and zero-fills it, and on a VM whose host backs guest memory lazily
// that first touch costs 10–190 µs a page, where a mapped frame takes 1–2 µs (perf of
// numactlx's engine during a redis-server snapshot: `memset` under `zero_user_segments` ←
// `page_cache_ra_order`; docs/BENCHMARKS.md §5m). A pre-copy's slices and its pause copy
// with the program stopped, so the frames they will copy into are mapped first, with the
// program running (precopy.ts). MADV_POPULATE_WRITE leaves a frame's bytes as they are: a
// frame warmed and not used yet is still free. A device (dax) has no page cache to fill.
import { FRAME_SIZE } from './format.js';
import { MADV_POPULATE_WRITE, madviseFast } from '../src/sys/mman.js';

/** Frames mapped per step: ≈ 256 × 10–190 µs, between two polls of the engine loop. */
const STEP_FRAMES = 256;

/** What warmFrames needs of a store (BackingStore). */
export interface WarmableFrames {
  upcomingFrames(n: number): number[];
  frameAddr(frame: number): number;
}

/**
 * Maps the next `n` frames `store` (of backing kind `kind`) would hand out, STEP_FRAMES a step. Returns how many it
 * mapped; it stops early, without error, where a call fails (the file truncated under
 * the session: EFAULT; its memory: ENOMEM) — the copy that needs them then finds out.
 */
export function* warmFrames(store: WarmableFrames, kind: string, n: number): Generator<void, number> {
  if (kind === 'dax' || n <= 0) return 0;
  const frames = store.upcomingFrames(n).sort((a, b) => a - b);
  let warmed = 0;
  for (let i = 0; i < frames.length; i += STEP_FRAMES) {
    const end = Math.min(frames.length, i + STEP_FRAMES);
    for (let j = i; j < end;) {
      let k = j + 1;
      while (k < end && frames[k] === frames[k - 1] + 1) k++;
      if (madviseFast(store.frameAddr(frames[j]), (k - j) * FRAME_SIZE, MADV_POPULATE_WRITE) !== 0) return warmed;
      warmed += k - j;
      j = k;
    }
    yield;
  }
  return warmed;
}

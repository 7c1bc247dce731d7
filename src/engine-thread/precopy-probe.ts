// A pre-copy pass the program outruns (issue 10, item 0: the copier adapts to the program's
// write rate). Under NUMACTLX_SNAPSHOT_CAPTURE=auto a pre-copy whose next pass would not
// shrink the written set ends held by a fork (snapshot-capture.ts holdUnconverged), and
// every page written since a page's pre-copy is copied again, out of the fork. Between
// passes that is seen by a look before the next pass (precopy.ts SHRINK); but a first pass
// copies every page first (a first snapshot of 1 GiB: 1.2–1.6 s here), and for a program
// that rewrites its memory faster than the pass copies it all of that pass is lost (a 1 GiB
// random writer: 1.6 s of a 3.7 s snapshot). So while a first pass copies, the probe looks
// at what it has copied: when nearly all of it has been written again already, the pass
// stops there and the freeze holds the mm by a fork.
import { closeFd } from '../sys/eventfd.js';
import { openPagemap } from '../sys/pagemap.js';
import { forkWouldLack } from './snapshot-capture.js';
import type { DirtyScanner } from './dirty-scan.js';
import type { Mm } from './mm.js';

/** A look every this often while the pass copies (the first one after as long). */
const PROBE_MS = 50;
/**
 * Windows spread over the mm, of this many bytes each: a read-only PAGEMAP_SCAN of 4 MiB at
 * most a look. Many small ones: a pass copies in address order, so the first look that
 * says anything comes once the pass has passed MIN_CLEAN / 16 of them (1/8 of the mm).
 */
const WINDOWS = 64;
const WINDOW_BYTES = 64 << 10;
/** Fewer copied pages than this in the windows say nothing yet. */
const MIN_CLEAN = 128;
/** This share of the copied pages written again: outrun (as precopy.ts SATURATED between passes). */
const OUTRUN = 0.9;

/** Owned by one pass's copy of one mm (precopy.ts precopySteps). */
export class RewriteProbe {
  private next = performance.now() + PROBE_MS;
  /** The share seen by the look that said outrun (NUMACTLX_DEBUG). */
  seen = '';

  constructor(private readonly scanner: DirtyScanner, private readonly mm: Mm, private readonly pid: number) {}

  /** Whether the program has outrun the pass: false until a look says so. */
  outrun(): boolean {
    const now = performance.now();
    if (now < this.next) return false;
    this.next = now + PROBE_MS;
    let fd: number;
    try {
      fd = openPagemap(this.pid);
    } catch {
      return false; // gone: the pass ends on its own
    }
    let sample: { clean: number; rewritten: number };
    try {
      sample = this.scanner.sampleRewritten(fd, this.mm, WINDOWS, WINDOW_BYTES);
    } finally {
      closeFd(fd);
    }
    if (sample.clean < MIN_CLEAN || sample.rewritten < sample.clean * OUTRUN) return false;
    // Only where a fork can hold the mm: otherwise what the pass leaves is copied in the pause.
    if (forkWouldLack(this.pid) !== undefined) {
      this.next = Number.POSITIVE_INFINITY;
      return false;
    }
    this.seen = `${sample.rewritten} of ${sample.clean} sampled copies written again`;
    return true;
  }
}

// Ranges the program discarded (MADV_DONTNEED, MADV_REMOVE) whose pages the kernel may
// not have zapped yet.
//
// Kernel fact (fs/userfaultfd.c userfaultfd_remove and userfaultfd_event_wait_completion,
// mm/madvise.c madvise_dontneed_free): UFFD_EVENT_REMOVE is sent before the zap. The
// madvise thread waits until the event is read; mmap_changing falls when that thread
// wakes, and only then does it take the mmap lock again and zap the range. A UFFDIO_COPY
// into the range in between succeeds, and the zap then takes the page: the table would
// name a page the program lacks. The copier's guard met such pages (copy-guard.ts), and
// a fault on one was answered with a bare wake, so the thread faulted again for ever.
//
// So a fault's fault-ahead run stays out of a range removed in the last QUIET_MS
// (the zap follows the wake-up within microseconds unless the thread waits for a CPU);
// a fault inside one is the program touching it again: the entry goes. A page the table
// still names and the program lacks is found when the program faults on it
// (fault-service.ts, PagePresence.lacks) and served again.
import type { Mm } from './mm.js';
import { PAGE } from './page-table.js';

/** How long after its REMOVE event a range is kept out of fault-ahead. */
const QUIET_MS = 1000;
/** Entries kept per mm (a program discarding often keeps only its latest ranges out). */
const MAX_ENTRIES = 64;

/** Forgets the entries past their quiet time (they are in the order their events came). */
function prune(mm: Mm, now: number): void {
  while (mm.removed.length > 0 && now - mm.removed[0].at >= QUIET_MS) mm.removed.shift();
}

/** The REMOVE event of [start, end) was read. */
export function noteRemoved(mm: Mm, start: number, end: number): void {
  const now = performance.now();
  prune(mm, now);
  if (mm.removed.length >= MAX_ENTRIES) mm.removed.shift();
  mm.removed.push({ start, end, at: now });
}

/**
 * The run [lo, hi) of absent pages around the faulting page `addr`, less what lies in
 * a recently removed range on either side of it (called only while mm.removed has
 * entries). A fault inside such a range ends that range's quiet time and is served alone.
 */
export function clipRun(mm: Mm, addr: number, lo: number, hi: number): [number, number] {
  prune(mm, performance.now());
  for (let i = 0; i < mm.removed.length; i++) {
    const r = mm.removed[i];
    if (r.start <= addr && addr < r.end) {
      mm.removed.splice(i, 1);
      return [addr, addr + PAGE];
    }
    if (r.end <= addr && r.end > lo) lo = r.end;
    if (r.start > addr && r.start < hi) hi = r.start;
  }
  return [lo, hi];
}

// An address the program maps again before the engine has read the unmap of what was
// there. The kernel sends UFFD_EVENT_UNMAP (munmap, brk shrinking) and UFFD_EVENT_REMAP
// (mremap) after the old mapping is gone and the mmap lock dropped
// (userfaultfd_unmap_complete, mremap_userfaultfd_complete): another thread can map the
// same addresses, and the tracer register them, before the event is even queued. The
// page table then still holds the old mapping's pages there. The copier must never read
// one: in the new range it is a missing page, and reading it would fault on a
// userfaultfd that only the engine thread serves — the engine would wait on itself
// (seen: the churn stress test hung in process_vm_readv, in handle_userfault).
//
// So before a range is registered, what is queued on its uffd is read (usually the
// event is there), and pages the table still holds in it are dropped as the unmap will
// drop them (uffd-events.ts dropStale). The event, when it comes, must not drop or move what the new range placed
// meanwhile: the part dropped early is remembered (Mm.predropped) and taken out of the
// event's range. An entry no event claims within PREDROP_MS is forgotten (a later
// munmap of the new range must drop its pages).
import type { Mm } from './mm.js';

/** How long an early drop waits for the event it stands in for (the event follows within microseconds). */
const PREDROP_MS = 1000;

/** [start, end) of mm was dropped before its event was read (uffd-events.ts dropStale). */
export function notePredropped(mm: Mm, start: number, end: number): void {
  mm.predropped.push({ start, end, at: performance.now() });
}

/** The pieces of an UNMAP/REMAP event's [start, end) not dropped early; the entries it claims are consumed. */
export function eventPieces(mm: Mm, start: number, end: number): Array<[number, number]> {
  if (mm.predropped.length === 0) return [[start, end]];
  const now = performance.now();
  mm.predropped = mm.predropped.filter((p) => now - p.at < PREDROP_MS);
  let pieces: Array<[number, number]> = [[start, end]];
  for (const p of mm.predropped) {
    if (p.end <= start || p.start >= end) continue;
    pieces = pieces.flatMap(([a, b]): Array<[number, number]> => {
      if (p.end <= a || p.start >= b) return [[a, b]];
      const out: Array<[number, number]> = [];
      if (a < p.start) out.push([a, p.start]);
      if (p.end < b) out.push([p.end, b]);
      return out;
    });
  }
  // Only the part of an entry this event covers is claimed: a new range can lie over two
  // earlier mappings, and the event of the second must leave it alone too.
  mm.predropped = mm.predropped.flatMap((p) => {
    if (p.end <= start || p.start >= end) return [p];
    const left = [];
    if (p.start < start) left.push({ start: p.start, end: start, at: p.at });
    if (p.end > end) left.push({ start: end, end: p.end, at: p.at });
    return left;
  });
  return pieces;
}

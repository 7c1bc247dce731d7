// Reading a uffd's messages and handling its events: page faults go to the fault service
// (through the engine), FORK makes the child's mm, REMAP moves pages, REMOVE and UNMAP
// drop them. Free functions over the engine's state (engine-core.ts).
import os from 'node:os';
import { readFd } from '../sys/eventfd.js';
import { UFFD_EVENT, UFFD_MSG_OFFSET, UFFD_MSG_SIZE, UFFD_PAGEFAULT_FLAG } from '../sys/userfaultfd-uapi.js';
import { PAGE, PENDING } from './page-table.js';
import { countOut, remapFlags } from './evicted-pages.js';
import type { Mm } from './mm.js';
import { forkChild } from './fork-child.js';
import { getU64 } from './u64.js';
import type { EngineCore } from './engine-core.js';
import { eventPieces, notePredropped } from './reused-addresses.js';
import { noteRemoved } from './recently-removed.js';

const { EAGAIN } = os.constants.errno;
/** Messages read per read(2) of a uffd. */
export const MSGS_PER_READ = 64;

// ---- messages -----------------------------------------------------------------------
/** Reads and handles every queued message of one uffd. */
export function service(e: EngineCore, mm: Mm): void {
  for (;;) {
    const n = readFd(mm.uffd, e.msgBuf, e.msgBuf.byteLength);
    const count = n > 0 ? n / UFFD_MSG_SIZE : 0;
    // Ranges the tracer registered before resuming a thread whose fault may be in this
    // batch: known before the batch is handled (tracer-notes.ts, register-range.ts). A
    // fork noted meanwhile may be for a FORK of this batch (forksInBatch).
    mm.batchUnhandled = count;
    e.readNotes();
    mm.batchUnhandled = 0;
    applyNoted(e, mm);
    if (n <= 0) {
      if (n === -EAGAIN || n === 0) break;
      // The mm is gone or the fd is broken: nothing more will come from it.
      e.leaveAll(mm);
      return;
    }
    for (let i = 0; i < count; i++) handleMsg(e, mm, i * UFFD_MSG_SIZE);
    // Each FORK of the batch took its name, if one came (onFork): none can be left over.
    mm.namedForks.length = 0;
    if (count < MSGS_PER_READ) break;
  }
}

/**
 * The UFFD_EVENT_FORKs of mm read into e.msgBuf and not handled yet: only while the notes
 * are read between a read of mm's uffd and its handling (service), 0 otherwise. Counted
 * when a noted fork finds no child to name, not for every batch.
 */
export function forksInBatch(e: EngineCore, mm: Mm): number {
  let forks = 0;
  for (let i = 0; i < mm.batchUnhandled; i++) if (e.msgView.getUint8(i * UFFD_MSG_SIZE + UFFD_MSG_OFFSET.event) === UFFD_EVENT.FORK) forks++;
  return forks;
}

function handleMsg(e: EngineCore, mm: Mm, off: number): void {
  const v = e.msgView;
  const O = UFFD_MSG_OFFSET;
  switch (v.getUint8(off + O.event)) {
    case UFFD_EVENT.PAGEFAULT: {
      const addr = getU64(v, off + O.pagefaultAddress);
      const page = addr - (addr % PAGE);
      if (v.getUint32(off + O.pagefaultFlags, true) & UFFD_PAGEFAULT_FLAG.WP) {
        mm.writeFaults++;
        e.snapshot.onWriteFault(mm, page);
        break;
      }
      mm.faults++;
      e.fault(mm, page, false, v.getUint32(off + O.pagefaultPtid, true));
      break;
    }
    case UFFD_EVENT.FORK:
      onFork(e, mm, v.getUint32(off + O.forkUfd, true));
      break;
    case UFFD_EVENT.REMAP: {
      const from = getU64(v, off + O.remapFrom);
      const to = getU64(v, off + O.remapTo);
      e.events.remap++;
      for (const [a, b] of eventPieces(mm, from, from + getU64(v, off + O.remapLen))) onRemap(e, mm, a, a - from + to, b - a);
      break;
    }
    case UFFD_EVENT.REMOVE: {
      e.events.remove++;
      const start = getU64(v, off + O.removeStart);
      const end = getU64(v, off + O.removeEnd);
      // [eviction] The engine's own drop of pages it evicted: they live on in their frames.
      if (e.eviction?.isOwnDrop(mm, start, end)) break;
      drop(e, mm, start, end);
      noteRemoved(mm, start, end);
      break;
    }
    case UFFD_EVENT.UNMAP: {
      e.events.unmap++;
      for (const [start, end] of eventPieces(mm, getU64(v, off + O.removeStart), getU64(v, off + O.removeEnd))) {
        drop(e, mm, start, end);
        mm.ranges.remove(start, end);
      }
      break;
    }
    default:
      break;
  }
}

/** munmap / DONTNEED: the pages are gone from the program. */
export function drop(e: EngineCore, mm: Mm, start: number, end: number): void {
  e.snapshot.leaving(mm, start, end);
  const part = e.snapshot.copying?.parts.get(mm);
  mm.table.takeRange(start, end, (addr, entry, node, flags) => {
    countOut(mm, entry, flags);
    // A page frozen but not copied yet is lost to the snapshot being taken: its
    // content is gone before it could be read (README, "Known limits").
    if (flags & PENDING && part) part.lost.add(addr);
    if (entry > 0) e.snapshot.dropped(mm, addr);
    e.release(entry, node, flags);
  });
  mm.drops.push([start, end]);
}

/**
 * [start, end) of mm is about to be registered while the table still holds pages there:
 * an address reused before the engine read its unmap (reused-addresses.ts). What is
 * queued is read first; pages still there are dropped now, as the event will.
 */
export function dropStale(e: EngineCore, mm: Mm, start: number, end: number): void {
  if (!mm.table.anyIn(start, end)) return;
  service(e, mm);
  if (!e.mms.has(mm.uffd)) return;
  dropStaleNow(e, mm, start, end);
}

/**
 * dropStale without reading the uffd first: for a range the tracer registered itself,
 * noted while a batch may be half handled (the event, when read, leaves the part dropped
 * here alone: reused-addresses.ts).
 */
export function dropStaleNow(e: EngineCore, mm: Mm, start: number, end: number): void {
  // A range still known there (even with no page placed) is an earlier mapping whose
  // UNMAP/REMAP is not handled yet: that event must not take the new range away either.
  const earlier = staleExtents(mm, start, end);
  if (earlier.length === 0) return;
  drop(e, mm, start, end);
  mm.ranges.remove(start, end);
  // Only what the earlier mappings' events will cover is noted: a noted part they do not
  // claim would, for PREDROP_MS, shield pages of the new range from its own UNMAP (seen:
  // one page left in the table after its VMA was gone, caught by the commit's outside_vma).
  for (const [a, b] of earlier) notePredropped(mm, a, b);
}

/** The parts of [start, end) an earlier mapping still holds: its known ranges, and any gap between them with pages in the table. */
function staleExtents(mm: Mm, start: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = start;
  const gap = (a: number, b: number): void => { if (a < b && mm.table.anyIn(a, b)) out.push([a, b]); };
  for (const r of mm.ranges.slice(start, end)) {
    gap(at, r.start);
    out.push([r.start, r.end]);
    at = r.end;
  }
  gap(at, end);
  return out;
}

/**
 * Applies mm's ranges the tracer registered and noted (register-range.ts queueNote):
 * only right after a read(2) of mm's uffd, before what it read is handled. Every event
 * queued before that read is then handled already or in that batch, as when the engine
 * registers a range itself after reading what is queued (dropStale): an UNMAP/REMAP of
 * an earlier mapping at the same addresses leaves the new range alone (predropped), and
 * a fault in the new range finds it.
 */
export function applyNoted(e: EngineCore, mm: Mm): void {
  if (mm.noted.length === 0) return;
  for (const n of mm.noted.splice(0)) {
    if (!e.mms.has(mm.uffd)) return;
    dropStaleNow(e, mm, n.start, n.end);
    mm.track(n.start, n.end, n.policy);
  }
}

function onFork(e: EngineCore, parent: Mm, ufd: number): void {
  if (parent.captureFork === 0) {
    parent.captureFork = ufd; // a snapshot's capture fork (snapshot-capture.ts), not the program's
    return;
  }
  e.events.fork++;
  const child = forkChild(e, parent, ufd);
  // Named already when the tracer's note came between the read of this FORK and now.
  const pid = parent.namedForks.shift();
  if (pid === undefined) parent.unclaimedForks.push(child);
  else e.claimFork(child, pid);
}


function onRemap(e: EngineCore, mm: Mm, from: number, to: number, len: number): void {
  e.snapshot.leaving(mm, from, from + len);
  const part = e.snapshot.copying?.parts.get(mm);
  const moved: Array<[number, number, number, number]> = [];
  mm.table.takeRange(from, from + len, (addr, entry, node, flags) => {
    if (flags & PENDING && part) part.lost.add(addr);
    if (entry > 0) e.snapshot.dropped(mm, addr);
    moved.push([addr - from + to, entry, node, flags]);
  });
  // Moved pages keep their frame but count as new at their new address (DIRTY): the
  // next snapshot copies them there, and their old addresses leave it. [eviction] An
  // evicted page stays evicted; the next snapshot records its frame (remapFlags).
  for (const [addr, entry, node, flags] of moved) {
    mm.table.set(addr, entry, node, entry > 0 ? remapFlags(mm, addr, flags) : 0);
  }
  mm.drops.push([from, from + len]);
  const pieces = mm.ranges.slice(from, from + len);
  mm.ranges.remove(from, from + len);
  for (const p of pieces) mm.ranges.add(p.start - from + to, p.end - from + to, p.policy);
}

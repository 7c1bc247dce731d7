// What an evicted page is to the rest of the engine (--max-resident, eviction.ts): free
// functions the fork, remap, drop and freeze paths call for pages in the EVICTED or FRESH
// state (page-table.ts).
//
// Invariants (with snapshot.ts's):
// - An EVICTED page is not in the program; its entry keeps its frame, which holds its
//   content. It is never DIRTY or PENDING: the copier must never read it from the program
//   (it would fault on a uffd only this thread serves).
// - A frame is written by eviction in place only while no snapshot and no other page
//   holds it (refs ≤ 1), else the page moves to a new frame: committed snapshots, and one
//   being copied, keep theirs (redirect-on-write, as the copier does).
// - A page whose frame eviction wrote after the last snapshot is FRESH until the next
//   freeze records that frame (recordFresh): a clean or evicted page that is not FRESH
//   has the frame the last snapshot's map (Mm.snap) names.
// - A fork shares every frame of the parent's with the child, evicted ones too (one more
//   reference each): refs > 1 is what sends a write-back to a new frame. BACK marks a
//   page whose frame still holds what it held while evicted (fork-pages.ts).
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { DIRTY, EVICTED, FRESH, PAGE, PAGES_PER_CHUNK, PENDING, COPYING } from './page-table.js';
import type { Mm } from './mm.js';
import type { MmPart } from './snapshot.js';
import type { EngineCore } from './engine-core.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import type { EvictionStats } from '../channels/session-stats.js';

const CHUNK = PAGE * PAGES_PER_CHUNK;

/** A page leaves mm's counts (dropped, unmapped, its mm closed): resident or evicted. */
export function countOut(mm: Mm, entry: number, flags: number): void {
  if (entry <= 0) return;
  if (flags & EVICTED) mm.eviction.evicted--;
  else mm.resident--;
}

/** The page at addr got a frame the next freeze must record. */
export function noteFresh(mm: Mm, addr: number): void {
  mm.eviction.freshChunks.add(Math.floor(addr / CHUNK));
}

/**
 * A fork: the parent's page at addr is evicted, so the child has no page there either;
 * returns the child's flags for it (fork-pages.ts copyParentPages). The child's entry
 * shares the frame (one more reference, taken by the caller: a frame with more than one
 * is never written in place, so whichever of them writes its page back or has it copied
 * next gets a frame of its own, and the other's content stays in this one). `inSnap`:
 * the frame is the one the child's snapshot map names (Mm.snap, derived from the
 * parent's at the fork); else it is FRESH, and the child's next snapshot records it.
 */
export function forkEvicted(e: EngineCore, child: Mm, addr: number, node: number, inSnap: boolean): number {
  if (!inSnap) noteFresh(child, addr);
  child.eviction.evicted++;
  const stats = e.nodeStats[node];
  if (stats.eviction) stats.eviction.pages_evicted++;
  return inSnap ? EVICTED : EVICTED | FRESH;
}

/**
 * The flags of a page mremap moved to `addr`: a present page counts as new there (DIRTY:
 * the next snapshot copies it); an evicted one stays evicted, and the next freeze records
 * its frame at the new address.
 */
export function remapFlags(mm: Mm, addr: number, flags: number): number {
  if (!(flags & EVICTED)) return DIRTY;
  noteFresh(mm, addr);
  return EVICTED | FRESH;
}

/**
 * The freeze (every thread stopped): the FRESH pages of mm join the snapshot with their
 * frames as they are, as if the copier had just written them — a reference for the
 * snapshot from now on (finishSteps lets it go once the record holds its own) and a CRC
 * from the checksum worker. Pages DIRTY or frozen since are copied by this snapshot
 * instead. Returns how many pages were recorded.
 */
export function recordFresh(e: EngineCore, mm: Mm, part: MmPart, checksums: ChecksumQueue): number {
  let n = 0;
  for (const key of mm.eviction.freshChunks) {
    const c = mm.table.chunkArrays(key);
    if (c === undefined) continue;
    const { entry, node, flags } = c;
    const base = key * CHUNK;
    for (let i = 0; i < PAGES_PER_CHUNK; i++) {
      const f = flags[i];
      if (!(f & FRESH)) continue;
      flags[i] = f & ~FRESH;
      if (entry[i] <= 0 || f & (DIRTY | PENDING | COPYING)) continue;
      const frame = entry[i] - 1;
      part.copied.set(base + i * PAGE, frame, 0, node[i]);
      e.slots[node[i]].refs.inc(frame);
      checksums.written(node[i], frame);
      n++;
    }
  }
  mm.eviction.freshChunks.clear();
  if (n > 0) checksums.kick();
  return n;
}

/**
 * An evicted page that /proc/PID/pagemap shows mapped after all is resident again (a
 * write-protect fault on it can only mean that: eviction.ts onWriteFault). Returns whether.
 */
export function residentIfMapped(e: EngineCore, mm: Mm, addr: number): boolean {
  const pid = mm.pids.values().next().value;
  if (pid === undefined) return false;
  let fd: number;
  try {
    fd = openPagemap(pid);
  } catch {
    return false;
  }
  const buf = Buffer.alloc(8);
  try {
    if (readPagemapRun(fd, addr, 1, buf) !== 1 || !pagemapHasPage(buf, 0)) return false;
  } finally {
    closeFd(fd);
  }
  const slot = mm.table.nodeOf(addr);
  mm.table.setFlags(addr, mm.table.flagsOf(addr) & ~EVICTED);
  mm.resident++;
  mm.eviction.evicted--;
  const stats = e.nodeStats[slot];
  stats.pages_resident++;
  if (stats.eviction) stats.eviction.pages_evicted--;
  return true;
}

/** A node's eviction counters at the start (`limit`: its --max-resident in pages). */
export function newEvictionStats(limit: number): EvictionStats {
  return {
    max_resident_bytes: limit * PAGE, pages_evicted: 0, evictions: 0, refaults: 0, refault_faults: 0,
    bytes_read: 0, bytes_written: 0, rounds: 0, evict_ms: 0, pause_ms: 0, fault_waits: 0, peak_resident_pages: 0,
  };
}

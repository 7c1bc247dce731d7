// A forked child's pages: its parent's, copied into its table when its fork event is read
// (copyParentPages), then checked against what the kernel gave it (engine.ts forked):
// present, and write-protected where the table says clean; [eviction] evicted where the
// parent's page was evicted when the kernel copied its memory.
import { readSmaps } from '../sys/procfs.js';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, pagemapUffdWp, readPagemapRun } from '../sys/pagemap.js';
import { ABSENT, BACK, DIRTY, EVICTED, FRESH, PAGE, PAGES_PER_CHUNK, PENDING, PLACED_REAL } from './page-table.js';
import { countOut, forkEvicted, noteFresh } from './evicted-pages.js';
import type { Mm } from './mm.js';
import type { EngineCore } from './engine-core.js';

/** Scratch for the pagemap reads, a chunk's entries at most (the engine thread only). */
const pagemapBuf = Buffer.alloc(PAGES_PER_CHUNK * 8);

/**
 * The parent's pages in the child's table (uffd-events.ts forkChild): the table's chunks
 * copied whole, then each virtual page's flags set in place. A virtual page shares its
 * parent's frame (one more reference). It is clean in the child only where its content
 * is the parent's last committed snapshot's: PENDING (frozen for a snapshot the child is
 * not part of) and pages that snapshot is copying now (their frame is not the committed
 * map's yet) are DIRTY; [eviction] so is a FRESH page (its frame was written after that
 * snapshot), and an evicted page stays evicted in the child, sharing the frame. BACK goes
 * along for keepPresentPages. Over the chunks' arrays: a page at a time through the
 * table's methods took 3.3–5.6 ms a fork of ruby's 40,000-page heap (docs/BENCHMARKS.md §5d).
 */
export function copyParentPages(e: EngineCore, parent: Mm, child: Mm): void {
  child.table.copyChunksOf(parent.table);
  for (const key of child.table.chunkKeys()) {
    const { entry, node, flags } = child.table.chunkArrays(key)!;
    const frames = child.snap.framesOf(key); // frame + 1 per page
    const base = key * PAGES_PER_CHUNK * PAGE;
    let dirty = false;
    for (let i = 0; i < PAGES_PER_CHUNK; i++) {
      const ent = entry[i];
      if (ent === ABSENT) continue;
      if (ent === PLACED_REAL) {
        node[i] = 0;
        flags[i] = 0;
        continue;
      }
      const addr = base + i * PAGE;
      const f = flags[i];
      const slot = node[i];
      const stats = e.nodeStats[slot];
      e.slots[slot].refs.inc(ent - 1);
      if (child.everPlaced.add(addr)) stats.pages_placed++;
      const inSnap = (f & FRESH) === 0 && frames !== undefined && frames[i] === ent;
      if (f & EVICTED) {
        flags[i] = forkEvicted(e, child, addr, slot, inSnap);
        continue;
      }
      const clean = (f & (DIRTY | PENDING)) === 0 && inSnap;
      flags[i] = (clean ? 0 : DIRTY) | (f & BACK);
      dirty ||= !clean;
      child.resident++;
      stats.pages_resident++;
    }
    if (dirty) child.table.listDirty(key);
  }
}

/**
 * The child's table was copied from the parent's when its FORK event was read, but a
 * read(2) of a uffd returns pending faults before pending events: pages the parent
 * faulted in after dup_mmap were served (and entered in the parent's table) before the
 * engine learnt of the fork, and the child does not have them. An entry for a page
 * the child lacks would break the copier's rule (remote-copy.ts: a page it reads must
 * be present, or this thread faults on a userfaultfd only it serves — a deadlock), so
 * the child's entries are checked against its /proc/PID/pagemap now. The child has not
 * run yet: the tracer holds it at its first stop until this returns.
 *
 * [eviction] A page the child lacks because it was evicted when the kernel copied the
 * parent (its entry EVICTED, or BACK: it came back to the parent since, from a frame
 * not written since) is the child's evicted page: its frame holds its content. Not in a
 * VMA the child got empty (MADV_WIPEONFORK) or not at all (MADV_DONTFORK): those read as
 * zeros or fault. An EVICTED page the child has after all (the parent's was evicted
 * after the copy) is the child's own, DIRTY.
 */
export function keepPresentPages(e: EngineCore, child: Mm, childPid: number): void {
  // Chunk by chunk, ascending, one pagemap read over each chunk's used span, reading the
  // chunk's arrays directly: a page at a time through the table (a list of every page,
  // sorted, then a lookup per page) took ≈ 25 ms a fork of ruby's 40,000-page heap, the
  // forking thread waiting all along (docs/BENCHMARKS.md §5c).
  const keys = child.table.chunkKeys();
  if (keys.length === 0) return;
  let fd: number;
  try {
    fd = openPagemap(childPid);
  } catch {
    return; // the child is gone already: its mm is closed when it is reaped
  }
  const evicted: number[] = [];
  try {
    const buf = pagemapBuf;
    for (const key of keys) {
      const chunk = child.table.chunkArrays(key);
      if (!chunk) continue;
      const { entry, flags } = chunk;
      let lo = 0;
      while (lo < PAGES_PER_CHUNK && entry[lo] === ABSENT) lo++;
      if (lo === PAGES_PER_CHUNK) continue;
      let hi = PAGES_PER_CHUNK;
      while (entry[hi - 1] === ABSENT) hi--;
      const base = key * PAGES_PER_CHUNK * PAGE;
      const read = readPagemapRun(fd, base + lo * PAGE, hi - lo, buf);
      for (let k = lo; k < hi; k++) {
        if (entry[k] === ABSENT) continue;
        const addr = base + k * PAGE;
        const f = flags[k];
        if (k - lo < read && pagemapHasPage(buf, k - lo)) {
          if (f & EVICTED) {
            residentInChild(e, child, addr);
            continue;
          }
          // Clean in the table means write-protected: a write must reach the engine.
          // The kernel keeps uffd-wp on a fork's copy only when the child's VMA is
          // registered for it (UFFD_EVENT_FORK); else the page is DIRTY from now on.
          // (BACK has done its part: the child has the page.)
          const rest = f & ~BACK;
          if (entry[k] > 0 && rest === 0 && !pagemapUffdWp(buf, k - lo)) child.table.setFlags(addr, DIRTY);
          else if (f & BACK) child.table.setFlags(addr, rest);
          continue;
        }
        if (entry[k] > 0 && f & (EVICTED | BACK)) evicted.push(addr);
        else dropInChild(e, child, addr);
      }
    }
  } finally {
    closeFd(fd);
  }
  if (evicted.length > 0) keepEvicted(e, child, childPid, evicted);
}

/** The page at addr is not the child's: out of its table and its snapshots. */
function dropInChild(e: EngineCore, child: Mm, addr: number): void {
  child.drops.push([addr, addr + PAGE]);
  child.table.takeRange(addr, addr + PAGE, (_a, entry, node, flags) => {
    countOut(child, entry, flags);
    e.release(entry, node, flags);
  });
}

/** An evicted entry the child has a page for: resident, and DIRTY (its content is its own). */
function residentInChild(e: EngineCore, child: Mm, addr: number): void {
  const stats = e.nodeStats[child.table.nodeOf(addr)];
  child.table.setFlags(addr, DIRTY);
  child.eviction.evicted--;
  child.resident++;
  stats.pages_resident++;
  if (stats.eviction) stats.eviction.pages_evicted--;
}

/** `addrs` (ascending): pages the child lacks whose frames hold them; evicted where the child's VMA inherited memory. */
function keepEvicted(e: EngineCore, child: Mm, childPid: number, addrs: number[]): void {
  let vmas: Array<[number, number]>;
  try {
    vmas = readSmaps(childPid).filter((v) => !v.flags.includes('wf')).map((v) => [v.start, v.end]); // not MADV_WIPEONFORK: inherited
  } catch {
    return; // gone: its mm is closed when it is reaped
  }
  let v = 0;
  for (const addr of addrs) {
    while (v < vmas.length && vmas[v][1] <= addr) v++;
    if (v >= vmas.length || addr < vmas[v][0]) {
      dropInChild(e, child, addr);
      continue;
    }
    const flags = child.table.flagsOf(addr);
    if (flags & EVICTED) continue;
    // BACK: resident in the parent's table when the fork was read, evicted in the child.
    const entry = child.table.get(addr);
    const inSnap = child.snap.frameOf(addr) === entry - 1;
    child.table.setFlags(addr, inSnap ? EVICTED : EVICTED | FRESH);
    if (!inSnap) noteFresh(child, addr);
    const stats = e.nodeStats[child.table.nodeOf(addr)];
    child.resident--;
    child.eviction.evicted++;
    stats.pages_resident--;
    if (stats.eviction) stats.eviction.pages_evicted++;
  }
}

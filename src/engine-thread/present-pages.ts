// Pages the program has in a trapped range that the engine never placed. A range is
// registered after the kernel made it: exec's stack already holds argv, envp and the
// auxiliary vector (the top of the main thread's stack, where main's locals live); an
// mmap with MAP_POPULATE is filled before its syscall-exit stop; mbind can move memory
// the program touched onto a virtual node. No fault tells the engine of such pages, so
// without this no snapshot would hold them (an exported core would miss the top of the
// stack, and gdb could not unwind a single frame).
//
// At each prepare, the ranges registered since the last one (Mm.untracked) are looked
// at: in the VMAs that hold memory (/proc/PID/smaps, Rss or Swap above 0 — a large
// PROT_NONE reservation costs nothing), /proc/PID/pagemap says which pages are there;
// each one the table lacks is adopted as the range's policy would have placed it — a
// home frame on its virtual node, DIRTY (its content is in no frame yet), so the
// prepare stages it and the copy reads it like any page written since the last
// snapshot. A page the policy puts in ordinary memory (or a full node) is PLACED_REAL.
import { readSmaps, type SmapsVma } from '../sys/procfs.js';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { ABSENT, PAGE } from './page-table.js';
import { placePage } from './placement.js';
import { placed } from './fault-service.js';
import type { EngineCore } from './engine-core.js';
import type { Mm } from './mm.js';

/** Pagemap entries read per pread (4 KiB of entries). */
const PAGEMAP_RUN = 512;
const pagemapBuf = Buffer.alloc(PAGEMAP_RUN * 8);

/** Told of the smaps read for an mm, so that a later look in the same prepare need not read them again. */
export type SmapsSeen = (mm: Mm, pid: number, vmas: SmapsVma[]) => void;

/**
 * Adopts mm's untracked present pages, a pagemap run (PAGEMAP_RUN pages) a step: the
 * engine serves faults between steps (in one piece, a 256 MiB range took 28 ms of pagemap
 * reads after 8 ms of smaps). Takes Mm.untracked; closed before the end (a freeze ends
 * the prepare), it gives back the ranges it did not reach, for the next prepare. Returns
 * how many pages it adopted.
 */
export function* adoptPresentSteps(e: EngineCore, mm: Mm, seen?: SmapsSeen): Generator<void, number> {
  const untracked = mm.untracked;
  mm.untracked = [];
  const pid = [...mm.pids].find((p) => !mm.exited.has(p));
  if (pid === undefined) return 0;
  let vmas: SmapsVma[];
  let fd: number;
  try {
    vmas = readSmaps(pid);
    seen?.(mm, pid, vmas);
    fd = openPagemap(pid);
  } catch {
    return 0; // gone: its mm closes when the tracer reports it
  }
  // What is left to look at: [start, end) pieces of untracked ranges inside VMAs holding memory.
  const todo: Array<[number, number]> = [];
  for (const { start: vStart, end: vEnd } of vmas.filter((v) => v.holdsMemory)) {
    for (const [uStart, uEnd] of untracked) {
      const lo = Math.max(vStart, uStart);
      const hi = Math.min(vEnd, uEnd);
      if (lo < hi) todo.push([lo, hi]);
    }
  }
  let adopted = 0;
  try {
    while (todo.length > 0) {
      const [lo, hi] = todo[0];
      const upTo = Math.min(hi, lo + PAGEMAP_RUN * PAGE);
      for (const range of mm.ranges.slice(lo, upTo)) adopted += adoptIn(e, mm, fd, range.start, range.end, range);
      if (upTo < hi) todo[0] = [upTo, hi];
      else todo.shift();
      if (todo.length === 0) break;
      yield;
      // Closed meanwhile (its last process ended): nothing to adopt, and no frame to take for it.
      if (e.mms.get(mm.uffd) !== mm) todo.length = 0;
    }
  } finally {
    closeFd(fd);
    for (const [lo, hi] of todo) mm.mayHoldUntracked(lo, hi); // within the bound a plain push would pass
  }
  return adopted;
}

/** Adopts the present, untracked pages of [start, end) (inside `range`). */
function adoptIn(e: EngineCore, mm: Mm, fd: number, start: number, end: number,
  range: { start: number; policy: Parameters<typeof placePage>[0] }): number {
  let adopted = 0;
  for (let at = start; at < end; at += PAGEMAP_RUN * PAGE) {
    const count = Math.min(PAGEMAP_RUN, (end - at) / PAGE);
    const read = readPagemapRun(fd, at, count, pagemapBuf);
    for (let k = 0; k < read; k++) {
      const addr = at + k * PAGE;
      if (!pagemapHasPage(pagemapBuf, k) || mm.table.get(addr) !== ABSENT) continue;
      const target = placePage(range.policy, (addr - range.start) / PAGE, e);
      const frame = target >= 0 ? e.slots[target].store.allocFrame() : -1;
      // No frame left (a full node): the page stays where it is, in ordinary memory.
      placed(e, mm, addr, target >= 0 && frame < 0 ? -1 : target, frame, addr);
      adopted++;
    }
  }
  return adopted;
}

// A forked child's pages, checked against what the kernel gave it (engine.ts forked).
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { EVICTED, PAGE } from './page-table.js';
import type { Mm } from './mm.js';

/** Pagemap entries read per pread when a fork's pages are checked (4 KiB). */
const PAGEMAP_RUN = 512;
/** Scratch for those reads (the engine thread only). */
const pagemapBuf = Buffer.alloc(PAGEMAP_RUN * 8);

/**
 * The child's table was copied from the parent's when its FORK event was read, but a
 * read(2) of a uffd returns pending faults before pending events: pages the parent
 * faulted in after dup_mmap were served (and entered in the parent's table) before the
 * engine learnt of the fork, and the child does not have them. An entry for a page
 * the child lacks would break the copier's rule (remote-copy.ts: a page it reads must
 * be present, or this thread faults on a userfaultfd only it serves — a deadlock), so
 * the child's entries are checked against its /proc/PID/pagemap now. The child has not
 * run yet: the tracer holds it at its first stop until this returns.
 */
export function keepPresentPages(child: Mm, childPid: number, release: (entry: number, node: number) => void): void {
  const pages: number[] = [];
  child.table.forEach((addr) => { pages.push(addr); });
  if (pages.length === 0) return;
  pages.sort((a, b) => a - b);
  let fd: number;
  try {
    fd = openPagemap(childPid);
  } catch {
    return; // the child is gone already: its mm is closed when it is reaped
  }
  try {
    const buf = pagemapBuf;
    for (let i = 0; i < pages.length;) {
      let j = i + 1;
      while (j < pages.length && j - i < PAGEMAP_RUN && pages[j] === pages[j - 1] + PAGE) j++;
      const read = readPagemapRun(fd, pages[i], j - i, buf);
      for (let k = 0; k < j - i; k++) {
        if (k < read && pagemapHasPage(buf, k)) continue;
        const addr = pages[i + k];
        // [eviction] An evicted page is absent on purpose: it comes back from its frame.
        if (child.table.flagsOf(addr) & EVICTED) continue;
        child.table.takeRange(addr, addr + PAGE, (_a, entry, node) => {
          if (entry > 0) child.resident--;
          release(entry, node);
        });
      }
      i = j;
    }
  } finally {
    closeFd(fd);
  }
}

// Which pages a process has, from /proc/PID/pagemap (present or swapped), for the pages
// the page table names. The table is kept right by the uffd events, with one window
// the kernel leaves open (recently-removed.ts): a check against the pagemap is the last
// word where a wrong table would hang the engine — the copier's reads (copy-guard.ts)
// and a missing fault on a page the table holds (fault-service.ts).
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { PAGE } from './page-table.js';
import { MAX_IOV } from './remote-copy.js';
import { drop } from './uffd-events.js';
import type { EngineCore } from './engine-core.js';
import type { Mm } from './mm.js';

export class PagePresence {
  private pid = 0;
  private fd = -1;
  private readonly buf = Buffer.alloc(MAX_IOV * 8);

  /**
   * Keeps in `addrs` (ascending within runs, at most MAX_IOV long: a copier batch) the pages `pid`
   * has now; calls `gone(addr)` for each other one. A process whose pagemap cannot be
   * read keeps every page (not known to be gone).
   */
  keepPresent(pid: number, addrs: number[], gone: (addr: number) => void): void {
    if (addrs.length === 0 || !this.open(pid)) return;
    let kept = 0;
    for (let i = 0; i < addrs.length;) {
      let j = i + 1;
      while (j < addrs.length && addrs[j] === addrs[j - 1] + PAGE) j++;
      let read = readPagemapRun(this.fd, addrs[i], j - i, this.buf);
      if (read < 0 && this.open(pid, true)) read = readPagemapRun(this.fd, addrs[i], j - i, this.buf);
      for (let k = i; k < j; k++) {
        // Not read (an error, a short read): not known to be gone.
        if (k - i >= read || pagemapHasPage(this.buf, k - i)) addrs[kept++] = addrs[k];
        else gone(addrs[k]);
      }
      i = j;
    }
    addrs.length = kept;
  }

  /** Whether `pid` is known to lack the page at `addr` (false when its pagemap cannot be read). */
  lacks(pid: number, addr: number): boolean {
    if (!this.open(pid)) return false;
    let read = readPagemapRun(this.fd, addr, 1, this.buf);
    if (read < 0 && this.open(pid, true)) read = readPagemapRun(this.fd, addr, 1, this.buf);
    return read === 1 && !pagemapHasPage(this.buf, 0);
  }

  private open(pid: number, again = false): boolean {
    if (pid === this.pid && this.fd >= 0 && !again) return true;
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
    this.pid = pid;
    try {
      this.fd = openPagemap(pid);
    } catch {
      return false;
    }
    return true;
  }
}

/** The fault path's pagemap reader (engine thread). */
const faultPresence = new PagePresence();

/**
 * A missing fault on a page the table holds: a duplicate message of a page served, or a
 * page the kernel zapped without the engine hearing of it (placed while a discarded
 * range was about to be zapped: recently-removed.ts). True for the latter, and the page
 * is dropped from the table as the zap dropped it (counted in events.stale).
 */
export function zappedUnseen(e: EngineCore, mm: Mm, addr: number): boolean {
  const pid = mm.pids.values().next().value;
  if (pid === undefined || !faultPresence.lacks(pid, addr)) return false;
  e.events.stale++;
  drop(e, mm, addr, addr + PAGE);
  return true;
}

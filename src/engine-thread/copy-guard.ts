// The copier's guard: a page it reads with process_vm_readv must be present in the
// program. A missing page of a trapped range would fault on a userfaultfd that only the
// engine thread serves, and the engine would wait on itself for ever (remote-copy.ts).
// The table says which pages are present, kept so by the uffd events (REMOVE is read
// before the kernel zaps; UNMAP and REMAP: reused-addresses.ts). The churn stress test
// still found the engine in process_vm_readv, in handle_userfault, about once in twenty
// sessions, for a page the table named and the program did not have — how it got there
// is not known yet. So each batch is checked against /proc/PID/pagemap just before it is
// read: a page not there is dropped from the table and lost to the snapshot (said under
// NUMACTLX_DEBUG, with its address), and the engine never waits on itself.
import fs from 'node:fs';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { PAGE } from './page-table.js';
import { MAX_IOV } from './remote-copy.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';

export class CopyGuard {
  private pid = 0;
  private fd = -1;
  private readonly buf = Buffer.alloc(MAX_IOV * 8);
  /** Pages found in the table and not in the program, this session. */
  strays = 0;

  /**
   * Keeps in `addrs` (ascending within runs) the pages present in `pid` now; calls
   * `gone(addr)` for each other one. A process whose pagemap cannot be read is left to
   * the copy (process_vm_readv then fails with ESRCH: its pages are lost).
   */
  keepPresent(pid: number, addrs: number[], gone: (addr: number) => void): void {
    if (addrs.length === 0) return;
    if (!this.open(pid)) return;
    let kept = 0;
    for (let i = 0; i < addrs.length;) {
      let j = i + 1;
      while (j < addrs.length && addrs[j] === addrs[j - 1] + PAGE) j++;
      let read = readPagemapRun(this.fd, addrs[i], j - i, this.buf);
      if (read < 0 && this.open(pid, true)) read = readPagemapRun(this.fd, addrs[i], j - i, this.buf);
      for (let k = i; k < j; k++) {
        // Not read (an error, a short read): not known to be gone, left to the copy.
        if (k - i >= read || pagemapHasPage(this.buf, k - i)) { addrs[kept++] = addrs[k]; continue; }
        this.strays++;
        if (DEBUG) fs.writeSync(2, `numactlx-engine: copier: page 0x${addrs[k].toString(16)} of pid ${pid} is in the table but not in the program: dropped\n`);
        gone(addrs[k]);
      }
      i = j;
    }
    addrs.length = kept;
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

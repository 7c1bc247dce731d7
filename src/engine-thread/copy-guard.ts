// The copier's guard: a page it reads with process_vm_readv must be present in the
// program. A missing page of a trapped range would fault on a userfaultfd that only the
// engine thread serves, and the engine would wait on itself for ever (remote-copy.ts).
// The table says which pages are present, kept so by the uffd events (REMOVE is read
// before the kernel zaps; UNMAP and REMAP: reused-addresses.ts). One window stays: the
// kernel zaps a discarded range after its REMOVE event has been read, and a page the
// engine placed there in between is taken by the zap (recently-removed.ts keeps
// fault-ahead out of it; a thread's own fault there is still served). So each batch is
// checked against /proc/PID/pagemap just before it is read: a page not there is dropped
// from the table (the program discarded it: the snapshot reports it in lost_pages), said
// under NUMACTLX_DEBUG with its address, and the engine never waits on itself.
import fs from 'node:fs';
import { PagePresence } from './page-presence.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';

export class CopyGuard {
  private readonly presence = new PagePresence();
  /** Pages found in the table and not in the program, this session. */
  strays = 0;

  /**
   * Keeps in `addrs` (ascending within runs) the pages present in `pid` now; calls
   * `gone(addr)` for each other one. A process whose pagemap cannot be read is left to
   * the copy (process_vm_readv then fails with ESRCH: its pages are lost).
   */
  keepPresent(pid: number, addrs: number[], gone: (addr: number) => void): void {
    this.presence.keepPresent(pid, addrs, (addr) => {
      this.strays++;
      if (DEBUG) fs.writeSync(2, `numactlx-engine: copier: page 0x${addr.toString(16)} of pid ${pid} is in the table but not in the program: dropped\n`);
      gone(addr);
    });
  }
}

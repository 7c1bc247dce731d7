// Copying pages out of a program into backing frames with process_vm_readv(2), in
// batches (one call, many iovecs), Numbers on the hot path. The remote pages are
// write-protected while they are copied (DESIGN.md §3.2), so the bytes are the freeze's.
//
// Deadlock rule: a page read here must be present in the program. A missing page in a
// trapped range would raise a userfaultfd fault that only this thread can serve. The
// engine copies only pages its table says are present and pending, and it reads the
// REMOVE event of a page before the page can be zapped (the madvise caller waits for
// that read), so a page never disappears under a batch.
import { IOV_MAX, IOVEC_SIZE, MADV_POPULATE_WRITE, madviseFast, processVmReadvFast } from '../sys/mman.js';

export const MAX_IOV = IOV_MAX;
const TIMED = process.env.NUMACTLX_DEBUG === '1';

export class RemoteCopier {
  private readonly local = Buffer.alloc(MAX_IOV * IOVEC_SIZE);
  private readonly remote = Buffer.alloc(MAX_IOV * IOVEC_SIZE);
  private nLocal = 0;
  private nRemote = 0;
  /** With NUMACTLX_DEBUG: time in MADV_POPULATE_WRITE and in process_vm_readv (the caller resets). */
  populateNs = 0;
  readvNs = 0;

  reset(): void {
    this.nLocal = 0;
    this.nRemote = 0;
  }

  /** Queues `len` bytes from the program's `remoteAddr` into our `localAddr`. */
  add(localAddr: number, remoteAddr: number, len: number): void {
    put(this.local, this.nLocal++, localAddr, len);
    put(this.remote, this.nRemote++, remoteAddr, len);
  }

  /** Runs the queued copy from `pid`; returns bytes copied (short on error) or -errno. */
  run(pid: number): number {
    if (this.nLocal === 0) return 0;
    // performance.now(), not hrtime.bigint(): no allocation per copy (GC pauses are faults' tail).
    const t0 = TIMED ? performance.now() : 0;
    this.populateLocal();
    const t1 = TIMED ? performance.now() : 0;
    const n = processVmReadvFast(pid, this.local, this.nLocal, this.remote, this.nRemote);
    if (TIMED) {
      this.populateNs += (t1 - t0) * 1e6;
      this.readvNs += (performance.now() - t1) * 1e6;
    }
    return n;
  }

  /**
   * Maps the destination frames in one call per contiguous run (MADV_POPULATE_WRITE,
   * Linux 5.14) instead of one page fault per frame inside process_vm_readv.
   */
  private populateLocal(): void {
    let start = -1;
    let end = -1;
    for (let i = 0; i <= this.nLocal; i++) {
      const addr = i < this.nLocal ? this.local.readUInt32LE(i * IOVEC_SIZE) + this.local.readUInt32LE(i * IOVEC_SIZE + 4) * 0x1_0000_0000 : -1;
      if (addr === end) { end += this.local.readUInt32LE(i * IOVEC_SIZE + 8); continue; }
      if (start >= 0) madviseFast(start, end - start, MADV_POPULATE_WRITE);
      if (addr < 0) break;
      start = addr;
      end = addr + this.local.readUInt32LE(i * IOVEC_SIZE + 8);
    }
  }

}

function put(buf: Buffer, i: number, addr: number, len: number): void {
  const off = i * IOVEC_SIZE;
  buf.writeUInt32LE(addr % 0x1_0000_0000, off);
  buf.writeUInt32LE(Math.floor(addr / 0x1_0000_0000), off + 4);
  buf.writeUInt32LE(len, off + 8);
  buf.writeUInt32LE(0, off + 12);
}

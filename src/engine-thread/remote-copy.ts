// Copying pages out of a program into backing frames with process_vm_readv(2), in
// batches (one call, many iovecs), Numbers on the hot path. The remote pages are
// write-protected while they are copied (DESIGN.md §3.2), so the bytes are the freeze's.
//
// Two ways into a frame: a /dev/dax or hugetlbfs frame is written through the mapping
// (process_vm_readv straight into it, after MADV_POPULATE_WRITE); a frame of a file or
// tmpfs backing is read into a staging buffer and written with pwrite(2) — 15× cheaper
// a page here than a store through the mapping of a page not yet cached (store.ts
// frameSink says why).
//
// Deadlock rule: a page read here must be present in the program. A missing page in a
// trapped range would raise a userfaultfd fault that only this thread can serve. The
// engine copies only pages its table says are present and pending, and it reads the
// REMOVE event of a page before the page can be zapped (the madvise caller waits for
// that read), so a page never disappears under a batch.
import fs from 'node:fs';
import { bufferAddress, IOV_MAX, IOVEC_SIZE, MADV_POPULATE_WRITE, madviseFast, processVmReadvFast } from '../sys/mman.js';
import { pwriteFast } from '../sys/fcntl.js';
import type { FrameStore } from './mm.js';

export const MAX_IOV = IOV_MAX;
const TIMED = process.env.NUMACTLX_DEBUG === '1';
const PAGE = 4096;

export class RemoteCopier {
  private readonly local = Buffer.alloc(MAX_IOV * IOVEC_SIZE);
  private readonly remote = Buffer.alloc(MAX_IOV * IOVEC_SIZE);
  private nLocal = 0;
  private nRemote = 0;
  /** Pages bound for a file (pwrite from the staging slot of the same index), fd -1 for the mapping. */
  private readonly sinkFd = new Int32Array(MAX_IOV);
  private readonly sinkOffset = new Float64Array(MAX_IOV);
  private nSink = 0;
  private readonly staging = Buffer.alloc(MAX_IOV * PAGE);
  private readonly stagingAddr = Number(bufferAddress(this.staging));
  /** With NUMACTLX_DEBUG: time in MADV_POPULATE_WRITE (or pwrite) and in process_vm_readv (the caller resets). */
  populateNs = 0;
  readvNs = 0;

  reset(): void {
    this.nLocal = 0;
    this.nRemote = 0;
    this.nSink = 0;
  }

  /** Queues `len` bytes from the program's `remoteAddr` into our `localAddr`. */
  add(localAddr: number, remoteAddr: number, len: number): void {
    this.sinkFd[this.nLocal] = -1;
    put(this.local, this.nLocal++, localAddr, len);
    put(this.remote, this.nRemote++, remoteAddr, len);
  }

  /** Queues one page from the program's `remoteAddr` into `frame` of `store`, by the way the store takes writes. */
  addFrame(store: FrameStore, frame: number, remoteAddr: number): void {
    const sink = store.frameSink();
    if (sink) this.addToFile(sink.fd, sink.frame0 + frame * PAGE, remoteAddr);
    else this.add(store.frameAddr(frame), remoteAddr, PAGE);
  }

  /** Queues one page from the program's `remoteAddr` into file `fd` at `offset` (pwrite after the read). */
  private addToFile(fd: number, offset: number, remoteAddr: number): void {
    const i = this.nLocal;
    this.sinkFd[i] = fd;
    this.sinkOffset[i] = offset;
    this.nSink++;
    put(this.local, this.nLocal++, this.stagingAddr + i * PAGE, PAGE);
    put(this.remote, this.nRemote++, remoteAddr, PAGE);
  }

  /**
   * Runs the queued copy from `pid`; returns bytes copied (short on error: the pages
   * before the first one not read, or not written to its file) or -errno.
   */
  run(pid: number): number {
    if (this.nLocal === 0) return 0;
    // performance.now(), not hrtime.bigint(): no allocation per copy (GC pauses are faults' tail).
    const t0 = TIMED ? performance.now() : 0;
    if (this.nSink < this.nLocal) this.populateLocal();
    const t1 = TIMED ? performance.now() : 0;
    let n = processVmReadvFast(pid, this.local, this.nLocal, this.remote, this.nRemote);
    const t2 = TIMED ? performance.now() : 0;
    if (n > 0 && this.nSink > 0) n = this.writeFiles(n);
    if (TIMED) {
      this.populateNs += (t1 - t0 + performance.now() - t2) * 1e6;
      this.readvNs += (t2 - t1) * 1e6;
    }
    return n;
  }

  /**
   * pwrite of the staged pages among the first `read` bytes, a call per run of pages
   * contiguous in the staging buffer and in one file; returns the bytes landed (short at
   * the first write that failed).
   */
  private writeFiles(read: number): number {
    if (!this.filesLongEnough()) return 0;
    let landed = 0;
    let k = 0;
    while (k < this.nLocal) {
      const len = this.local.readUInt32LE(k * IOVEC_SIZE + 8);
      if (landed + len > read) break; // not read (whole)
      const fd = this.sinkFd[k];
      if (fd < 0) {
        landed += len;
        k++;
        continue;
      }
      // A run: staged pages k, k+1, … read whole, into one file at consecutive offsets.
      let end = k + 1;
      while (end < this.nLocal && this.sinkFd[end] === fd && this.sinkOffset[end] === this.sinkOffset[end - 1] + PAGE &&
        landed + (end - k + 1) * PAGE <= read) end++;
      const bytes = (end - k) * PAGE;
      const w = pwriteFast(fd, this.stagingAddr + k * PAGE, bytes, this.sinkOffset[k]);
      if (w !== bytes) return landed + (w > 0 ? Math.floor(w / PAGE) * PAGE : 0);
      landed += bytes;
      k = end;
    }
    return landed;
  }

  /**
   * Whether every file of the batch still reaches past its frames. A store through the
   * mapping past the end of a file truncated under the session fails (EFAULT: the copy
   * is short, and the copier says the backing was truncated); pwrite(2) would extend the
   * file instead, so the end is looked at first (one fstat a batch, nearly always of one file).
   */
  private filesLongEnough(): boolean {
    let checked = -1;
    for (let k = 0; k < this.nLocal; k++) {
      const fd = this.sinkFd[k];
      if (fd < 0 || fd === checked) continue;
      let end = 0;
      for (let j = k; j < this.nLocal; j++) if (this.sinkFd[j] === fd) end = Math.max(end, this.sinkOffset[j] + PAGE);
      try {
        if (fs.fstatSync(fd).size < end) return false;
      } catch {
        return false;
      }
      checked = fd;
    }
    return true;
  }

  /**
   * Maps the destination frames in one call per contiguous run (MADV_POPULATE_WRITE,
   * Linux 5.14) instead of one page fault per frame inside process_vm_readv.
   */
  private populateLocal(): void {
    let start = -1;
    let end = -1;
    for (let i = 0; i <= this.nLocal; i++) {
      if (i < this.nLocal && this.sinkFd[i] >= 0) continue; // staged: written by pwrite
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

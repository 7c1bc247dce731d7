// Frames copied by the kernel — process_vm_readv(2) on this very process — instead of
// read or written through the mapping by the CPU.
//
// Why: a backing file can be truncated under a session (by anyone who can write it).
// Its frames past the new end of file are then a SIGBUS for the thread that touches them
// through the mapping, and a SIGBUS ends numactlx whichever thread takes it (a worker
// thread cannot survive it). A copy the kernel makes faults in kernel mode instead: the
// fault is fixed up (copy_to_user/GUP) and the call returns short, or -EFAULT. The caller
// reports that as the backing's loss (BackingStore.mediumProblem says which).
//
// Cost, measured side by side (bench/frame-crc.mjs, docs/BENCHMARKS.md §1t): 64 frames per
// call, checksummed, cost no more per frame than checksumming them through the mapping.
//
// /dev/dax is never copied here: a device cannot be truncated, and its pages are read
// through the mapping as before (FrameViews).
import { bufferAddress, IOVEC_SIZE, processVmReadvFast } from '../src/sys/mman.js';
import { FRAME_SIZE } from './format.js';

/** Frames per kernel copy (iovecs per call). */
export const FRAME_BATCH = 64;

function put(iov: Buffer, i: number, addr: number, len: number): void {
  const off = i * IOVEC_SIZE;
  iov.writeUInt32LE(addr % 0x1_0000_0000, off);
  iov.writeUInt32LE(Math.floor(addr / 0x1_0000_0000), off + 4);
  iov.writeUInt32LE(len, off + 8);
  iov.writeUInt32LE(0, off + 12);
}

export class FrameCopy {
  private readonly local = Buffer.alloc(FRAME_BATCH * IOVEC_SIZE);
  private readonly remote = Buffer.alloc(FRAME_BATCH * IOVEC_SIZE);

  /**
   * Reads the frames at `addrs[0, n)` (addresses in this process, n ≤ FRAME_BATCH) into
   * `out`, one after the other. Returns how many were read whole, from the first: fewer
   * than n when the next one could not be read (past the end of a truncated file).
   */
  read(addrs: ArrayLike<number>, n: number, out: Buffer): number {
    if (n > FRAME_BATCH || out.length < n * FRAME_SIZE) throw new RangeError(`FrameCopy.read: ${n} frames into ${out.length} bytes`);
    // SAFETY: out is held by the caller for the call; the kernel keeps no address.
    put(this.local, 0, Number(bufferAddress(out)), n * FRAME_SIZE);
    for (let i = 0; i < n; i++) put(this.remote, i, addrs[i], FRAME_SIZE);
    const got = processVmReadvFast(process.pid, this.local, 1, this.remote, n);
    return got < 0 ? 0 : Math.floor(got / FRAME_SIZE);
  }

  /**
   * Writes `data` at `addr`, mapped memory of this process (a frame, a hugetlbfs file's
   * header); false when it could not all be written.
   */
  write(addr: number, data: Uint8Array): boolean {
    // The mapping is the local (destination) side; the caller's bytes the "remote" source.
    put(this.local, 0, addr, data.byteLength);
    put(this.remote, 0, Number(bufferAddress(data)), data.byteLength);
    return processVmReadvFast(process.pid, this.local, 1, this.remote, 1) === data.byteLength;
  }
}

// The engine's hot-path userfaultfd ioctls (UFFDIO_REGISTER, COPY, WRITEPROTECT, WAKE,
// POISON): Numbers in, a result or -errno out, no BigInt and no exception, since the
// engine calls them once per fault. The typed (bigint, throwing) versions are in
// userfaultfd-calls.ts; the request numbers and modes in userfaultfd-uapi.ts.
//
// Addresses and lengths are exact as Numbers below 2^53, and user-space addresses are
// below 2^47 (x86_64 4-level and 5-level both stay below 2^57 only with an explicit hint
// above 2^47, which no program here is given), so the u64 fields are written as two u32
// halves. One scratch argument per thread (each worker loads its own copy of this
// module); every wrapper fills it, calls, and reads it back synchronously, so it is
// never shared.
import os from 'node:os';
import { lastErrno } from './libc.js';
import { ioctlBufferRaw } from './ioctl.js';
import { UFFDIO, UFFDIO_WRITEPROTECT_MODE } from './userfaultfd-uapi.js';

const { EAGAIN } = os.constants.errno;
const fastArg = new Uint8Array(48);
const fastView = new DataView(fastArg.buffer);

function setU64(off: number, x: number): void {
  fastView.setUint32(off, x % 0x1_0000_0000, true);
  fastView.setUint32(off + 4, Math.floor(x / 0x1_0000_0000), true);
}

function getS64(off: number): number {
  return fastView.getInt32(off + 4, true) * 0x1_0000_0000 + fastView.getUint32(off, true);
}

function fastIoctl(fd: number, request: number): number {
  return ioctlBufferRaw(fd, request, fastArg) === -1 ? -lastErrno() : 0;
}

/** UFFDIO_REGISTER of [start, start+len) in `mode` (UFFDIO_REGISTER_MODE bits as a Number): 0 or -errno. */
export function registerFast(fd: number, start: number, len: number, mode: number): number {
  setU64(0, start); setU64(8, len); setU64(16, mode); setU64(24, 0);
  return fastIoctl(fd, UFFDIO.REGISTER);
}

/**
 * UFFDIO_COPY of `len` bytes at `src` (an address in this process) to `dst`: 0 or
 * -errno. After a failure, copiedFast() tells how many bytes were copied before it
 * stopped (EAGAIN and EEXIST leave a part done).
 */
export function copyFast(fd: number, dst: number, src: number, len: number, mode: number): number {
  setU64(0, dst); setU64(8, src); setU64(16, len); setU64(24, mode); setU64(32, 0);
  return fastIoctl(fd, UFFDIO.COPY);
}

/** Bytes the last failed copyFast() copied (its `copy` field when positive). */
export function copiedFast(): number {
  return Math.max(0, getS64(32));
}

/**
 * Whether the last copyFast(), failed with `errno` (positive), only stopped short: the
 * ioctl answers EAGAIN for any copy that placed part of the range, whatever stopped it
 * (a page mapped already, the mm changing), so a copy that placed pages goes on where it
 * stopped and the next call says why. (Taken for "the mm is changing", exec's first stack
 * fault, whose run reaches argv, waited ≤ 1 ms for every process started.)
 */
export function copyStoppedShort(errno: number): boolean {
  return errno === EAGAIN && copiedFast() > 0;
}

/**
 * UFFDIO_WRITEPROTECT: `protect` sets write protection on [start, start+len) (no wake:
 * nobody waits on a writable page); clearing it wakes the threads waiting there. 0 or
 * -errno; -EAGAIN while an UNMAP/REMOVE/REMAP/FORK event of this uffd is unread or its
 * thread has not run since (mmap_changing), like UFFDIO_COPY.
 */
export function writeprotectFast(fd: number, start: number, len: number, protect: boolean): number {
  setU64(0, start); setU64(8, len); setU64(16, protect ? Number(UFFDIO_WRITEPROTECT_MODE.WP) : 0);
  return fastIoctl(fd, UFFDIO.WRITEPROTECT);
}

/** UFFDIO_WAKE: wakes the threads waiting on faults in the range. Never EAGAIN. */
export function wakeFast(fd: number, start: number, len: number): number {
  setU64(0, start); setU64(8, len);
  return fastIoctl(fd, UFFDIO.WAKE);
}

/** UFFDIO_POISON (6.6): later accesses to the range get SIGBUS; wakes waiters. 0 or -errno (EAGAIN as COPY). */
export function poisonFast(fd: number, start: number, len: number): number {
  setU64(0, start); setU64(8, len); setU64(16, 0); setU64(24, 0);
  return fastIoctl(fd, UFFDIO.POISON);
}

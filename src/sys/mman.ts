// Memory mappings: mmap/munmap/madvise/msync, process_madvise(2), process_vm_readv(2) /
// process_vm_writev(2) and struct iovec, following <asm-generic/mman-common.h>,
// <asm/mman.h> (x86_64), <linux/mman.h> and <sys/uio.h> of Linux 6.1 / glibc 2.36.
//
// Addresses and lengths are bigint. A raw address handed to these calls is memory of the
// named process; nothing here keeps a mapping alive — the caller that mmaps owns it until
// it munmaps.
import { koffi, libc, bindSyscall, check, lastErrno, SysError, toU64 } from './libc.js';
import { SYS } from './arch/index.js';

export { PAGE_SIZE } from './page.js';

export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_STACK = 0x20000;
export const MAP_HUGETLB = 0x40000;
export const MAP_SYNC = 0x80000;
export const MAP_FIXED_NOREPLACE = 0x100000;
/** mmap's error return, (void *)-1. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const MADV_DODUMP = 17;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
export const MADV_DONTNEED_LOCKED = 24;
export const MADV_COLLAPSE = 25;

export const MS_ASYNC = 1;
export const MS_INVALIDATE = 2;
export const MS_SYNC = 4;

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

/** `struct iovec` (16 bytes). */
export const Iovec = koffi.struct({ iov_base: 'void *', iov_len: 'size_t' });
export const IOVEC_SIZE = koffi.sizeof(Iovec);
/** At most this many iovecs per call (UIO_MAXIOV). */
export const IOV_MAX = 1024;

export interface IoRange {
  base: bigint;
  len: bigint;
}

// mmap and memcpy are declared with integer addresses instead of `void *`: the same
// registers in the x86_64 ABI, and the address comes back as a plain number.
const mmapRaw = libc.func('mmap', 'uintptr_t', ['uintptr_t', 'size_t', 'int', 'int', 'int', 'int64_t']);
const munmapRaw = libc.func('munmap', 'int', ['uintptr_t', 'size_t']);
const madviseRaw = libc.func('madvise', 'int', ['uintptr_t', 'size_t', 'int']);
const msyncRaw = libc.func('msync', 'int', ['uintptr_t', 'size_t', 'int']);
const memcpyFrom = libc.func('memcpy', 'void *', ['void *', 'uintptr_t', 'size_t']);
const memcpyTo = libc.func('memcpy', 'uintptr_t', ['uintptr_t', 'void *', 'size_t']);
const processMadviseRaw = bindSyscall(['int', 'void *', 'size_t', 'int', 'unsigned int']);
const processVmRaw = bindSyscall(['int', 'void *', 'unsigned long', 'void *', 'unsigned long', 'unsigned long']);

/** mmap(2); returns the address of the new mapping. */
export function mmap(addr: bigint, length: bigint, prot: number, flags: number, fd: number, offset: bigint): bigint {
  const ret = toU64(mmapRaw(addr, length, prot, flags, fd, offset) as number | bigint);
  if (ret === MAP_FAILED) throw new SysError('mmap', koffi.errno());
  return ret;
}

export function munmap(addr: bigint, length: bigint): void {
  check('munmap', munmapRaw(addr, length) as number);
}

export function madvise(addr: bigint, length: bigint, advice: number): void {
  check('madvise', madviseRaw(addr, length, advice) as number);
}

export function msync(addr: bigint, length: bigint, flags: number): void {
  check('msync', msyncRaw(addr, length, flags) as number);
}

/**
 * The address of a Buffer's bytes. Valid while the caller holds the Buffer (V8 never
 * moves a backing store); pass it only to calls that are done with it on return.
 */
export function bufferAddress(buf: Uint8Array): bigint {
  return toU64(koffi.address(buf));
}

/**
 * An ArrayBuffer over `len` bytes at `addr` of this process, without a copy (koffi.view).
 * The mapping stays the caller's: the view must not be touched after it is unmapped
 * (a crash, not an exception), and it does not keep the mapping alive.
 */
export function addressView(addr: bigint, len: number): ArrayBuffer {
  return koffi.view(addr, len);
}

/**
 * Copies `len` bytes at `addr` of this process into a new Buffer. The range must be
 * mapped and readable: a bad address is a crash, not an errno (use processVmReadv on
 * this pid for a checked read).
 */
export function copyFromAddress(addr: bigint, len: number): Buffer {
  const out = Buffer.alloc(len);
  memcpyFrom(out, addr, len);
  return out;
}

/** Copies `data` to `addr` of this process; the same caveat as copyFromAddress. */
export function copyToAddress(addr: bigint, data: Uint8Array): void {
  memcpyTo(addr, data, data.byteLength);
}

/** An array of `struct iovec` in a Buffer, for process_madvise and process_vm_*. */
export function encodeIovecs(ranges: readonly IoRange[]): Buffer {
  if (ranges.length > IOV_MAX) throw new RangeError(`${ranges.length} iovecs exceed IOV_MAX (${IOV_MAX})`);
  const buf = Buffer.alloc(ranges.length * IOVEC_SIZE);
  ranges.forEach((r, i) => {
    buf.writeBigUInt64LE(r.base, i * IOVEC_SIZE);
    buf.writeBigUInt64LE(r.len, i * IOVEC_SIZE + 8);
  });
  return buf;
}

/**
 * process_madvise(2) on another process's (or our own) ranges through a pidfd; returns
 * the bytes advised (it may stop short: compare with the total).
 */
export function processMadvise(pidfd: number, ranges: readonly IoRange[], advice: number, flags = 0): bigint {
  const iov = encodeIovecs(ranges);
  const ret = processMadviseRaw(SYS.process_madvise, pidfd, iov, ranges.length, advice, flags);
  check('process_madvise', ret);
  return BigInt(ret);
}

function processVm(name: 'process_vm_readv' | 'process_vm_writev', pid: number,
  local: readonly IoRange[], remote: readonly IoRange[]): bigint {
  const liov = encodeIovecs(local);
  const riov = encodeIovecs(remote);
  const ret = processVmRaw(SYS[name], pid, liov, local.length, riov, remote.length, 0);
  check(name, ret);
  return BigInt(ret);
}

/**
 * process_vm_readv(2): copies `remote` ranges of `pid` into `local` ranges of this
 * process (bufferAddress of Buffers, or mapping addresses). Returns the bytes copied,
 * which is short when a remote range ends in an unmapped page.
 */
export function processVmReadv(pid: number, local: readonly IoRange[], remote: readonly IoRange[]): bigint {
  return processVm('process_vm_readv', pid, local, remote);
}

/** process_vm_writev(2): the reverse of processVmReadv. */
export function processVmWritev(pid: number, local: readonly IoRange[], remote: readonly IoRange[]): bigint {
  return processVm('process_vm_writev', pid, local, remote);
}

// ---- fast wrappers (the snapshot copier's hot path) ------------------------------------
// Numbers in, a result or -errno out, no BigInt and no exception, as userfaultfd-fast.ts's
// *Fast functions: addresses are user-space addresses (below 2^47), exact as Numbers.

/** madvise(2) of [addr, addr+len): 0 or -errno. */
export function madviseFast(addr: number, len: number, advice: number): number {
  return (madviseRaw(addr, len, advice) as number) === -1 ? -lastErrno() : 0;
}

/**
 * process_vm_readv(2) over iovec arrays the caller has laid out (`nLocal` and `nRemote`
 * entries of IOVEC_SIZE bytes, at most IOV_MAX each, kept alive for the call): the bytes
 * copied, short when a remote range ends in an unmapped page, or -errno.
 */
export function processVmReadvFast(pid: number, local: Uint8Array, nLocal: number, remote: Uint8Array, nRemote: number): number {
  const n = Number(processVmRaw(SYS.process_vm_readv, pid, local, nLocal, remote, nRemote, 0));
  return n < 0 ? -lastErrno() : n;
}

// userfaultfd(2), /dev/userfaultfd, the UFFDIO_* ioctls and read(2) of a userfaultfd as
// typed calls: u64s cross as bigints, a failure throws SysError (UffdioError for a range
// ioctl, with the bytes done). The layouts and constants they use are in
// userfaultfd-uapi.ts; the engine's per-fault calls are userfaultfd-fast.ts's.
//
// Invariant: every uapi struct is a sequence of u64 fields, so field i sits at byte 8*i;
// one scratch argument per thread (below) is filled, passed and read back synchronously.
import os from 'node:os';
import { koffi, libc, bindSyscall, SysError } from './libc.js';
import { SYS } from './arch/index.js';
import { ioctlBuffer, ioctlValue } from './ioctl.js';
import {
  O_CLOEXEC, O_RDWR, UFFD_API, UFFD_EVENT, UFFD_MSG_OFFSET, UFFD_MSG_SIZE, UFFDIO, UffdioContinue, UffdioCopy,
  UffdioMove, UffdioPoison, UffdioZeropage, USERFAULTFD_IOC_NEW,
} from './userfaultfd-uapi.js';

const userfaultfdRaw = bindSyscall(['int']);
const openRaw = libc.func('int open(const char *path, int flags)');
const closeRaw = libc.func('int close(int fd)');
const readRaw = libc.func('read', 'long', ['int', 'void *', 'size_t']);

/** userfaultfd(2) with UFFD_USER_MODE_ONLY / O_CLOEXEC / O_NONBLOCK; returns the fd. */
export function userfaultfd(flags: number): number {
  const fd = Number(userfaultfdRaw(SYS.userfaultfd, flags));
  if (fd === -1) throw new SysError('userfaultfd', koffi.errno());
  return fd;
}

/**
 * A userfaultfd from /dev/userfaultfd (Linux 6.1): access to the device, not
 * vm.unprivileged_userfaultfd, decides whether kernel-mode faults may be trapped.
 * The device fd is closed before returning; the caller owns the new fd.
 */
export function userfaultfdFromDevice(flags: number, path = '/dev/userfaultfd'): number {
  const dev = openUserfaultfdDevice(path);
  try {
    // The flags travel by value in the ioctl's argument.
    return ioctlValue('USERFAULTFD_IOC_NEW', dev, USERFAULTFD_IOC_NEW, flags);
  } finally {
    closeRaw(dev);
  }
}

/**
 * /dev/userfaultfd opened (close-on-exec) with this process's access to it. The caller owns
 * the fd: USERFAULTFD_IOC_NEW on it makes a userfaultfd for the mm of whoever calls it.
 */
export function openUserfaultfdDevice(path = '/dev/userfaultfd'): number {
  const dev = openRaw(path, O_RDWR | O_CLOEXEC) as number;
  if (dev === -1) throw new SysError(`open(${path})`, koffi.errno());
  return dev;
}

/** A failed range ioctl, with the bytes done before it stopped (EAGAIN leaves a part done). */
export class UffdioError extends SysError {
  readonly done: bigint;
  constructor(syscall: string, errno: number, done: bigint) {
    super(syscall, errno);
    this.name = 'UffdioError';
    this.done = done;
  }
}

// Every uapi struct here is a sequence of u64 fields, so field i sits at byte 8*i (the
// layout test checks this against the C compiler). One scratch argument per thread (each
// worker loads its own copy of this module); every wrapper fills it, calls, and reads it
// back synchronously, so it is never shared.
const arg = Buffer.alloc(64);

function put(offset: number, v: bigint): void {
  arg.writeBigUInt64LE(BigInt.asUintN(64, v), offset);
}
function get(offset: number): bigint {
  return arg.readBigUInt64LE(offset);
}

export interface UffdApi { api: bigint; features: bigint; ioctls: bigint }

/**
 * The UFFDIO_API handshake, once per fd (a second call fails with EINVAL): asks for
 * `features` and returns every feature the kernel offers and the fd-wide ioctls mask.
 * To only probe, hand over 0n on a throw-away fd.
 */
export function uffdioApi(fd: number, features: bigint): UffdApi {
  arg.fill(0, 0, 24);
  put(0, UFFD_API);
  put(8, features);
  ioctlBuffer('UFFDIO_API', fd, UFFDIO.API, arg);
  return { api: get(0), features: get(8), ioctls: get(16) };
}

/** Registers [start, start+len) in `mode`; returns the ioctls mask usable on the range. */
export function register(fd: number, start: bigint, len: bigint, mode: bigint): bigint {
  put(0, start); put(8, len); put(16, mode); put(24, 0n);
  ioctlBuffer('UFFDIO_REGISTER', fd, UFFDIO.REGISTER, arg);
  return get(24);
}

export function unregister(fd: number, start: bigint, len: bigint): void {
  put(0, start); put(8, len);
  ioctlBuffer('UFFDIO_UNREGISTER', fd, UFFDIO.UNREGISTER, arg);
}

/** Wakes threads waiting on faults in the range (after a *_MODE_DONTWAKE operation). */
export function wake(fd: number, start: bigint, len: bigint): void {
  put(0, start); put(8, len);
  ioctlBuffer('UFFDIO_WAKE', fd, UFFDIO.WAKE, arg);
}

/** Runs a range ioctl whose last field reports bytes done (or -errno); returns the bytes. */
function rangeOp(name: string, fd: number, request: number, resultOffset: number): bigint {
  put(resultOffset, 0n);
  try {
    ioctlBuffer(name, fd, request, arg);
  } catch (err) {
    const done = BigInt.asIntN(64, get(resultOffset));
    throw new UffdioError(`ioctl(${name})`, (err as SysError).errno, done > 0n ? done : 0n);
  }
  return BigInt.asIntN(64, get(resultOffset));
}

/**
 * UFFDIO_COPY: fills [dst, dst+len) of the registered range from `src` in this process
 * (any readable address: a Buffer's via bufferAddress, or a backing mapping). With
 * COPY_MODE.WP the pages arrive write-protected. Returns the bytes copied.
 */
export function copy(fd: number, dst: bigint, src: bigint, len: bigint, mode: bigint): bigint {
  put(0, dst); put(8, src); put(16, len); put(24, mode);
  return rangeOp('UFFDIO_COPY', fd, UFFDIO.COPY, koffi.offsetof(UffdioCopy, 'copy'));
}

export function zeropage(fd: number, start: bigint, len: bigint, mode: bigint): bigint {
  put(0, start); put(8, len); put(16, mode);
  return rangeOp('UFFDIO_ZEROPAGE', fd, UFFDIO.ZEROPAGE, koffi.offsetof(UffdioZeropage, 'zeropage'));
}

/** Sets (WRITEPROTECT_MODE.WP) or clears (0n, waking waiters unless DONTWAKE) write protection. */
export function writeprotect(fd: number, start: bigint, len: bigint, mode: bigint): void {
  put(0, start); put(8, len); put(16, mode);
  ioctlBuffer('UFFDIO_WRITEPROTECT', fd, UFFDIO.WRITEPROTECT, arg);
}

/** UFFDIO_CONTINUE (minor faults on shmem/hugetlbfs): maps the page-cache pages. */
export function continueRange(fd: number, start: bigint, len: bigint, mode: bigint): bigint {
  put(0, start); put(8, len); put(16, mode);
  return rangeOp('UFFDIO_CONTINUE', fd, UFFDIO.CONTINUE, koffi.offsetof(UffdioContinue, 'mapped'));
}

/** UFFDIO_POISON (6.6): later accesses to the range get SIGBUS. */
export function poison(fd: number, start: bigint, len: bigint, mode: bigint): bigint {
  put(0, start); put(8, len); put(16, mode);
  return rangeOp('UFFDIO_POISON', fd, UFFDIO.POISON, koffi.offsetof(UffdioPoison, 'updated'));
}

/** UFFDIO_MOVE (6.8; needs FEATURE.MOVE in the handshake): moves anonymous pages src → dst. */
export function move(fd: number, dst: bigint, src: bigint, len: bigint, mode: bigint): bigint {
  put(0, dst); put(8, src); put(16, len); put(24, mode);
  return rangeOp('UFFDIO_MOVE', fd, UFFDIO.MOVE, koffi.offsetof(UffdioMove, 'move'));
}

/**
 * Reads pending messages into `buf` (a multiple of UFFD_MSG_SIZE) and returns how many
 * arrived; 0 when none is pending on a non-blocking fd. Use O_NONBLOCK fds: a blocking
 * read cannot be interrupted from JS. Non-fork events (REMOVE, UNMAP, REMAP) keep the
 * thread that caused them waiting until they are read here.
 */
export function readMsgs(fd: number, buf: Uint8Array): number {
  const n = Number(readRaw(fd, buf, buf.byteLength - (buf.byteLength % UFFD_MSG_SIZE)));
  if (n === -1) {
    const errno = koffi.errno();
    if (errno === os.constants.errno.EAGAIN) return 0;
    throw new SysError('read(userfaultfd)', errno);
  }
  return n / UFFD_MSG_SIZE;
}

export type UffdMsgData =
  | { kind: 'pagefault'; flags: number; address: bigint; ptid: number }
  | { kind: 'fork'; ufd: number }
  | { kind: 'remap'; from: bigint; to: bigint; len: bigint }
  | { kind: 'remove'; start: bigint; end: bigint }
  | { kind: 'unmap'; start: bigint; end: bigint }
  | { kind: 'unknown'; event: number };

/** Decodes message `index` of a buffer filled by readMsgs. */
export function decodeMsg(buf: Uint8Array, index = 0): UffdMsgData {
  const v = new DataView(buf.buffer, buf.byteOffset + index * UFFD_MSG_SIZE, UFFD_MSG_SIZE);
  const O = UFFD_MSG_OFFSET;
  const event = v.getUint8(O.event);
  switch (event) {
    case UFFD_EVENT.PAGEFAULT:
      return { kind: 'pagefault', flags: Number(v.getBigUint64(O.pagefaultFlags, true)),
        address: v.getBigUint64(O.pagefaultAddress, true), ptid: v.getUint32(O.pagefaultPtid, true) };
    case UFFD_EVENT.FORK:
      return { kind: 'fork', ufd: v.getUint32(O.forkUfd, true) };
    case UFFD_EVENT.REMAP:
      return { kind: 'remap', from: v.getBigUint64(O.remapFrom, true),
        to: v.getBigUint64(O.remapTo, true), len: v.getBigUint64(O.remapLen, true) };
    case UFFD_EVENT.REMOVE:
    case UFFD_EVENT.UNMAP:
      return { kind: event === UFFD_EVENT.REMOVE ? 'remove' : 'unmap',
        start: v.getBigUint64(O.removeStart, true), end: v.getBigUint64(O.removeEnd, true) };
    default:
      return { kind: 'unknown', event };
  }
}

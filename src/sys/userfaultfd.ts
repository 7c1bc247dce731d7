// userfaultfd(2), /dev/userfaultfd and the UFFDIO_* ioctls, following <linux/userfaultfd.h>
// of Linux 6.1 (the local uapi headers). Later additions are taken from the header in
// torvalds/linux as of Linux 6.8 and marked with the release that added them:
// UFFD_FEATURE_WP_UNPOPULATED (6.4), UFFD_FEATURE_POISON + UFFDIO_POISON (6.6),
// UFFD_FEATURE_WP_ASYNC (6.7), UFFD_FEATURE_MOVE + UFFDIO_MOVE (6.8), and
// UFFDIO_CONTINUE_MODE_WP (6.4).
//
// Only constants, layouts and thin wrappers live here; the fault-serving logic is the
// engine's. Every u64 of the uapi crosses this API as a bigint.
import os from 'node:os';
import { koffi, libc, bindSyscall, lastErrno, SysError } from './libc.js';
import { SYS } from './arch/index.js';
import { IO, IOR, IOWR, ioctlBuffer, ioctlBufferRaw, ioctlValue } from './ioctl.js';

const u64 = 'uint64_t';
const s64 = 'int64_t';

// ---- struct layouts -------------------------------------------------------------------
export const UffdioRange = koffi.struct({ start: u64, len: u64 });
export const UffdioApi = koffi.struct({ api: u64, features: u64, ioctls: u64 });
export const UffdioRegister = koffi.struct({ range: UffdioRange, mode: u64, ioctls: u64 });
export const UffdioCopy = koffi.struct({ dst: u64, src: u64, len: u64, mode: u64, copy: s64 });
export const UffdioZeropage = koffi.struct({ range: UffdioRange, mode: u64, zeropage: s64 });
export const UffdioWriteprotect = koffi.struct({ range: UffdioRange, mode: u64 });
export const UffdioContinue = koffi.struct({ range: UffdioRange, mode: u64, mapped: s64 });
/** Linux 6.6. */
export const UffdioPoison = koffi.struct({ range: UffdioRange, mode: u64, updated: s64 });
/** Linux 6.8. */
export const UffdioMove = koffi.struct({ dst: u64, src: u64, len: u64, mode: u64, move: s64 });

const Pagefault = koffi.struct({ flags: u64, address: u64, feat: koffi.union({ ptid: 'uint32_t' }) });
const Fork = koffi.struct({ ufd: 'uint32_t' });
const Remap = koffi.struct({ from: u64, to: u64, len: u64 });
const Remove = koffi.struct({ start: u64, end: u64 });
const Reserved = koffi.struct({ reserved1: u64, reserved2: u64, reserved3: u64 });
/** `struct uffd_msg` (packed, 32 bytes): what read(2) on a userfaultfd returns. */
export const UffdMsg = koffi.pack({
  event: 'uint8_t', reserved1: 'uint8_t', reserved2: 'uint16_t', reserved3: 'uint32_t',
  arg: koffi.union({ pagefault: Pagefault, fork: Fork, remap: Remap, remove: Remove, reserved: Reserved }),
});
export const UFFD_MSG_SIZE = koffi.sizeof(UffdMsg);

const ARG = koffi.offsetof(UffdMsg, 'arg');
/** Byte offsets inside a uffd_msg, for hot loops that read a batch with a DataView. */
export const UFFD_MSG_OFFSET = {
  event: koffi.offsetof(UffdMsg, 'event'),
  pagefaultFlags: ARG + koffi.offsetof(Pagefault, 'flags'),
  pagefaultAddress: ARG + koffi.offsetof(Pagefault, 'address'),
  pagefaultPtid: ARG + koffi.offsetof(Pagefault, 'feat'),
  forkUfd: ARG + koffi.offsetof(Fork, 'ufd'),
  remapFrom: ARG + koffi.offsetof(Remap, 'from'),
  remapTo: ARG + koffi.offsetof(Remap, 'to'),
  remapLen: ARG + koffi.offsetof(Remap, 'len'),
  removeStart: ARG + koffi.offsetof(Remove, 'start'),
  removeEnd: ARG + koffi.offsetof(Remove, 'end'),
} as const;

// ---- constants ------------------------------------------------------------------------
export const UFFD_API = 0xaan;
/** Flag of userfaultfd(2) and USERFAULTFD_IOC_NEW: only user-mode faults are trapped. */
export const UFFD_USER_MODE_ONLY = 1;
/** The other flags userfaultfd(2) accepts are O_CLOEXEC and O_NONBLOCK (<asm-generic/fcntl.h>). */
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
export const O_RDWR = 0o2;

/** Feature bits of uffdio_api.features (u64). */
export const UFFD_FEATURE = {
  PAGEFAULT_FLAG_WP: 1n << 0n,
  EVENT_FORK: 1n << 1n,
  EVENT_REMAP: 1n << 2n,
  EVENT_REMOVE: 1n << 3n,
  MISSING_HUGETLBFS: 1n << 4n,
  MISSING_SHMEM: 1n << 5n,
  EVENT_UNMAP: 1n << 6n,
  SIGBUS: 1n << 7n,
  THREAD_ID: 1n << 8n,
  MINOR_HUGETLBFS: 1n << 9n,
  MINOR_SHMEM: 1n << 10n,
  EXACT_ADDRESS: 1n << 11n,
  WP_HUGETLBFS_SHMEM: 1n << 12n,
  WP_UNPOPULATED: 1n << 13n, // 6.4
  POISON: 1n << 14n, // 6.6
  WP_ASYNC: 1n << 15n, // 6.7
  MOVE: 1n << 16n, // 6.8
} as const;
export type UffdFeatureName = keyof typeof UFFD_FEATURE;

/** uffd_msg.event values. */
export const UFFD_EVENT = { PAGEFAULT: 0x12, FORK: 0x13, REMAP: 0x14, REMOVE: 0x15, UNMAP: 0x16 } as const;
/** uffd_msg.arg.pagefault.flags bits. */
export const UFFD_PAGEFAULT_FLAG = { WRITE: 1 << 0, WP: 1 << 1, MINOR: 1 << 2 } as const;

export const UFFDIO_REGISTER_MODE = { MISSING: 1n << 0n, WP: 1n << 1n, MINOR: 1n << 2n } as const;
export const UFFDIO_COPY_MODE = { DONTWAKE: 1n << 0n, WP: 1n << 1n } as const;
export const UFFDIO_ZEROPAGE_MODE = { DONTWAKE: 1n << 0n } as const;
export const UFFDIO_WRITEPROTECT_MODE = { WP: 1n << 0n, DONTWAKE: 1n << 1n } as const;
export const UFFDIO_CONTINUE_MODE = { DONTWAKE: 1n << 0n, WP: 1n << 1n /* 6.4 */ } as const;
export const UFFDIO_POISON_MODE = { DONTWAKE: 1n << 0n } as const;
export const UFFDIO_MOVE_MODE = { DONTWAKE: 1n << 0n, ALLOW_SRC_HOLES: 1n << 1n } as const;

/** ioctl type byte of the UFFDIO_* requests and of /dev/userfaultfd's USERFAULTFD_IOC. */
export const UFFDIO_TYPE = 0xaa;
/** Command numbers (`_UFFDIO_*`): bit positions in the `ioctls` masks the kernel returns. */
export const UFFDIO_NR = {
  REGISTER: 0x00, UNREGISTER: 0x01, WAKE: 0x02, COPY: 0x03, ZEROPAGE: 0x04,
  MOVE: 0x05, WRITEPROTECT: 0x06, CONTINUE: 0x07, POISON: 0x08, API: 0x3f,
} as const;

/** Request numbers, derived the way the header derives them. */
export const UFFDIO = {
  API: IOWR(UFFDIO_TYPE, UFFDIO_NR.API, koffi.sizeof(UffdioApi)),
  REGISTER: IOWR(UFFDIO_TYPE, UFFDIO_NR.REGISTER, koffi.sizeof(UffdioRegister)),
  // _IOR although the kernel reads them: a historical mistake the header documents.
  UNREGISTER: IOR(UFFDIO_TYPE, UFFDIO_NR.UNREGISTER, koffi.sizeof(UffdioRange)),
  WAKE: IOR(UFFDIO_TYPE, UFFDIO_NR.WAKE, koffi.sizeof(UffdioRange)),
  COPY: IOWR(UFFDIO_TYPE, UFFDIO_NR.COPY, koffi.sizeof(UffdioCopy)),
  ZEROPAGE: IOWR(UFFDIO_TYPE, UFFDIO_NR.ZEROPAGE, koffi.sizeof(UffdioZeropage)),
  MOVE: IOWR(UFFDIO_TYPE, UFFDIO_NR.MOVE, koffi.sizeof(UffdioMove)),
  WRITEPROTECT: IOWR(UFFDIO_TYPE, UFFDIO_NR.WRITEPROTECT, koffi.sizeof(UffdioWriteprotect)),
  CONTINUE: IOWR(UFFDIO_TYPE, UFFDIO_NR.CONTINUE, koffi.sizeof(UffdioContinue)),
  POISON: IOWR(UFFDIO_TYPE, UFFDIO_NR.POISON, koffi.sizeof(UffdioPoison)),
} as const;
/** ioctl on an open /dev/userfaultfd: returns a new userfaultfd (Linux 6.1). */
export const USERFAULTFD_IOC_NEW = IO(UFFDIO_TYPE, 0x00);

// ---- wrappers -------------------------------------------------------------------------
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
  const dev = openRaw(path, O_RDWR | O_CLOEXEC) as number;
  if (dev === -1) throw new SysError(`open(${path})`, koffi.errno());
  try {
    // The flags travel by value in the ioctl's argument.
    return ioctlValue('USERFAULTFD_IOC_NEW', dev, USERFAULTFD_IOC_NEW, flags);
  } finally {
    closeRaw(dev);
  }
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
// layout test checks this against the C compiler). One scratch argument per thread (each worker loads its own copy of this module); every
// wrapper fills it, calls, and reads it back synchronously, so it is never shared.
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

/** The names of the UFFD_FEATURE bits set in `features`. */
export function featureNames(features: bigint): UffdFeatureName[] {
  return (Object.keys(UFFD_FEATURE) as UffdFeatureName[]).filter((k) => (features & UFFD_FEATURE[k]) !== 0n);
}

/** Whether an `ioctls` mask (from the handshake or REGISTER) offers command `nr` (UFFDIO_NR). */
export function hasIoctl(ioctls: bigint, nr: number): boolean {
  return (ioctls & (1n << BigInt(nr))) !== 0n;
}

// ---- fast wrappers (the engine's hot path) --------------------------------------------
// Numbers in, a result or -errno out, no BigInt and no exception: the engine calls these
// once per fault. Addresses and lengths are exact as Numbers below 2^53, and user-space
// addresses are below 2^47 (x86_64 4-level and 5-level both stay below 2^57 only with
// an explicit hint above 2^47, which no program here is given), so the u64 fields are
// written as two u32 halves. One scratch argument per thread, as above.
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

// <linux/userfaultfd.h> as data: the struct layouts, the constants and the UFFDIO_*
// request numbers, following the header of Linux 6.1 (the local uapi headers). Later
// additions are taken from the header in torvalds/linux as of Linux 6.8 and marked with
// the release that added them: UFFD_FEATURE_WP_UNPOPULATED (6.4), UFFD_FEATURE_POISON +
// UFFDIO_POISON (6.6), UFFD_FEATURE_WP_ASYNC (6.7), UFFD_FEATURE_MOVE + UFFDIO_MOVE (6.8),
// and UFFDIO_CONTINUE_MODE_WP (6.4).
//
// No calls here: userfaultfd-calls.ts holds the typed wrappers (bigint in and out),
// userfaultfd-fast.ts the engine's hot-path ones. Every u64 of the uapi is a bigint here;
// test/sys/layout.test.ts checks each layout and value against the C compiler.
import { koffi } from './libc.js';
import { IO, IOR, IOWR } from './ioctl.js';

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

/** The names of the UFFD_FEATURE bits set in `features`. */
export function featureNames(features: bigint): UffdFeatureName[] {
  return (Object.keys(UFFD_FEATURE) as UffdFeatureName[]).filter((k) => (features & UFFD_FEATURE[k]) !== 0n);
}

/** Whether an `ioctls` mask (from the handshake or REGISTER) offers command `nr` (UFFDIO_NR). */
export function hasIoctl(ioctls: bigint, nr: number): boolean {
  return (ioctls & (1n << BigInt(nr))) !== 0n;
}

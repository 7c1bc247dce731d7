// /proc/PID/pagemap: its 64-bit entries (Documentation/admin-guide/mm/pagemap.rst) and the
// PAGEMAP_SCAN ioctl with struct pm_scan_arg / struct page_region, which Linux 6.7 added
// to <linux/fs.h> (not in the local 6.1 headers; taken from torvalds/linux
// include/uapi/linux/fs.h, where the 6.7 definitions are unchanged through 6.18).
//
// With UFFD_FEATURE_WP_ASYNC, PAGEMAP_SCAN is the dirty tracker (no soft-dirty here):
// PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC over PAGE_IS_WRITTEN reports the pages
// written since the last scan and write-protects them again, atomically per page.
import { koffi, libc, SysError } from './libc.js';
import { IOWR, ioctlBuffer, ioctlBufferRaw } from './ioctl.js';

const u64 = 'uint64_t';

/** `struct page_region`: [start, end) with the PAGE_IS_* categories it shares. */
export const PageRegion = koffi.struct({ start: u64, end: u64, categories: u64 });
/** `struct pm_scan_arg` (96 bytes). */
export const PmScanArg = koffi.struct({
  size: u64, flags: u64, start: u64, end: u64, walk_end: u64, vec: u64, vec_len: u64,
  max_pages: u64, category_inverted: u64, category_mask: u64, category_anyof_mask: u64,
  return_mask: u64,
});
export const PAGE_REGION_SIZE = koffi.sizeof(PageRegion);
export const PM_SCAN_ARG_SIZE = koffi.sizeof(PmScanArg);

/** `_IOWR('f', 16, struct pm_scan_arg)`. */
export const PAGEMAP_SCAN = IOWR('f'.charCodeAt(0), 16, PM_SCAN_ARG_SIZE);

/** Categories, in the masks of pm_scan_arg and in page_region.categories. */
export const PAGE_IS = {
  WPALLOWED: 1 << 0, WRITTEN: 1 << 1, FILE: 1 << 2, PRESENT: 1 << 3, SWAPPED: 1 << 4,
  PFNZERO: 1 << 5, HUGE: 1 << 6, SOFT_DIRTY: 1 << 7,
} as const;
/** PAGEMAP_SCAN flags. */
export const PM_SCAN_WP_MATCHING = 1 << 0;
export const PM_SCAN_CHECK_WPASYNC = 1 << 1;

/** Bits of a /proc/PID/pagemap entry. */
export const PM_ENTRY = {
  PRESENT: 1n << 63n,
  SWAPPED: 1n << 62n,
  FILE_OR_SHARED_ANON: 1n << 61n,
  UFFD_WP: 1n << 57n, // 5.13: the pte is uffd-wp write-protected
  EXCLUSIVE: 1n << 56n,
  SOFT_DIRTY: 1n << 55n,
  PFN_MASK: (1n << 55n) - 1n, // the PFN (0 without CAP_SYS_ADMIN) when PRESENT
} as const;
const PM_ENTRY_BYTES = 8;

const openRaw = libc.func('int open(const char *path, int flags)');
const preadRaw = libc.func('pread', 'long', ['int', 'void *', 'size_t', 'int64_t']);
const O_RDONLY_CLOEXEC = 0o2000000;

/** Opens /proc/PID/pagemap (or /proc/self/pagemap); the caller closes the fd. */
export function openPagemap(pid: number | 'self'): number {
  const path = `/proc/${pid}/pagemap`;
  const fd = openRaw(path, O_RDONLY_CLOEXEC) as number;
  if (fd === -1) throw new SysError(`open(${path})`, koffi.errno());
  return fd;
}

/** The pagemap entry of the page holding `addr` (page size 4 KiB). */
export function readPagemapEntry(fd: number, addr: bigint, pageSize = 4096n): bigint {
  const buf = Buffer.alloc(PM_ENTRY_BYTES);
  const n = Number(preadRaw(fd, buf, PM_ENTRY_BYTES, (addr / pageSize) * BigInt(PM_ENTRY_BYTES)));
  if (n === -1) throw new SysError('pread(pagemap)', koffi.errno());
  if (n !== PM_ENTRY_BYTES) throw new Error(`pread(pagemap): ${n} of ${PM_ENTRY_BYTES} bytes at ${addr}`);
  return buf.readBigUInt64LE(0);
}

export interface PagemapScanOptions {
  start: bigint;
  end: bigint;
  flags?: number;
  categoryInverted?: number;
  categoryMask?: number;
  categoryAnyofMask?: number;
  returnMask: number;
  /** Stop after this many pages (0n: no limit). */
  maxPages?: bigint;
}

export interface PageRegionData {
  start: bigint;
  end: bigint;
  categories: number;
}

export interface PagemapScanResult {
  regions: PageRegionData[];
  /** Where the walk stopped: `end` when the whole range was scanned, else call again from here. */
  walkEnd: bigint;
}

/**
 * PAGEMAP_SCAN over [start, end) on a pagemap fd. `vec` receives the regions (its
 * length / PAGE_REGION_SIZE is vec_len); the kernel writes it during the call only.
 */
export function pagemapScan(fd: number, opts: PagemapScanOptions,
  vec: Buffer = Buffer.alloc(256 * PAGE_REGION_SIZE)): PagemapScanResult {
  const arg = Buffer.alloc(PM_SCAN_ARG_SIZE);
  const put = (field: string, v: bigint | number): void => {
    arg.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), koffi.offsetof(PmScanArg, field));
  };
  put('size', PM_SCAN_ARG_SIZE);
  put('flags', opts.flags ?? 0);
  put('start', opts.start);
  put('end', opts.end);
  put('vec', koffi.address(vec));
  put('vec_len', Math.floor(vec.byteLength / PAGE_REGION_SIZE));
  put('max_pages', opts.maxPages ?? 0n);
  put('category_inverted', opts.categoryInverted ?? 0);
  put('category_mask', opts.categoryMask ?? 0);
  put('category_anyof_mask', opts.categoryAnyofMask ?? 0);
  put('return_mask', opts.returnMask);
  const count = ioctlBuffer('PAGEMAP_SCAN', fd, PAGEMAP_SCAN, arg);
  const regions: PageRegionData[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * PAGE_REGION_SIZE;
    regions.push({
      start: vec.readBigUInt64LE(o + koffi.offsetof(PageRegion, 'start')),
      end: vec.readBigUInt64LE(o + koffi.offsetof(PageRegion, 'end')),
      categories: Number(vec.readBigUInt64LE(o + koffi.offsetof(PageRegion, 'categories'))),
    });
  }
  return { regions, walkEnd: arg.readBigUInt64LE(koffi.offsetof(PmScanArg, 'walk_end')) };
}

/**
 * Reads the pagemap entries of `count` pages from page address `addr` into `out` (8
 * bytes each; Numbers in, no BigInt): the number of entries read, or -errno.
 */
export function readPagemapRun(fd: number, addr: number, count: number, out: Buffer): number {
  const n = Number(preadRaw(fd, out, count * PM_ENTRY_BYTES, (addr / 4096) * PM_ENTRY_BYTES));
  return n < 0 ? -koffi.errno() : Math.floor(n / PM_ENTRY_BYTES);
}

/** Whether entry i of a buffer filled by readPagemapRun is uffd-wp write-protected (PM_ENTRY.UFFD_WP, Linux 5.13). */
export function pagemapUffdWp(buf: Buffer, i: number): boolean {
  return (buf.readUInt32LE(i * PM_ENTRY_BYTES + 4) & 0x0200_0000) !== 0;
}

/** Whether entry i of a buffer filled by readPagemapRun is a present page not mapped by this process alone (PM_ENTRY.PRESENT without EXCLUSIVE). */
export function pagemapPresentShared(buf: Buffer, i: number): boolean {
  return (buf.readUInt32LE(i * PM_ENTRY_BYTES + 4) & 0x8100_0000) === 0x8000_0000;
}

/** Whether entry i of a buffer filled by readPagemapRun maps a page (present or swapped). */
export function pagemapHasPage(buf: Buffer, i: number): boolean {
  // PM_ENTRY.PRESENT (bit 63) and SWAPPED (bit 62): the high bits of the upper u32.
  return (buf.readUInt32LE(i * PM_ENTRY_BYTES + 4) & 0xc000_0000) !== 0;
}

/**
 * The engine's dirty tracker over PAGEMAP_SCAN (Linux 6.7, with UFFD_FEATURE_WP_ASYNC):
 * read-and-reset of the pages written since the last scan. Categories: PAGE_IS_WRITTEN
 * and any of PRESENT | SWAPPED, returned as WRITTEN; flags PM_SCAN_WP_MATCHING (each
 * page reported is write-protected again, atomically with its report) and, unless told
 * otherwise, PM_SCAN_CHECK_WPASYNC (-EPERM on a VMA without async write protection,
 * instead of skipping it silently).
 *
 * Why the PRESENT | SWAPPED term (measured on 6.18): with PAGE_IS_WRITTEN alone the
 * kernel takes a fast path that counts every pte without the uffd-wp bit as written,
 * empty ones too: a 1 GiB range with 256 pages placed came back as 262,144 written
 * pages, and each empty pte got a uffd-wp marker. Reading a page that is not there would
 * fault on the program's userfaultfd, which only the engine thread serves.
 *
 * On an error the kernel has already reset the pages it reported before it (its buffer
 * is copied out as the walk goes): those regions are read back from the zeroed vector
 * and appended too, so no reset page is ever lost. Numbers, no BigInt: user addresses
 * are below 2^47. One per thread; the buffers are scratch for the call.
 */
export class WrittenPageScanner {
  private readonly arg = Buffer.alloc(PM_SCAN_ARG_SIZE);
  private readonly vec: Buffer;
  private readonly vecLen: number;
  private readonly at: Record<string, number> = {};

  constructor(regions = 4096) {
    this.vecLen = regions;
    this.vec = Buffer.alloc(regions * PAGE_REGION_SIZE);
    for (const f of ['size', 'flags', 'start', 'end', 'walk_end', 'vec', 'vec_len', 'max_pages', 'category_inverted',
      'category_mask', 'category_anyof_mask', 'return_mask']) this.at[f] = koffi.offsetof(PmScanArg, f);
    this.put('size', PM_SCAN_ARG_SIZE);
    this.put('vec', Number(koffi.address(this.vec)));
    this.put('vec_len', regions);
    this.put('category_mask', PAGE_IS.WRITTEN);
    this.put('category_anyof_mask', PAGE_IS.PRESENT | PAGE_IS.SWAPPED);
    this.put('return_mask', PAGE_IS.WRITTEN);
  }

  private put(field: string, v: number): void {
    const o = this.at[field];
    this.arg.writeUInt32LE(v % 0x1_0000_0000, o);
    this.arg.writeUInt32LE(Math.floor(v / 0x1_0000_0000), o + 4);
  }

  private get(buf: Buffer, o: number): number {
    return buf.readUInt32LE(o) + buf.readUInt32LE(o + 4) * 0x1_0000_0000;
  }

  /**
   * Read-and-reset of [start, end) on a /proc/PID/pagemap fd: appends the written pages
   * as [start, end) runs to `runs` (flattened, ascending); 0, or -errno (EPERM: a VMA in
   * the range has no async write protection — only with `checkAsync`). `reset` false:
   * read only (nothing is write-protected again, no TLB flush).
   */
  scan(fd: number, start: number, end: number, runs: number[], checkAsync = true, reset = true): number {
    this.put('flags', (reset ? PM_SCAN_WP_MATCHING : 0) | (checkAsync ? PM_SCAN_CHECK_WPASYNC : 0));
    this.put('end', end);
    let from = start;
    while (from < end) {
      this.put('start', from);
      this.put('walk_end', 0);
      this.vec.fill(0);
      const n = ioctlBufferRaw(fd, PAGEMAP_SCAN, this.arg);
      const errno = n < 0 ? koffi.errno() : 0;
      const count = n >= 0 ? n : this.vecLen;
      for (let i = 0; i < count; i++) {
        const o = i * PAGE_REGION_SIZE;
        const s = this.get(this.vec, o);
        const e = this.get(this.vec, o + 8);
        if (e <= s) break; // past what the kernel wrote (the error case)
        if (runs.length > 0 && runs[runs.length - 1] === s) runs[runs.length - 1] = e;
        else runs.push(s, e);
      }
      if (n < 0) return -errno;
      const walkEnd = this.get(this.arg, this.at.walk_end);
      if (walkEnd <= from) break; // no progress: nothing more to learn
      from = walkEnd;
    }
    return 0;
  }
}

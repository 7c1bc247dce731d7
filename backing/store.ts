// The backing store: a file, a tmpfs/hugetlbfs file or a /dev/dax device opened,
// locked, checked (or formatted), its frame area mapped MAP_SHARED into this process,
// and a frame allocator over it. The layout is drawn in format.ts, the lock in lock.ts.
//
// Never overwriting a foreign file: a non-empty file is written only after one of its
// superblock copies passed every check; an empty file or one this call created is
// formatted; a /dev/dax device is formatted only when its first 8 KiB are zero.
//
// Bytes per medium: regular and tmpfs files are read and written with pread/pwrite;
// hugetlbfs files have no write(2), so their header is written through a mapping (after
// fallocate made its huge page exist: touching a missing huge page with none free is a
// SIGBUS); /dev/dax has neither read nor write, only MAP_SHARED mappings whose offset and
// length are multiples of the device alignment (DESIGN.md §4), so everything goes
// through mappings there.
//
// Durability (what sync() can promise):
// - file: fsync, after msync of the frame mapping: frames and superblock reach the disk.
// - tmpfs, hugetlbfs: the pages are RAM. They outlive numactlx (a crash or kill -9 loses
//   nothing) but not a reboot; fsync has nothing to do.
// - /dev/dax: stores through the mapping go to the CPU caches. Device dax has no msync
//   (it fails with EINVAL, DESIGN.md §4) and the flushes that make a store durable
//   (clwb or clflushopt, then sfence) cannot be issued from JavaScript. numactlx issues
//   none: sync() returns without error and `durability` says 'platform'. The data is
//   durable against power loss only where the platform's persistence domain includes the
//   CPU caches (eADR: /sys/bus/nd/devices/regionN/persistence_domain reads "cpu_cache");
//   on ADR platforms ("memory_controller") lines still in cache at a power failure are
//   lost. A crash or kill -9 of numactlx loses nothing: the caches are written back.
import fs from 'node:fs';
import os from 'node:os';
import type { BackingKind, BackingTarget } from './inspect.js';
import { daxInfo } from './dax.js';
import {
  FormatError, HEADER_SIZE, SLOT_OFFSETS, SLOT_SIZE, FRAME_SIZE, encodeSuperblock, newSuperblock, pickSuperblock,
  slotOf, type Superblock,
} from './format.js';
import { clearOwner, readOwner, tryLock, unlock, writeOwner, type HeaderAccess } from './lock.js';
import { koffi, SysError } from '../src/sys/libc.js';
import {
  close, fallocate, fallocateErrno, fsync, ftruncate, open, pread, pwrite, O_CLOEXEC, O_CREAT, O_EXCL, O_NOFOLLOW,
  O_RDWR,
} from '../src/sys/fcntl.js';
import {
  copyFromAddress, copyToAddress, mmap, msync, munmap, MAP_NORESERVE, MAP_SHARED, MS_SYNC, PROT_READ, PROT_WRITE,
} from '../src/sys/mman.js';

export type BackingErrorReason = 'foreign' | 'corrupt' | 'version' | 'too-small' | 'in-use' | 'symlink' |
  'unsupported' | 'no-space' | 'io';

/** A backing that cannot be opened or used; the message is the user's line. */
export class BackingError extends Error {
  readonly path: string;
  readonly reason: BackingErrorReason;
  /** The errno name when a system call failed ("ENOSPC"). */
  readonly code?: string;

  constructor(path: string, reason: BackingErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackingError';
    this.path = path;
    this.reason = reason;
    if (options?.cause instanceof SysError) this.code = options.cause.code;
  }
}

/** How far sync() carries the data; see the header comment. */
export type Durability = 'fsync' | 'ram' | 'platform';

/** Frames the allocator can index: they are Numbers in a Uint32Array (16 TiB of 4 KiB). */
const MAX_FRAMES = 0xffff_ffff;
/** Bytes reserved with fallocate per step ahead of the frames handed out. */
const RESERVE_CHUNK = 2 << 20;
/** After ENOSPC, allocFrame reports the node full for this long before trying again. */
const NO_SPACE_RETRY_MS = 1000;
const ENOSPC = os.constants.errno.ENOSPC;

function fail(path: string, err: unknown, doing: string): Error {
  if (err instanceof BackingError) return err;
  if (err instanceof SysError) {
    return new BackingError(path, err.code === 'ENOSPC' ? 'no-space' : 'io', `backing ${path}: ${err.code} while ${doing}`,
      { cause: err });
  }
  if (err instanceof FormatError) return formatFailure(path, err);
  return err instanceof Error ? err : new Error(String(err));
}

function formatFailure(path: string, err: FormatError): BackingError {
  switch (err.reason) {
    case 'bad-magic': return new BackingError(path, 'foreign', `${path} is not a numactlx backing (bad magic)`, { cause: err });
    case 'bad-version': return new BackingError(path, 'version', `${path}: ${err.message}`, { cause: err });
    case 'too-small': return new BackingError(path, 'too-small', `${path}: ${err.message}`, { cause: err });
    case 'bad-page-size': return new BackingError(path, 'unsupported', `${path}: ${err.message}`, { cause: err });
    default: return new BackingError(path, 'corrupt', `${path}: ${err.message}`, { cause: err });
  }
}

function roundUp(n: bigint, align: bigint): bigint {
  return ((n + align - 1n) / align) * align;
}

/** The header's bytes on one medium (see the header comment for why they differ). */
class Header implements HeaderAccess {
  private addr = 0n;
  private mapped = 0n;

  constructor(private readonly fd: number, private readonly kind: BackingKind, private readonly mapLength: bigint) {}

  read(offset: bigint, length: number): Buffer {
    if (this.kind === 'dax') return copyFromAddress(this.map() + offset, length);
    const buf = Buffer.alloc(length); // a short read at end of file leaves zeros
    pread(this.fd, buf, offset);
    return buf;
  }

  write(offset: bigint, data: Buffer): void {
    if (this.kind === 'file' || this.kind === 'tmpfs') pwrite(this.fd, data, offset);
    else copyToAddress(this.map() + offset, data);
  }

  /** Makes header writes durable as far as the medium allows (files only). */
  flush(): void {
    if (this.kind === 'file') fsync(this.fd);
  }

  close(): void {
    if (this.mapped !== 0n) munmap(this.addr, this.mapped);
    this.mapped = 0n;
  }

  // SAFETY: the mapping is this object's, [0, mapLength) of the fd, which the medium
  // has (a hugetlbfs or dax backing is at least dataOffset ≥ mapLength long); it lives
  // until close().
  private map(): bigint {
    if (this.mapped === 0n) {
      const flags = MAP_SHARED | (this.kind === 'hugetlbfs' ? MAP_NORESERVE : 0);
      this.addr = mmap(0n, this.mapLength, PROT_READ | PROT_WRITE, flags, this.fd, 0n);
      this.mapped = this.mapLength;
    }
    return this.addr;
  }
}

interface Opened {
  fd: number;
  created: boolean;
}

function isSymlink(path: string): boolean {
  try {
    return fs.lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function symlinkError(path: string, cause: unknown): BackingError {
  return new BackingError(path, 'symlink',
    `${path} is a symbolic link; numactlx does not follow links to a backing file`, { cause });
}

/** Opens (or creates) the path without following a symbolic link. */
function openFile(target: BackingTarget): Opened {
  const { path } = target;
  const flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC;
  try {
    if (!target.exists) return { fd: open(path, flags | O_CREAT | O_EXCL, 0o600), created: true };
    return { fd: open(path, flags), created: false };
  } catch (err) {
    const code = err instanceof SysError ? err.code : '';
    if ((code === 'ELOOP' || code === 'EEXIST') && isSymlink(path)) throw symlinkError(path, err);
    throw fail(path, err, target.exists ? 'opening it' : 'creating it');
  }
}

/** Removes a file this call created, if the path still names it. */
function removeCreated(path: string, fd: number): void {
  try {
    const ours = fs.fstatSync(fd);
    const now = fs.lstatSync(path);
    if (now.ino === ours.ino && now.dev === ours.dev) fs.unlinkSync(path);
  } catch {
    // already gone
  }
}

function lockOrExplain(path: string, fd: number, header: Header): void {
  if (tryLock(fd)) return;
  let pid: number | undefined;
  try {
    pid = readOwner(header);
  } catch {
    pid = undefined;
  }
  throw new BackingError(path, 'in-use', pid === undefined
    ? `${path} is in use: another process holds its lock (flock)`
    : `${path} is in use by another numactlx (pid ${pid})`);
}

function checkFrameCount(path: string, sb: Superblock): void {
  if (sb.frameCount > BigInt(MAX_FRAMES)) {
    throw new BackingError(path, 'unsupported',
      `${path}: ${sb.frameCount} frames are more than numactlx can index (${MAX_FRAMES}, 16 TiB)`);
  }
}

/** Writes a new backing's two superblock copies (the file is already sized). */
function writeFormat(header: Header, sb: Superblock): void {
  header.write(SLOT_OFFSETS[0], encodeSuperblock({ ...sb, generation: 0n }));
  header.write(SLOT_OFFSETS[1], encodeSuperblock({ ...sb, generation: 1n }));
  header.flush();
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

export class BackingStore {
  readonly path: string;
  readonly kind: BackingKind;
  readonly durability: Durability;
  /** Address of frame 0 in this process; valid until close(). */
  readonly frameBase: bigint;
  readonly frameCount: number;
  private sb: Superblock;
  private fd: number;
  private readonly header: Header;
  private readonly mapLength: bigint;
  private closed = false;

  // The allocator, all Numbers (frame indexes < 2^32, checked at open). Frames
  // [0, next) were handed out at least once and are either in use (bit set in `inUse`)
  // or on the free stack; frames [0, reserved) have space reserved on the medium.
  private next = 0;
  private reserved: number;
  private freeStack = new Uint32Array(0);
  private freeTop = 0;
  private readonly inUse: Uint32Array;
  private used = 0;
  private readonly reserveFrames: number;
  private noSpaceAt = -Infinity;
  private noSpaceError: SysError | undefined;

  private constructor(target: BackingTarget, fd: number, header: Header, sb: Superblock, frameBase: bigint) {
    this.path = target.path;
    this.kind = target.kind;
    this.durability = target.kind === 'file' ? 'fsync' : target.kind === 'dax' ? 'platform' : 'ram';
    this.fd = fd;
    this.header = header;
    this.sb = sb;
    this.frameBase = frameBase;
    this.frameCount = Number(sb.frameCount);
    this.mapLength = sb.frameCount * BigInt(FRAME_SIZE);
    this.inUse = new Uint32Array(Math.ceil(this.frameCount / 32));
    // A dax device has no holes: every frame is backed already.
    this.reserved = target.kind === 'dax' ? this.frameCount : 0;
    const chunk = target.kind === 'hugetlbfs' && target.align > BigInt(RESERVE_CHUNK) ? Number(target.align) : RESERVE_CHUNK;
    this.reserveFrames = chunk / FRAME_SIZE;
  }

  /**
   * Opens the backing `target` names (inspectBacking's result): creates and formats a
   * missing file, formats an empty file or a zeroed dax device, checks an existing one,
   * grows it to target.size when its recorded size is smaller, takes the lock and maps
   * the frames. Throws BackingError.
   */
  static open(target: BackingTarget): BackingStore {
    const { path } = target;
    const page = BigInt(FRAME_SIZE);
    const mapLength = target.kind === 'file' || target.kind === 'tmpfs' ? HEADER_SIZE : roundUp(HEADER_SIZE, target.align);
    let fresh: Superblock | undefined;
    if (!target.exists) {
      try {
        fresh = newSuperblock(target.size, target.align);
      } catch (err) {
        throw fail(path, err, 'creating it');
      }
      checkFrameCount(path, fresh);
    }

    let opened: Opened;
    if (target.kind === 'dax') {
      // A device node is never created here, so there is no O_CREAT to guard; /dev/dax
      // names may be udev links, which are followed.
      try {
        opened = { fd: open(path, O_RDWR | O_CLOEXEC), created: false };
      } catch (err) {
        throw fail(path, err, 'opening it');
      }
    } else {
      opened = openFile(target);
    }
    const { fd, created } = opened;
    const header = new Header(fd, target.kind, mapLength);
    let doing = created ? 'creating it' : 'opening it';
    let formattedEmpty = false;
    let formattedDevice = false;
    try {
      lockOrExplain(path, fd, header);
      const stat = fs.fstatSync(fd);
      if (target.kind === 'dax' ? !stat.isCharacterDevice() : !stat.isFile()) {
        throw new BackingError(path, 'unsupported', `${path} changed type while it was being opened`);
      }
      const mediumSize = target.kind === 'dax' ? daxInfo(path, stat)?.size ?? target.size : BigInt(stat.size);

      let sb: Superblock;
      if (created || (target.kind !== 'dax' && mediumSize === 0n)) {
        if (!created) doing = 'formatting it';
        formattedEmpty = !created;
        sb = fresh ?? newSuperblock(target.size, target.align);
        checkFrameCount(path, sb);
        ftruncate(fd, sb.size);
        fallocate(fd, 0, 0n, HEADER_SIZE);
        writeFormat(header, sb);
        sb = { ...sb, generation: 1n };
      } else {
        doing = 'reading its superblock';
        ({ sb, formatted: formattedDevice } = BackingStore.adopt(target, header, mediumSize));
      }
      checkFrameCount(path, sb);
      if (sb.dataOffset % target.align !== 0n || (target.kind === 'dax' && sb.size % target.align !== 0n)) {
        throw new BackingError(path, 'unsupported',
          `${path}: its layout (data offset ${sb.dataOffset}, size ${sb.size}) does not fit this medium's ` +
          `alignment of ${target.align} bytes`);
      }
      if (sb.size < target.size) {
        doing = 'growing it';
        sb = BackingStore.grow(target, fd, header, sb, mediumSize);
      }

      doing = 'recording its owner';
      writeOwner(header);
      doing = 'mapping it';
      // SAFETY: the frame mapping belongs to the store and lives until close(); the
      // medium holds [dataOffset, size) (checked above). MAP_NORESERVE on hugetlbfs: huge
      // pages are reserved chunk by chunk by fallocate, not all at mmap.
      const flags = MAP_SHARED | (target.kind === 'hugetlbfs' ? MAP_NORESERVE : 0);
      const base = mmap(0n, sb.frameCount * page, PROT_READ | PROT_WRITE, flags, fd, sb.dataOffset);
      return new BackingStore(target, fd, header, sb, base);
    } catch (err) {
      // Undo what this call did, each step on its own: remove the file it created (an
      // ENOSPC must not leave a half-made file), empty again the file it formatted, zero
      // again the superblocks it wrote on a zeroed device.
      const undo = [
        (): void => (formattedDevice ? header.write(0n, Buffer.alloc(2 * SLOT_SIZE)) : undefined),
        (): void => header.close(),
        (): void => (created ? removeCreated(path, fd) : formattedEmpty ? ftruncate(fd, 0n) : undefined),
        (): void => close(fd),
      ];
      for (const step of undo) {
        try {
          step();
        } catch {
          // the original error is the one to report
        }
      }
      throw fail(path, err, doing);
    }
  }

  /** Picks the superblock of an existing backing, or formats a zeroed dax device. */
  private static adopt(target: BackingTarget, header: Header, mediumSize: bigint): { sb: Superblock; formatted: boolean } {
    const { path } = target;
    const slots = header.read(0n, 2 * SLOT_SIZE);
    let sb: Superblock;
    try {
      sb = pickSuperblock(slots.subarray(0, SLOT_SIZE), slots.subarray(SLOT_SIZE)).superblock;
    } catch (err) {
      if (!(err instanceof FormatError) || target.kind !== 'dax') throw err;
      if (!isZero(slots)) {
        const what = err.reason === 'bad-magic' ? 'is not a numactlx backing (bad magic)' : `has a damaged superblock (${err.message})`;
        throw new BackingError(path, err.reason === 'bad-magic' ? 'foreign' : 'corrupt',
          `${path} ${what}; numactlx formats a /dev/dax device only when its first 8 KiB are zero`, { cause: err });
      }
      sb = newSuperblock(target.size, target.align);
      writeFormat(header, sb);
      return { sb: { ...sb, generation: 1n }, formatted: true };
    }
    if (sb.size > mediumSize) {
      throw new BackingError(path, 'too-small',
        `${path}: too small: its superblock records ${sb.size} bytes, the ${target.kind === 'dax' ? 'device' : 'file'} has ${mediumSize}`);
    }
    return { sb, formatted: false };
  }

  /** Grows a backing to target.size: the medium first, then a new superblock. */
  private static grow(target: BackingTarget, fd: number, header: Header, sb: Superblock, mediumSize: bigint): Superblock {
    if (target.kind !== 'dax' && mediumSize < target.size) {
      ftruncate(fd, target.size);
      header.flush(); // the new size is durable before a superblock relies on it
    }
    const grown = { ...sb, size: target.size, frameCount: (target.size - sb.dataOffset) / BigInt(FRAME_SIZE) };
    checkFrameCount(target.path, grown);
    return BackingStore.writeNext(header, sb, grown);
  }

  /** Writes `next` as generation sb.generation + 1 into the slot that selects. */
  private static writeNext(header: Header, sb: Superblock, next: Superblock): Superblock {
    const written = { ...next, generation: sb.generation + 1n };
    header.write(SLOT_OFFSETS[slotOf(written.generation)], encodeSuperblock(written));
    header.flush();
    return written;
  }

  /** The superblock in force (a copy). */
  get superblock(): Superblock {
    return { ...this.sb };
  }

  /** Bytes of the medium the backing uses (its recorded size). */
  get size(): bigint {
    return this.sb.size;
  }

  get framesInUse(): number {
    return this.used;
  }

  /**
   * Records a new catalog location with a new superblock generation: the commit point
   * of a snapshot. Make the catalog and its frames durable (sync()) first.
   */
  commitCatalog(catalog: bigint): void {
    this.ensureOpen();
    try {
      this.sb = BackingStore.writeNext(this.header, this.sb, { ...this.sb, catalog });
    } catch (err) {
      throw fail(this.path, err, 'writing its superblock');
    }
  }

  /** The address of frame `f` in this process. */
  frameAddress(f: number): bigint {
    this.checkFrame(f);
    return this.frameBase + BigInt(f * FRAME_SIZE); // f < 2^32: f × 4096 < 2^44 is exact
  }

  /**
   * The 4 KiB of frame `f` as a Buffer over the mapping (koffi.view: no copy). The
   * Buffer must not be used after close(): its memory is unmapped then, and touching it
   * is a crash, not an exception.
   */
  frameView(f: number): Buffer {
    const addr = this.frameAddress(f);
    return Buffer.from(koffi.view(addr, FRAME_SIZE));
  }

  /** A free frame, or -1 when the node is full (no free frame, or no space on the medium). */
  allocFrame(): number {
    let f: number;
    if (this.freeTop > 0) {
      f = this.freeStack[--this.freeTop];
    } else if (this.next < this.frameCount) {
      if (this.next >= this.reserved && !this.reserve()) return -1;
      f = this.next++;
    } else {
      return -1;
    }
    this.inUse[f >>> 5] |= 1 << (f & 31);
    this.used++;
    return f;
  }

  freeFrame(f: number): void {
    const word = f >>> 5;
    const bit = 1 << (f & 31);
    if (!Number.isInteger(f) || f < 0 || f >= this.next || (this.inUse[word] & bit) === 0) {
      throw new RangeError(`freeFrame(${f}): frame ${f} is not allocated`);
    }
    this.inUse[word] &= ~bit;
    this.used--;
    if (this.freeTop === this.freeStack.length) {
      const grown = new Uint32Array(Math.min(this.frameCount, Math.max(1024, this.freeStack.length * 2)));
      grown.set(this.freeStack);
      this.freeStack = grown;
    }
    this.freeStack[this.freeTop++] = f;
  }

  /** The ENOSPC that made the node full, while allocFrame keeps reporting it. */
  get noSpace(): SysError | undefined {
    return this.noSpaceError;
  }

  /** Forgets a remembered ENOSPC: the next allocFrame tries to reserve space again at once. */
  retrySpace(): void {
    this.noSpaceAt = -Infinity;
  }

  /**
   * Reserves the next chunk of frames with fallocate(mode 0), so that a write through the
   * mapping never meets a full filesystem (which is a SIGBUS, not an errno). On ENOSPC
   * it tries a single frame (not on hugetlbfs, whose unit is the huge page), then
   * reports the node full and waits NO_SPACE_RETRY_MS before trying again.
   */
  private reserve(): boolean {
    if (performance.now() - this.noSpaceAt < NO_SPACE_RETRY_MS) return false;
    const start = this.reserved;
    const offset = Number(this.sb.dataOffset) + start * FRAME_SIZE; // < 2^53: exact
    const count = Math.min(this.reserveFrames, this.frameCount - start);
    let errno = fallocateErrno(this.fd, 0, offset, count * FRAME_SIZE);
    let got = count;
    if (errno === ENOSPC && count > 1 && this.kind !== 'hugetlbfs') {
      errno = fallocateErrno(this.fd, 0, offset, FRAME_SIZE);
      got = 1;
    }
    if (errno === 0) {
      this.reserved = start + got;
      this.noSpaceError = undefined;
      return true;
    }
    const error = new SysError('fallocate', errno);
    if (errno === ENOSPC) {
      this.noSpaceAt = performance.now();
      this.noSpaceError = error;
      return false;
    }
    throw fail(this.path, error, 'reserving space for frames');
  }

  /** Makes frame writes and the superblock durable as far as the medium allows. */
  sync(): void {
    this.ensureOpen();
    if (this.kind === 'dax') return; // no msync on device dax: see the header comment
    try {
      msync(this.frameBase, this.mapLength, MS_SYNC);
      if (this.kind === 'file') fsync(this.fd);
    } catch (err) {
      throw fail(this.path, err, 'syncing it');
    }
  }

  /** Unmaps the frames, clears the owner record, releases the lock and closes. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const fd = this.fd;
    this.fd = -1;
    // Every step runs even when one fails; closing the fd releases the lock anyway.
    const steps = [
      (): void => munmap(this.frameBase, this.mapLength),
      (): void => clearOwner(this.header),
      (): void => this.header.close(),
      (): void => unlock(fd),
      (): void => close(fd),
    ];
    let first: unknown;
    for (const step of steps) {
      try {
        step();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw fail(this.path, first, 'closing it');
  }

  private checkFrame(f: number): void {
    this.ensureOpen();
    if (!Number.isInteger(f) || f < 0 || f >= this.frameCount) {
      throw new RangeError(`frame ${f} is outside the backing (0 … ${this.frameCount - 1})`);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new BackingError(this.path, 'io', `backing ${this.path} is closed`);
  }
}

// The backing store: a file, a tmpfs/hugetlbfs file or a /dev/dax device opened,
// locked, checked (or formatted), its frame area mapped MAP_SHARED into this process,
// and a frame allocator over it. The layout is drawn in format.ts, the lock in lock.ts;
// opening the medium and its header bytes are in medium.ts, reading and writing the
// superblock in superblock.ts, the allocator in frames.ts, the errors in errors.ts.
//
// Never overwriting a foreign file: a non-empty file is written only after one of its
// superblock copies passed every check; an empty file or one this call created is
// formatted; a /dev/dax device is formatted only when its first 8 KiB are zero.
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
import type { BackingKind, BackingTarget } from './inspect.js';
import { daxInfo } from './dax.js';
import { BackingError, fail } from './errors.js';
import { SLOT_OFFSETS, SLOT_SIZE, FRAME_SIZE, decodeSuperblock, newSuperblock, slotOf, type Superblock } from './format.js';
import { checkFrameCount, FrameAllocator } from './frames.js';
import { clearOwner, readOwner, tryLock, unlock, writeOwner } from './lock.js';
import { checkPrivate, Header, headerMapLength, openMedium, removeCreated } from './medium.js';
import { adopt, formatFile, grow, writeNext } from './superblock.js';
import type { SysError } from '../src/sys/libc.js';
import { FrameViews } from './frame-views.js';
import { FrameCopy } from './frame-copy.js';
import { close, fsync, ftruncate } from '../src/sys/fcntl.js';
import { mmap, msync, munmap, MAP_NORESERVE, MAP_SHARED, MS_SYNC, PROT_READ, PROT_WRITE } from '../src/sys/mman.js';

export { BackingError, type BackingErrorReason } from './errors.js';

/** How far sync() carries the data; see the header comment. */
export type Durability = 'fsync' | 'ram' | 'platform';

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

/** A store's mapping and descriptor, as plain numbers (they cross to the checksum worker). */
export interface SyncTarget {
  path: string;
  kind: BackingKind;
  frameBase: number;
  mapLength: number;
  fd: number;
}

/**
 * Makes the frames durable as far as the medium allows (header comment, "Durability"):
 * msync, then fsync for a file; nothing on device dax. Throws BackingError.
 */
export function syncFrames(t: SyncTarget): void {
  if (t.kind === 'dax') return; // no msync on device dax: see the header comment
  try {
    msync(BigInt(t.frameBase), BigInt(t.mapLength), MS_SYNC);
    if (t.kind === 'file') fsync(t.fd);
  } catch (err) {
    throw fail(t.path, err, 'syncing it');
  }
}

export class BackingStore {
  readonly path: string;
  readonly kind: BackingKind;
  readonly durability: Durability;
  /** Address of frame 0 in this process; valid until close(). */
  readonly frameBase: bigint;
  private readonly frameBaseNumber: number;
  private readonly views: FrameViews;
  private readonly copy = new FrameCopy();
  readonly frameCount: number;
  /** A damaged superblock copy found at open (superblock-copies.ts), for the caller to report. */
  superblockDamage: string | undefined;
  private sb: Superblock;
  private fd: number;
  private readonly header: Header;
  private readonly mapLength: bigint;
  private readonly frames: FrameAllocator;
  private closed = false;

  private constructor(target: BackingTarget, fd: number, header: Header, sb: Superblock, frameBase: bigint) {
    this.path = target.path;
    this.kind = target.kind;
    this.durability = target.kind === 'file' ? 'fsync' : target.kind === 'dax' ? 'platform' : 'ram';
    this.fd = fd;
    this.header = header;
    this.sb = sb;
    this.frameBase = frameBase;
    this.frameBaseNumber = Number(frameBase);
    this.frameCount = Number(sb.frameCount);
    this.views = new FrameViews(this.frameBaseNumber, this.frameCount);
    this.mapLength = sb.frameCount * BigInt(FRAME_SIZE);
    this.frames = new FrameAllocator(target, fd, sb.dataOffset, this.frameCount);
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
    const mapLength = headerMapLength(target);
    let fresh: Superblock | undefined;
    if (!target.exists) {
      try {
        fresh = newSuperblock(target.size, target.align);
      } catch (err) {
        throw fail(path, err, 'creating it');
      }
      checkFrameCount(path, fresh);
    }

    const { fd, created } = openMedium(target);
    const header = new Header(fd, target.kind, mapLength);
    let doing = created ? 'creating it' : 'opening it';
    let formattedEmpty = false;
    let damage: string | undefined;
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
        if (!created) {
          checkPrivate(path, stat); // before a byte is written into it
          doing = 'formatting it';
        }
        formattedEmpty = !created;
        sb = fresh ?? newSuperblock(target.size, target.align);
        checkFrameCount(path, sb);
        sb = formatFile(fd, header, sb);
      } else {
        doing = 'reading its superblock';
        ({ sb, formatted: formattedDevice, damage } = adopt(target, header, mediumSize));
        // Read-only so far (a file is never formatted by adopt): a file that is not a
        // backing is named as such first; a backing others could read is refused here.
        if (target.kind !== 'dax') checkPrivate(path, stat);
      }
      checkFrameCount(path, sb);
      if (sb.dataOffset % target.align !== 0n || (target.kind === 'dax' && sb.size % target.align !== 0n)) {
        throw new BackingError(path, 'unsupported',
          `${path}: its layout (data offset ${sb.dataOffset}, size ${sb.size}) does not fit this medium's ` +
          `alignment of ${target.align} bytes`);
      }
      if (sb.size < target.size) {
        doing = 'growing it';
        sb = grow(target, fd, header, sb, mediumSize);
      }

      doing = 'recording its owner';
      writeOwner(header);
      doing = 'mapping it';
      // SAFETY: the frame mapping belongs to the store and lives until close(); the
      // medium holds [dataOffset, size) (checked above). MAP_NORESERVE on hugetlbfs: huge
      // pages are reserved chunk by chunk by fallocate, not all at mmap.
      const flags = MAP_SHARED | (target.kind === 'hugetlbfs' ? MAP_NORESERVE : 0);
      const base = mmap(0n, sb.frameCount * page, PROT_READ | PROT_WRITE, flags, fd, sb.dataOffset);
      const store = new BackingStore(target, fd, header, sb, base);
      store.superblockDamage = damage;
      return store;
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

  /** The superblock in force (a copy). */
  get superblock(): Superblock {
    return { ...this.sb };
  }

  /**
   * The other superblock copy, when it passes its checks and describes the same frames:
   * the commit before the one in force, whose catalog `numactlx repair` reads when the
   * root in force is damaged (catalog-rebuild.ts).
   */
  otherSuperblock(): Superblock | undefined {
    this.ensureOpen();
    try {
      const other = SLOT_OFFSETS[1 - slotOf(this.sb.generation)];
      const sb = decodeSuperblock(this.header.read(other, SLOT_SIZE));
      return sb.dataOffset === this.sb.dataOffset && sb.frameCount <= this.sb.frameCount ? sb : undefined;
    } catch {
      return undefined;
    }
  }

  /** Bytes of the medium the backing uses (its recorded size). */
  get size(): bigint {
    return this.sb.size;
  }

  get framesInUse(): number {
    return this.frames.inUseCount;
  }

  /**
   * Records a new catalog location with a new superblock generation: the commit point
   * of a snapshot. Make the catalog and its frames durable (sync()) first.
   */
  commitCatalog(catalog: bigint): void {
    this.ensureOpen();
    try {
      this.sb = writeNext(this.header, this.sb, { ...this.sb, catalog });
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
   * is a crash, not an exception — as is touching a frame past the end of a truncated
   * file (SIGBUS). For tests and tools; numactlx itself uses readFrame and writeFrame.
   */
  frameView(f: number): Buffer {
    this.checkFrame(f);
    return this.views.view(f);
  }

  /**
   * Reads frame `f` into `out` (FRAME_SIZE bytes), and writeFrame writes one: through the
   * kernel (frame-copy.ts), so that a frame past the end of a file truncated under the
   * session is a BackingError 'lost', not a SIGBUS. The catalog's frames go through
   * these; a device (which cannot be truncated) through the mapping.
   */
  readFrame(f: number, out: Buffer): void {
    this.checkFrame(f);
    if (this.kind === 'dax') this.views.view(f).copy(out);
    else if (this.copy.read([this.frameAddr(f)], 1, out) !== 1) throw this.lostFrame(f, 'read');
  }

  writeFrame(f: number, data: Buffer): void {
    this.checkFrame(f);
    if (this.kind === 'dax') data.copy(this.views.view(f));
    else if (!this.copy.write(this.frameAddr(f), data)) throw this.lostFrame(f, 'written');
  }

  private lostFrame(f: number, done: string): BackingError {
    return new BackingError(this.path, 'lost', this.mediumProblem() ?? `backing ${this.path}: frame ${f} could not be ${done} (EFAULT)`);
  }

  /** frameAddress as a Number (exact: mappings are below 2^47), for hot loops. */
  frameAddr(f: number): number {
    return this.frameBaseNumber + f * FRAME_SIZE;
  }

  /** A free frame, or -1 when the node is full (no free frame, or no space on the medium). */
  allocFrame(): number {
    return this.frames.alloc();
  }

  freeFrame(f: number): void {
    this.frames.free(f);
  }

  /**
   * Marks frames in use before the first allocFrame: those the committed snapshot
   * catalog references, found when it is loaded (catalog.ts loadCatalog).
   */
  claimFrames(frames: Iterable<number>): void {
    this.ensureOpen();
    this.frames.claim(frames);
  }

  /** The ENOSPC that made the node full, while allocFrame keeps reporting it. */
  get noSpace(): SysError | undefined {
    return this.frames.noSpace;
  }

  /** Forgets a remembered ENOSPC: the next allocFrame tries to reserve space again at once. */
  retrySpace(): void {
    this.frames.retrySpace();
  }

  /**
   * What has happened to the medium under the session, if anything (checked at each
   * freeze and commit, after a frame could not be copied, and at the session's end): the
   * file deleted — its snapshots vanish with the session — or truncated below its
   * recorded size — its frames past the end are gone (touched through the mapping, a
   * SIGBUS). A device cannot be either.
   */
  mediumProblem(): string | undefined {
    if (this.kind === 'dax' || this.fd < 0) return undefined;
    const st = fs.fstatSync(this.fd);
    if (st.nlink === 0) return `backing ${this.path} was deleted during the session`;
    if (BigInt(st.size) < this.sb.size) {
      return `backing ${this.path} was truncated to ${st.size} bytes during the session (its snapshots need ${this.sb.size})`;
    }
    return undefined;
  }

  /** Makes frame writes and the superblock durable as far as the medium allows. */
  sync(): void {
    this.ensureOpen();
    syncFrames(this.syncTarget());
  }

  /** What syncFrames needs to make this store's frames durable (from another thread too). */
  syncTarget(): SyncTarget {
    return { path: this.path, kind: this.kind, frameBase: Number(this.frameBase), mapLength: Number(this.mapLength), fd: this.fd };
  }

  /** Unmaps the frames, clears the owner record, releases the lock and closes. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const fd = this.fd;
    this.fd = -1;
    this.frames.close();
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

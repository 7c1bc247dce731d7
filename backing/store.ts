// The backing store: a file, a tmpfs/hugetlbfs file or a /dev/dax device opened,
// locked, checked (or formatted), its frame area mapped MAP_SHARED into this process,
// and a frame allocator over it. The layout is drawn in format.ts, the lock in lock.ts;
// opening the medium and its header bytes are in medium.ts, reading and writing the
// superblock in superblock.ts, the allocator in frames.ts, the errors in errors.ts.
//
// Opening it (checking or formatting, growing, mapping) is store-open.ts's.
//
// What sync() promises on each medium (fsync, RAM, the platform's persistence domain) is
// drawn in durability.ts.
import fs from 'node:fs';
import type { BackingKind, BackingTarget } from './inspect.js';
import { BackingError, fail } from './errors.js';
import { SLOT_OFFSETS, SLOT_SIZE, FRAME_SIZE, decodeSuperblock, slotOf, type Superblock } from './format.js';
import { FrameAllocator } from './frames.js';
import { clearOwner, unlock } from './lock.js';
import type { Header } from './medium.js';
import { writeNext, type FormatRequest } from './superblock.js';
import { cacheFlush, missingFlush, type CacheFlush } from './persist.js';
import type { SysError } from '../src/sys/libc.js';
import { FrameViews } from './frame-views.js';
import { FrameCopy } from './frame-copy.js';
import { syncFrames, type Durability, type MakeDurable, type SyncTarget } from './durability.js';
import { openStoreMedium } from './store-open.js';
import { drain } from './steps.js';
import { close } from '../src/sys/fcntl.js';
import { munmap } from '../src/sys/mman.js';

export { BackingError, type BackingErrorReason } from './errors.js';

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
  /** /dev/dax: the CPU cache flush (persist.ts), and the frames written since the last sync(). */
  private readonly cache: CacheFlush | undefined;
  private readonly unflushed = new Set<number>();
  /** Why a /dev/dax backing's snapshots are not durable against power loss, for the caller to say. */
  readonly durabilityNote: string | undefined;

  private constructor(target: BackingTarget, fd: number, header: Header, sb: Superblock, frameBase: bigint) {
    this.path = target.path;
    this.kind = target.kind;
    this.cache = cacheFlush(target.kind);
    this.durabilityNote = missingFlush(target.kind);
    this.durability = target.kind === 'file' ? 'fsync' : target.kind !== 'dax' ? 'ram' : this.cache ? 'pmem' : 'platform';
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
   * missing file, formats an empty file (a dax device only with `format`), checks an existing one,
   * grows it to target.size when its recorded size is smaller, takes the lock and maps
   * the frames. `format` (numactlx format, /dev/dax only): writes a new superblock first.
   * Throws BackingError.
   */
  static open(target: BackingTarget, format?: FormatRequest): BackingStore {
    return openStoreMedium(target, format, (fd, header, sb, frameBase, damage) => {
      const store = new BackingStore(target, fd, header, sb, frameBase);
      store.superblockDamage = damage;
      return store;
    });
  }

  /** The superblock in force (a copy). */
  get superblock(): Superblock { return { ...this.sb }; }

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

  get framesInUse(): number { return this.frames.inUseCount; }

  /** Frames handed out at least once (FrameAllocator.handedOut). */
  get framesHandedOut(): number { return this.frames.handedOut; }

  /** Space reserved quietly through frame `count` − 1 (FrameAllocator.reserveAhead); the frames from 0 with space. */
  reserveFramesAhead(count: number): number {
    this.ensureOpen();
    return this.frames.reserveAhead(count);
  }

  /**
   * Records a new catalog location with a new superblock generation: the commit point
   * of a snapshot. Make the catalog and its frames durable (sync()) first.
   */
  commitCatalog(catalog: bigint): void {
    const header = this.header;
    drain(this.commitCatalogSteps(catalog, function* () {
      header.flush();
    }));
  }

  /**
   * commitCatalog in steps: the new superblock is written, then made durable by `durable`
   * (commitCatalog: the header's fsync here; the engine's: fsync on its checksum worker,
   * yielding meanwhile). The store takes the new generation once it is durable; a failure
   * (a BackingError as it is, a system error as "… while writing its superblock") leaves
   * it as before.
   */
  *commitCatalogSteps(catalog: bigint, durable: MakeDurable): Generator<void, void> {
    this.ensureOpen();
    try {
      const next = writeNext(this.header, this.sb, { ...this.sb, catalog }, false);
      yield* durable();
      this.sb = next;
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
    if (this.kind === 'dax') {
      data.copy(this.views.view(f));
      // Flushed from the CPU caches at the next sync(), before a superblock can name it.
      if (this.cache) this.unflushed.add(f);
    } else if (!this.copy.write(this.frameAddr(f), data)) throw this.lostFrame(f, 'written');
  }

  private lostFrame(f: number, done: string): BackingError {
    return new BackingError(this.path, 'lost', this.mediumProblem() ?? `backing ${this.path}: frame ${f} could not be ${done} (EFAULT)`);
  }

  /** frameAddress as a Number (exact: mappings are below 2^47), for hot loops. */
  frameAddr(f: number): number {
    return this.frameBaseNumber + f * FRAME_SIZE;
  }

  /** A free frame, or -1 when the node is full (no free frame, or no space on the medium). */
  allocFrame(): number { return this.frames.alloc(); }

  freeFrame(f: number): void { this.frames.free(f); }

  /**
   * Marks frames in use before the first allocFrame: those the committed snapshot
   * catalog references, found when it is loaded (catalog.ts loadCatalog).
   */
  claimFrames(frames: Iterable<number>): void {
    this.ensureOpen();
    this.frames.claim(frames);
  }

  /** The ENOSPC that made the node full, while allocFrame keeps reporting it. */
  get noSpace(): SysError | undefined { return this.frames.noSpace; }

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
    this.flushCaches();
    syncFrames(this.syncTarget());
  }

  /**
   * /dev/dax: flushes the frames written through writeFrame since the last sync from the
   * CPU caches (the part of sync() that is not syncFrames, which does nothing on dax: a
   * sync made on another thread needs this first). Elsewhere nothing.
   */
  flushCaches(): void {
    this.ensureOpen();
    if (!this.cache) return;
    for (const f of this.unflushed) this.cache.persist(this.frameAddr(f), FRAME_SIZE);
    this.unflushed.clear();
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

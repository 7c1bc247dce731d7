// The frame allocator: which frames of a backing are in use, and how far ahead of the
// frames handed out the medium has space reserved for them.
//
// All Numbers (frame indexes < 2^32, checked at open by checkFrameCount). Frames
// [0, next) were handed out at least once and are either in use (bit set in `inUse`)
// or on the free stack; frames [0, reserved) have space reserved on the medium.
import os from 'node:os';
import type { BackingTarget } from './inspect.js';
import { BackingError, fail } from './errors.js';
import { FRAME_SIZE, MAX_FRAMES, type Superblock } from './format.js';
import { SysError } from '../src/sys/libc.js';
import { fallocateErrno } from '../src/sys/fcntl.js';
import { FrameBits } from './frame-counts.js';

/** Bytes reserved with fallocate per step ahead of the frames handed out. */
const RESERVE_CHUNK = 2 << 20;
/** After ENOSPC, alloc reports the node full for this long before trying again. */
const NO_SPACE_RETRY_MS = 1000;
const ENOSPC = os.constants.errno.ENOSPC;

/** Refuses a superblock with more frames than the allocator can index. */
export function checkFrameCount(path: string, sb: Superblock): void {
  if (sb.frameCount > BigInt(MAX_FRAMES)) {
    throw new BackingError(path, 'unsupported',
      `${path}: ${sb.frameCount} frames are more than numactlx can index (${MAX_FRAMES}, 16 TiB)`);
  }
}

export class FrameAllocator {
  private readonly path: string;
  private readonly kind: BackingTarget['kind'];
  private fd: number;
  private readonly dataOffset: bigint;
  private readonly frameCount: number;
  private next = 0;
  private reserved: number;
  private freeStack = new Uint32Array(0);
  private freeTop = 0;
  private readonly inUse: FrameBits;
  private used = 0;
  private readonly reserveFrames: number;
  private noSpaceAt = -Infinity;
  private noSpaceError: SysError | undefined;

  /** Over the `frameCount` frames from `dataOffset` of the medium `fd` holds (checked with checkFrameCount). */
  constructor(target: BackingTarget, fd: number, dataOffset: bigint, frameCount: number) {
    this.path = target.path;
    this.kind = target.kind;
    this.fd = fd;
    this.dataOffset = dataOffset;
    this.frameCount = frameCount;
    this.inUse = new FrameBits(frameCount);
    // A dax device has no holes: every frame is backed already.
    this.reserved = target.kind === 'dax' ? frameCount : 0;
    const chunk = target.kind === 'hugetlbfs' && target.align > BigInt(RESERVE_CHUNK) ? Number(target.align) : RESERVE_CHUNK;
    this.reserveFrames = chunk / FRAME_SIZE;
  }

  get inUseCount(): number {
    return this.used;
  }

  /** Frames [0, handedOut) were handed out at least once (in use or on the free stack). */
  get handedOut(): number {
    return this.next;
  }

  /**
   * Reserves space ahead of the frames handed out, through frame `count` − 1 (at most the
   * last frame), for frames about to be warmed (frame-warmer.ts); returns how many frames
   * from 0 have space now. Quiet: a full medium or any other failure stops it without
   * error and without marking the node full — the allocation that needs the frame finds out.
   */
  reserveAhead(count: number): number {
    const last = Math.min(count, this.frameCount) - 1;
    while (last >= this.reserved && this.reserve(true));
    return Math.min(this.reserved, this.frameCount);
  }

  /** A free frame, or -1 when the node is full (no free frame, or no space on the medium). */
  alloc(): number {
    let f: number;
    if (this.freeTop > 0) {
      f = this.freeStack[this.freeTop - 1];
      if (!this.reserveThrough(f)) return -1; // only a frame skipped by claim() can lie beyond
      this.freeTop--;
    } else if (this.next < this.frameCount) {
      if (!this.reserveThrough(this.next)) return -1;
      f = this.next++;
    } else {
      return -1;
    }
    this.inUse.add(f);
    this.used++;
    return f;
  }

  free(f: number): void {
    if (!Number.isInteger(f) || f < 0 || f >= this.next || !this.inUse.has(f)) {
      throw new RangeError(`freeFrame(${f}): frame ${f} is not allocated`);
    }
    this.inUse.delete(f);
    this.used--;
    if (this.freeTop === this.freeStack.length) {
      const grown = new Uint32Array(Math.min(this.frameCount, Math.max(1024, this.freeStack.length * 2)));
      grown.set(this.freeStack);
      this.freeStack = grown;
    }
    this.freeStack[this.freeTop++] = f;
  }

  /**
   * Marks `frames` in use before the first alloc: the frames a backing's committed
   * snapshot catalog references, found when it is opened (catalog.ts). Duplicates are
   * fine. The frames below the highest one claimed that are not claimed go on the free
   * stack, the lowest handed out first; space for them is reserved when they are.
   */
  claim(frames: Iterable<number>): void {
    if (this.next !== 0) throw new Error('FrameAllocator.claim: frames were handed out already');
    let top = -1;
    for (const f of frames) {
      if (!Number.isInteger(f) || f < 0 || f >= this.frameCount) {
        throw new RangeError(`claim: frame ${f} is outside the backing (0 … ${this.frameCount - 1})`);
      }
      if (this.inUse.has(f)) continue;
      this.inUse.add(f);
      this.used++;
      if (f > top) top = f;
    }
    this.next = top + 1;
    this.freeStack = new Uint32Array(Math.min(this.frameCount, Math.max(1024, this.next - this.used)));
    this.freeTop = 0;
    for (let f = top - 1; f >= 0; f--) {
      if (!this.inUse.has(f)) this.freeStack[this.freeTop++] = f;
    }
  }

  /** The ENOSPC that made the node full, while alloc keeps reporting it. */
  get noSpace(): SysError | undefined {
    return this.noSpaceError;
  }

  /** Forgets a remembered ENOSPC: the next alloc tries to reserve space again at once. */
  retrySpace(): void {
    this.noSpaceAt = -Infinity;
  }

  /**
   * Forgets the fd when the store closes it: a reserve after that fails with EBADF
   * rather than reaching whatever file reuses the number.
   */
  close(): void {
    this.fd = -1;
  }

  /** Reserves chunks until frame `f` has space; false when the node is full. */
  private reserveThrough(f: number): boolean {
    while (f >= this.reserved) if (!this.reserve()) return false;
    return true;
  }

  /**
   * Reserves the next chunk of frames with fallocate(mode 0), so that a write through the
   * mapping never meets a full filesystem (which is a SIGBUS, not an errno). On ENOSPC
   * it tries a single frame (not on hugetlbfs, whose unit is the huge page), then
   * reports the node full and waits NO_SPACE_RETRY_MS before trying again. `quiet`
   * (reserveAhead): any failure is only false.
   */
  private reserve(quiet = false): boolean {
    if (performance.now() - this.noSpaceAt < NO_SPACE_RETRY_MS || (quiet && this.fd < 0)) return false;
    const start = this.reserved;
    const offset = Number(this.dataOffset) + start * FRAME_SIZE; // < 2^53: exact
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
    if (quiet) return false;
    const error = new SysError('fallocate', errno);
    if (errno === ENOSPC) {
      this.noSpaceAt = performance.now();
      this.noSpaceError = error;
      return false;
    }
    throw fail(this.path, error, 'reserving space for frames');
  }
}

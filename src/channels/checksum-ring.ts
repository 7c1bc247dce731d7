// The engine → checksum worker channel, both ends: ChecksumQueue (the engine's end) and
// ChecksumRingReader (the worker's end, driven by src/checksum-thread/checksum-loop.ts).
// CRC32 of the frames a snapshot writes is computed on a thread of its own so that the
// engine thread, which serves page faults, only copies. Shared memory, no messages (the
// engine never returns to its event loop):
//
//   ctl (Int32): [HEAD] entries queued by the engine, [TAIL] entries done by the worker
//                (both only grow; ring index = count % RING), [ALIVE] 1 while the worker
//                runs, [STOP] set by the engine, [STOPPED] set by the worker on its way out,
//                [WAITING] 1 while the worker sleeps on HEAD. The engine wakes it once per
//                copy batch, and only when it sleeps (a futex wake per frame cost a context
//                switch per page). Worker: WAITING=1, then reads HEAD; engine: writes HEAD,
//                then reads WAITING — sequentially consistent, so one of them sees the other.
//   ring (Int32 pairs): slot, frame.
//   crcs, one per virtual node (slot): Uint32 per frame, the CRC32 of its 4096 bytes as
//   last written. The worker writes the ones it takes. Without a worker (numactlx on one
//   CPU) the engine computes the queued ones itself at the commit, in steps; with a full
//   ring, at once. One writer per entry at a time: a frame is queued once per copy and not
//   written again before the snapshot commits.
//
// Ordering: a frame's bytes are written (process_vm_readv returned) before its entry is
// published with Atomics.store(HEAD); the worker reads HEAD with Atomics.load before it
// reads the bytes. The commit waits until TAIL reaches HEAD before it reads `crcs`.
//
// Frames are read by kernel copies (backing/frame-crcs.ts), never through the mapping:
// a file truncated under the session would make that a SIGBUS, which ends numactlx. A
// frame that cannot be read gets CRC 0 and its slot is named in ctl [UNREADABLE] (slot
// + 1, the first one): the engine then fails the snapshot and the session ends.
import type { SyncTarget } from '../../backing/durability.js';
import { FRAME_BATCH } from '../../backing/frame-copy.js';
import { crcOne, FrameCrcs } from '../../backing/frame-crcs.js';
import { warmGoalsBuffer } from './warm-goals.js';

const HEAD = 0;
const TAIL = 1;
const ALIVE = 2;
const STOP = 3;
const STOPPED = 4;
/** 1 while the worker sleeps (or is about to) on HEAD: only then does the engine wake it. */
const WAITING = 5;
/** Sync requests (the engine counts them) and the last one done; SYNC_FAILED: it threw. */
const SYNC_REQ = 6;
const SYNC_DONE = 7;
const SYNC_FAILED = 8;
/** 0, or 1 + the slot of the first frame that could not be read (its backing was truncated). */
const UNREADABLE = 9;
const CTL_SLOTS = 10;
/** Entries: enough for a full snapshot of 4 GiB of 4 KiB frames without a worker (8 MiB of ring). */
export const RING = 1 << 20;

export interface ChecksumShared {
  ctl: SharedArrayBuffer;
  crcs: SharedArrayBuffer[];
  /** Per slot: the address of frame 0 in this process, the frame count, what syncing it
   *  takes, and where its frame 0 is in the file when its frames are warmed (a regular file). */
  nodes: Array<{ frameBase: number; frameCount: number; sync: SyncTarget; warm?: { dataOffset: number } }>;
  /** Frame warming's goals (warm-goals.ts). */
  warm: SharedArrayBuffer;
}

export function checksumShared(nodes: ChecksumShared['nodes']): ChecksumShared {
  return {
    ctl: new SharedArrayBuffer(4 * (CTL_SLOTS + 2 * RING)),
    crcs: nodes.map((n) => new SharedArrayBuffer(4 * n.frameCount)),
    nodes,
    warm: warmGoalsBuffer(nodes.length),
  };
}

/** The engine's side. */
export class ChecksumQueue {
  private readonly ctl: Int32Array;
  private readonly ring: Int32Array;
  private readonly crcs: Uint32Array[];
  private readonly frames: FrameCrcs;
  private readonly one = new Uint32Array(1);
  private head = 0;

  constructor(readonly shared: ChecksumShared) {
    this.ctl = new Int32Array(shared.ctl, 0, CTL_SLOTS);
    this.ring = new Int32Array(shared.ctl, 4 * CTL_SLOTS);
    this.crcs = shared.crcs.map((b) => new Uint32Array(b));
    this.frames = new FrameCrcs(shared.nodes);
  }

  /** The CRC of one frame here (no worker, a full ring), or marks its slot unreadable. */
  private computeOne(slot: number, frame: number): void {
    const crc = crcOne(this.frames, slot, frame, this.one);
    if (crc === undefined) markUnreadable(this.ctl, slot);
    this.crcs[slot][frame] = crc ?? 0;
  }

  /**
   * The slot of a frame that could not be read back for its CRC (its backing was
   * truncated under the session: BackingStore.mediumProblem says so), or -1.
   */
  get unreadable(): number {
    return Atomics.load(this.ctl, UNREADABLE) - 1;
  }

  /**
   * Frame `frame` of `slot` was just written: its CRC is computed by the worker, or,
   * without one (numactlx on one CPU), by the engine at the commit (settleSome), so that
   * the copy steps a faulting writer may wait behind stay short. Computed now only when
   * the ring is full.
   */
  written(slot: number, frame: number): void {
    if (this.head - Atomics.load(this.ctl, TAIL) < RING) {
      const i = 2 * (this.head % RING);
      this.ring[i] = slot;
      this.ring[i + 1] = frame;
      Atomics.store(this.ctl, HEAD, ++this.head);
      return;
    }
    this.computeOne(slot, frame);
  }

  /** End of a copy batch: wakes the worker if it sleeps. */
  kick(): void {
    if (Atomics.load(this.ctl, WAITING) === 1) Atomics.notify(this.ctl, HEAD);
  }

  /**
   * Asks the worker to make every node's frames durable (msync, fsync: half a second for
   * 4 GiB on ext4, which the engine thread must not spend); returns the request to wait for.
   */
  requestSync(): number {
    const gen = Atomics.add(this.ctl, SYNC_REQ, 1) + 1;
    Atomics.notify(this.ctl, HEAD);
    return gen;
  }

  /** The sync request `gen` is done; throws when the worker's sync failed (the caller syncs again to learn why). */
  synced(gen: number): boolean {
    if (Atomics.load(this.ctl, SYNC_DONE) < gen) return false;
    if (Atomics.load(this.ctl, SYNC_FAILED) !== 0) {
      Atomics.store(this.ctl, SYNC_FAILED, 0);
      throw new Error('sync on the checksum worker failed');
    }
    return true;
  }

  /** Entries queued and not computed yet. */
  get pending(): number {
    return this.head - Atomics.load(this.ctl, TAIL);
  }

  /** Every queued CRC is computed. */
  get settled(): boolean {
    return Atomics.load(this.ctl, TAIL) >= this.head;
  }

  /** A worker computes the queued CRCs. */
  get hasWorker(): boolean {
    return Atomics.load(this.ctl, ALIVE) === 1;
  }

  /**
   * Computes up to `max` queued CRCs here (no worker, or it stalls: its later writes, if
   * any, write the same values); returns how many are left.
   */
  settleSome(max = Infinity): number {
    let n = Atomics.load(this.ctl, TAIL);
    const end = Math.min(this.head, n + max);
    for (; n < end; n++) {
      const i = 2 * (n % RING);
      this.computeOne(this.ring[i], this.ring[i + 1]);
    }
    if (!this.hasWorker) Atomics.store(this.ctl, TAIL, n);
    return this.head - n;
  }

  crc(slot: number, frame: number): number {
    return this.crcs[slot][frame];
  }

  /**
   * Asks the worker to stop and waits (up to `ms`) until it no longer reads the frames:
   * it looks at STOP every 64 frames, so this takes microseconds unless it hangs.
   */
  stop(ms = 10_000): void {
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, HEAD);
    if (Atomics.load(this.ctl, ALIVE) === 1) Atomics.wait(this.ctl, STOPPED, 0, ms);
  }
}

/**
 * The checksum worker's end: takes queued entries, answers sync requests, says when it
 * runs and when it has stopped reading the frames.
 */
export class ChecksumRingReader {
  private readonly ctl: Int32Array;
  private readonly ring: Int32Array;
  private readonly crcs: Uint32Array[];
  private tail: number;
  private synced: number;
  private readonly slots = new Int32Array(FRAME_BATCH);
  private readonly frames = new Int32Array(FRAME_BATCH);
  private readonly out = new Uint32Array(FRAME_BATCH);

  constructor(shared: ChecksumShared) {
    this.ctl = new Int32Array(shared.ctl, 0, CTL_SLOTS);
    this.ring = new Int32Array(shared.ctl, 4 * CTL_SLOTS);
    this.crcs = shared.crcs.map((b) => new Uint32Array(b));
    this.tail = Atomics.load(this.ctl, TAIL);
    this.synced = Atomics.load(this.ctl, SYNC_DONE);
    Atomics.store(this.ctl, ALIVE, 1);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.ctl, STOP) !== 0;
  }

  /** A sync request not answered yet (its generation), or 0. */
  syncRequested(): number {
    const req = Atomics.load(this.ctl, SYNC_REQ);
    return req > this.synced ? req : 0;
  }

  syncDone(gen: number, failed: boolean): void {
    if (failed) Atomics.store(this.ctl, SYNC_FAILED, 1);
    this.synced = gen;
    Atomics.store(this.ctl, SYNC_DONE, gen);
    Atomics.notify(this.ctl, SYNC_DONE);
  }

  /**
   * Entries queued and not taken; when there are none, sleeps (up to `ms`) until the
   * engine queues one or asks for a sync, and returns 0.
   */
  waitForWork(ms: number): number {
    let head = Atomics.load(this.ctl, HEAD);
    if (this.tail !== head) return head - this.tail;
    Atomics.store(this.ctl, WAITING, 1);
    head = Atomics.load(this.ctl, HEAD);
    if (this.tail === head && this.syncRequested() === 0) Atomics.wait(this.ctl, HEAD, head, ms);
    Atomics.store(this.ctl, WAITING, 0);
    return 0;
  }

  /**
   * Computes the CRC of up to `max` queued entries with `reader`, FRAME_BATCH at a time,
   * publishing progress after each batch; stops early when the engine asks to stop (it
   * unmaps the frames once we say STOPPED: never be inside a long batch then). A frame
   * that cannot be read gets CRC 0 and names its slot (UNREADABLE).
   */
  take(max: number, reader: Pick<FrameCrcs, 'compute'>): void {
    const end = this.tail + max;
    while (this.tail < end) {
      const n = Math.min(FRAME_BATCH, end - this.tail);
      for (let k = 0; k < n; k++) {
        const i = 2 * ((this.tail + k) % RING);
        this.slots[k] = this.ring[i];
        this.frames[k] = this.ring[i + 1];
      }
      let done = reader.compute(this.slots, this.frames, n, this.out);
      for (let k = 0; k < done; k++) this.crcs[this.slots[k]][this.frames[k]] = this.out[k];
      if (done < n) {
        markUnreadable(this.ctl, this.slots[done]);
        this.crcs[this.slots[done]][this.frames[done]] = 0;
        done++; // the next batch starts after it
      }
      this.tail += done;
      Atomics.store(this.ctl, TAIL, this.tail);
      if (this.stopRequested) break;
    }
    Atomics.store(this.ctl, TAIL, this.tail);
    Atomics.notify(this.ctl, TAIL);
  }

  /** Entries queued and not taken (no wait). */
  get queued(): number { return Atomics.load(this.ctl, HEAD) - this.tail; }

  /** The worker no longer reads the frames. */
  stopped(): void {
    Atomics.store(this.ctl, ALIVE, 0);
    Atomics.store(this.ctl, STOPPED, 1);
    Atomics.notify(this.ctl, STOPPED);
  }
}

function markUnreadable(ctl: Int32Array, slot: number): void {
  Atomics.compareExchange(ctl, UNREADABLE, 0, slot + 1);
}

/**
 * Main thread, at the session's end: asks the worker to stop (the engine asks too, before
 * it unmaps the backings — unless it died first). A worker still loading sees it at its
 * loop's first turn and ends by itself. It is never terminated: a worker terminated
 * inside a koffi call — loading koffi, or any call once it runs — aborts the whole
 * process (`FATAL ERROR: … napi_throw`; the 6.1 guest's kill9 group, once in three runs on
 * stop 29's build), and numactlx's _exit ends it anyway.
 */
export function askWorkerToStop(shared: ChecksumShared): void {
  const ctl = new Int32Array(shared.ctl, 0, CTL_SLOTS);
  Atomics.store(ctl, STOP, 1);
  Atomics.notify(ctl, HEAD);
}

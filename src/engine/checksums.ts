// CRC32 of the frames a snapshot writes, computed on a thread of its own (the checksum
// worker) so that the engine thread, which serves page faults, only copies. Shared
// memory, no messages (the engine never returns to its event loop):
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
import zlib from 'node:zlib';
import { syncFrames, type SyncTarget } from '../../backing/store.js';
import { FrameViews } from '../../backing/frame-views.js';

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
const CTL_SLOTS = 10;
/** Entries: enough for a full snapshot of 4 GiB of 4 KiB frames without a worker (8 MiB of ring). */
export const RING = 1 << 20;

export interface ChecksumShared {
  ctl: SharedArrayBuffer;
  crcs: SharedArrayBuffer[];
  /** Per slot: the address of frame 0 in this process, the frame count, and what syncing it takes. */
  nodes: Array<{ frameBase: number; frameCount: number; sync: SyncTarget }>;
}

export function checksumShared(nodes: ChecksumShared['nodes']): ChecksumShared {
  return {
    ctl: new SharedArrayBuffer(4 * (CTL_SLOTS + 2 * RING)),
    crcs: nodes.map((n) => new SharedArrayBuffer(4 * n.frameCount)),
    nodes,
  };
}

/** Frame bytes by (slot, frame), over this process's mappings of the backings. */
class NodeFrames {
  private readonly nodes: FrameViews[];

  constructor(nodes: ChecksumShared['nodes']) {
    this.nodes = nodes.map((n) => new FrameViews(n.frameBase, n.frameCount));
  }

  view(slot: number, frame: number): Buffer {
    return this.nodes[slot].view(frame);
  }
}

/** The engine's side. */
export class ChecksumQueue {
  private readonly ctl: Int32Array;
  private readonly ring: Int32Array;
  private readonly crcs: Uint32Array[];
  private readonly views: NodeFrames;
  private head = 0;

  constructor(readonly shared: ChecksumShared) {
    this.ctl = new Int32Array(shared.ctl, 0, CTL_SLOTS);
    this.ring = new Int32Array(shared.ctl, 4 * CTL_SLOTS);
    this.crcs = shared.crcs.map((b) => new Uint32Array(b));
    this.views = new NodeFrames(shared.nodes);
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
    this.crcs[slot][frame] = zlib.crc32(this.views.view(slot, frame));
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
      this.crcs[this.ring[i]][this.ring[i + 1]] = zlib.crc32(this.views.view(this.ring[i], this.ring[i + 1]));
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

/** The worker's loop: runs until STOP. */
export function runChecksumWorker(shared: ChecksumShared): void {
  const ctl = new Int32Array(shared.ctl, 0, CTL_SLOTS);
  const ring = new Int32Array(shared.ctl, 4 * CTL_SLOTS);
  const crcs = shared.crcs.map((b) => new Uint32Array(b));
  const views = new NodeFrames(shared.nodes);
  let tail = Atomics.load(ctl, TAIL);
  Atomics.store(ctl, ALIVE, 1);
  let synced = Atomics.load(ctl, SYNC_DONE);
  try {
    while (Atomics.load(ctl, STOP) === 0) {
      const syncReq = Atomics.load(ctl, SYNC_REQ);
      if (syncReq > synced) {
        try {
          for (const n of shared.nodes) syncFrames(n.sync);
        } catch {
          Atomics.store(ctl, SYNC_FAILED, 1);
        }
        synced = syncReq;
        Atomics.store(ctl, SYNC_DONE, synced);
        Atomics.notify(ctl, SYNC_DONE);
      }
      let head = Atomics.load(ctl, HEAD);
      if (tail === head) {
        Atomics.store(ctl, WAITING, 1);
        head = Atomics.load(ctl, HEAD);
        if (tail === head && Atomics.load(ctl, SYNC_REQ) === synced) Atomics.wait(ctl, HEAD, head, 1000);
        Atomics.store(ctl, WAITING, 0);
        continue;
      }
      for (; tail < head; tail++) {
        const i = 2 * (tail % RING);
        crcs[ring[i]][ring[i + 1]] = zlib.crc32(views.view(ring[i], ring[i + 1]));
        if ((tail & 63) === 63) {
          Atomics.store(ctl, TAIL, tail + 1);
          // The engine unmaps the frames once we say STOPPED: never be inside a long batch then.
          if (Atomics.load(ctl, STOP) !== 0) break;
        }
      }
      Atomics.store(ctl, TAIL, tail);
      Atomics.notify(ctl, TAIL);
    }
  } finally {
    Atomics.store(ctl, ALIVE, 0);
    Atomics.store(ctl, STOPPED, 1);
    Atomics.notify(ctl, STOPPED);
  }
}

// The main thread's handle on the engine worker: start it (it opens the backings:
// a foreign, locked or unwritable backing fails here, before the program starts), ask
// it for statistics, shut it down.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { DOORBELL_BYTES } from '../src/channels/doorbell.js';
import type { Worker } from 'node:worker_threads';
import { startWorker } from './worker.js';
import { workerFor } from './early-workers.js';
import { CHECKSUM_WORKER, ENGINE_WORKER } from './own-files.js';
import { debugging, SetupError } from './errors.js';
import { CHANNEL_BYTES } from '../src/channels/tracer-engine.js';
import { EVICT_CHANNEL_BYTES } from '../src/channels/evict-request.js';
import { MainMailbox, MainRequest } from '../src/channels/engine-mailbox.js';
import { onEngineEvent, type EngineStart } from '../src/channels/engine-messages.js';
import { askWorkerToStop, type ChecksumShared } from '../src/channels/checksum-ring.js';
import type { SessionStats } from '../src/channels/session-stats.js';
import type { VirtualNode } from '../policy/remap.js';
import type { KernelFeatures } from '../src/kerndat/features.js';


export class EngineHandle {
  readonly channel = new SharedArrayBuffer(CHANNEL_BYTES);
  readonly doorbell = new SharedArrayBuffer(DOORBELL_BYTES);
  /** --max-resident: the engine → tracer eviction channel (made by start() when a node has a limit). */
  evict: SharedArrayBuffer | undefined;
  /** The next snapshot id (after the backings' catalogs). */
  nextId = 1;
  /** Outcomes of snapshots, by id (the session's snapshot queue listens). */
  readonly snapshots = new EventEmitter();
  private readonly mailbox: MainMailbox;
  private worker!: Worker;
  /** CRC32 of snapshot frames, off the engine thread (src/channels/checksum-ring.ts). */
  private checksumWorker: { worker: Worker; shared: ChecksumShared; exited: boolean } | undefined;
  /** The ring the checksum worker reads, from the engine's 'ready' (the worker starts later). */
  private checksumShared: ChecksumShared | undefined;
  private statsWaiters: Array<(s: SessionStats) => void> = [];
  private lastStats: SessionStats | undefined;
  private closed!: Promise<void>;
  /** The engine's 'closed': its backings are closed and it posts nothing more (its isolate may still be ending). */
  private closedMessage!: Promise<void>;

  constructor(readonly eventFd: number) {
    this.mailbox = new MainMailbox(new SharedArrayBuffer(8), eventFd);
  }

  /** Starts the engine; resolves when every backing is open, rejects with why not. */
  start(nodes: readonly VirtualNode[], faultAheadPages: number, program: string[], features: KernelFeatures,
    { dirtyTracking, capture }: Pick<EngineStart, 'dirtyTracking' | 'capture'>, pausePages: number): Promise<void> {
    // The engine's stops of the program: eviction's drops, or (asynchronous tracking) pre-copy slices.
    const evicting = nodes.some((n) => n.maxResident !== undefined);
    if (evicting || dirtyTracking === 'async') this.evict = new SharedArrayBuffer(EVICT_CHANNEL_BYTES);
    const data: EngineStart = {
      nodes: nodes.map((n) => ({ node: n.node, target: n.backing, maxResidentPages: n.maxResident === undefined ? undefined : Number(n.maxResident / 4096n) })),
      faultAheadPages, features, dirtyTracking, capture, pausePages, channel: this.channel, mailbox: this.mailbox.sab, doorbell: this.doorbell, program, eventFd: this.eventFd,
      evict: this.evict,
    };
    this.worker = workerFor(ENGINE_WORKER, data);
    this.closed = new Promise((resolve) => this.worker.once('exit', () => {
      // The engine stops the checksum worker before it unmaps the backings; if the engine
      // died instead, nothing else will.
      this.stopChecksumWorker();
      resolve();
    }));
    let ready = false;
    let gotClosed!: () => void;
    this.closedMessage = new Promise((resolve) => { gotClosed = resolve; });
    return new Promise((resolve, reject) => {
      onEngineEvent(this.worker, (ev) => {
        switch (ev.type) {
          case 'ready':
            ready = true;
            this.nextId = ev.nextId;
            // Even on one CPU: the msync + fsync of a snapshot's frames blocks for seconds (a
            // GiB of fresh frames: 3.7 s, taskset -c 0), and on the engine thread it stopped
            // fault service that long (a redis SET waited 1.7 s). On a thread of its own it
            // only shares the CPU. Started by the session once the program has run a while
            // or at the first snapshot (session.ts), or now for eviction, which checksums
            // what it writes: start-up no longer shares two CPUs three ways.
            this.checksumShared = ev.checksums;
            if (evicting) this.startChecksums();
            resolve();
            break;
          case 'snapshot-done': this.snapshots.emit('done', ev.snapshot); break;
          case 'snapshot-failed': this.snapshots.emit('failed', ev.id, ev.message, ev.noProcess === true); break;
          case 'pruned': this.snapshots.emit('pruned', ev.ids, ev.error); break;
          case 'prepared': this.snapshots.emit('prepared'); break;
          case 'backing-lost': this.snapshots.emit('backing-lost', ev.message, ev.found); break;
          case 'init-failed': reject(new SetupError(ev.message)); break;
          case 'stats':
            this.lastStats = ev.stats;
            for (const w of this.statsWaiters.splice(0)) w(ev.stats);
            break;
          case 'failed':
            if (debugging()) fs.writeSync(2, `${ev.stack ?? ev.message}\n`);
            // Before 'ready' the rejection is the one line; after it, nobody awaits start().
            if (ready) fs.writeSync(2, `numactlx: the engine thread failed: ${ev.message}\n`);
            reject(new SetupError(`the engine thread failed: ${ev.message}`));
            break;
          case 'closed': gotClosed(); break;
        }
      });
      this.worker.on('error', (err) => reject(new SetupError('engine thread failed', { cause: err })));
    });
  }

  /**
   * Starts the checksum worker if it is not running yet: before the first snapshot (its
   * sync comes seconds later; until it has loaded the engine computes CRCs itself).
   */
  startChecksums(): void {
    if (!this.checksumWorker && this.checksumShared) this.startChecksumWorker(this.checksumShared);
  }

  private startChecksumWorker(shared: ChecksumShared): void {
    const worker = startWorker(CHECKSUM_WORKER, shared);
    const handle = { worker, shared, exited: false };
    this.checksumWorker = handle;
    worker.unref();
    worker.once('exit', () => { handle.exited = true; });
    // A failed checksum worker costs speed, not data: the engine computes the CRCs itself.
    worker.on('error', (err) => {
      if (process.env.NUMACTLX_DEBUG === '1') fs.writeSync(2, `numactlx: checksum worker failed: ${err.message}\n`);
    });
  }

  /**
   * Asks the checksum worker to stop (askWorkerToStop), without waiting for its end: it
   * is never terminated, and numactlx's _exit ends it. A worker still loading stops at
   * its loop's first turn, before it reads a frame.
   */
  private stopChecksumWorker(): void {
    const handle = this.checksumWorker;
    if (handle && !handle.exited) askWorkerToStop(handle.shared);
  }

  /** --keep: deletes the oldest unlabelled snapshots beyond `keep`; resolves to the ids. */
  prune(keep: number): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.snapshots.once('pruned', (ids: number[], error?: string) => (error ? reject(new Error(error)) : resolve(ids)));
      this.mailbox.post(MainRequest.Prune, keep);
    });
  }

  /**
   * Stages the dirty pages of the next snapshot while the program runs (snapshot.ts,
   * "Prepare"); resolves when the freeze can follow. Resolves too when the engine ends
   * first: the freeze then finds no program.
   */
  prepare(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { this.snapshots.off('prepared', done); resolve(); };
      this.snapshots.on('prepared', done);
      void this.closed.then(done);
      this.mailbox.post(MainRequest.Prepare);
    });
  }

  /** The engine's current statistics. */
  stats(): Promise<SessionStats> {
    return new Promise((resolve) => {
      this.statsWaiters.push(resolve);
      this.mailbox.post(MainRequest.Stats);
    });
  }

  /** Resolves when the engine worker has ended (shut down, or failed). */
  get ended(): Promise<void> {
    return this.closed;
  }

  /** Final statistics, then the engine closes its backings and ends. */
  async shutdown(): Promise<SessionStats | undefined> {
    const final = new Promise<SessionStats>((resolve) => this.statsWaiters.push(resolve));
    this.mailbox.post(MainRequest.Shutdown);
    const stats = await Promise.race([final, this.closed.then(() => this.lastStats)]);
    // Not the workers' exits: an isolate's teardown took 13 ms here, and numactlx's _exit
    // ends them anyway.
    await Promise.race([this.closedMessage, this.closed]);
    this.stopChecksumWorker();
    return stats;
  }
}

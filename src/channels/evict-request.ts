// The engine → tracer eviction channel, both ends (--max-resident; the engine's side is
// src/engine-thread/eviction.ts, the tracer's src/tracer-thread/evict-stop.ts). Its stop
// has a second user: pre-copy slices (src/engine-thread/precopy-slices.ts), which run in
// the EvictRanges call and drop nothing — only with asynchronous dirty tracking, which a
// session with eviction never has.
//
// Why the tracer: the engine writes pages back to their frames, but dropping them from
// the program takes a call made in the program's own address space. Measured on Linux
// 6.18 (bench/evict_drop.c, docs/BENCHMARKS.md "Eviction: drop paths"):
// process_madvise(MADV_DONTNEED) on another process is EINVAL (only COLD, PAGEOUT,
// WILLNEED and COLLAPSE work remotely, and PAGEOUT needs swap for anonymous pages), and
// UFFDIO_MOVE refuses a uffd of another mm with EINVAL. So the tracer stops the threads
// of that address space and injects process_madvise(PIDFD_SELF, …, MADV_DONTNEED) into
// one of them.
//
// The tracer sits in waitpid(2): the engine wakes it as the doorbell does (through the
// waker, tracer-wake.ts: no signal to the program), and rings again every RERING_MS while
// the request is not taken (a request is taken at the tracer's next look after any stop;
// the waker may be being started again).
//
// Protocol: engine post() (state 1) and ring(); tracer take() (state 2) — then, while the
// mm's threads are stopped, the synchronous TracerOps EvictRanges (the engine writes the
// ranges to drop here) and EvictDone (the engine sets state 0). cancel() takes back a
// request not taken yet.
//
// Also here, the tracer → engine flag "stopping": the tracer is stopping threads (for a
// round or a freeze), and no fault may wait for room meanwhile — a thread faulting inside
// the kernel (on the rseq area it writes on its way back to user mode) cannot stop until
// its fault is served, and the stop, which makes the room, waits for it.
//
// Layout: Int32 [0] state (0 idle, 1 requested, 2 taken), [1] pid count, [2..2+MAX_PIDS)
// the pids of the mm, [STOPPING] the flag, [WAKER] the waker's pid, [DROPS] 1 for an
// eviction's stop (pages are dropped), 0 for a pre-copy slice's; Float64 from
// RANGES_OFFSET: [start, length] pairs (addresses below 2^47: exact as doubles).
import os from 'node:os';
import { processExists } from '../sys/signal.js';
import { wakeTracer } from './tracer-wake.js';

export { RERING_MS } from './tracer-wake.js';
const MAX_PIDS = 61;
const STOPPING = 2 + MAX_PIDS;
const WAKER = STOPPING + 1;
const DROPS = WAKER + 1;
const RANGES_OFFSET = 512;
/** Ranges one stop can drop (the engine merges its victims into at most this many). */
export const MAX_RANGES = 8192;
export const EVICT_CHANNEL_BYTES = RANGES_OFFSET + MAX_RANGES * 16;
const { ESRCH } = os.constants.errno;

const IDLE = 0;
const REQUESTED = 1;
const TAKEN = 2;

export class EvictChannel {
  private readonly ctl: Int32Array;
  private readonly ranges: Float64Array;
  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, DROPS + 1);
    this.ranges = new Float64Array(sab, RANGES_OFFSET, MAX_RANGES * 2);
  }

  // ---- engine -------------------------------------------------------------------------
  /**
   * Posts a request to stop the processes `pids` (one mm's); ring() then wakes the tracer.
   * `drops`: pages will be dropped from them (an eviction), not a pre-copy slice.
   */
  post(pids: number[], drops: boolean): void {
    Atomics.store(this.ctl, DROPS, drops ? 1 : 0);
    const n = Math.min(pids.length, MAX_PIDS);
    for (let i = 0; i < n; i++) this.ctl[2 + i] = pids[i];
    Atomics.store(this.ctl, 1, n);
    Atomics.store(this.ctl, 0, REQUESTED);
  }

  /**
   * Wakes the tracer for the request: 0, or -ESRCH when none of its processes is left. A
   * ring the waker could not take (it is being started again) is rung again by the caller.
   */
  ring(): number {
    const n = Atomics.load(this.ctl, 1);
    for (let i = 0; i < n; i++) {
      if (!processExists(this.ctl[2 + i])) continue;
      wakeTracer(Atomics.load(this.ctl, WAKER));
      return 0;
    }
    return -ESRCH;
  }

  /** ring(); when none of the request's processes is left, the request is taken back: false then (nobody will take it). */
  ringOrWithdraw(): boolean {
    return !(this.ring() === -ESRCH && this.cancel());
  }

  /** Takes back a request the tracer has not taken; false when it has (EvictDone will follow). */
  cancel(): boolean {
    return Atomics.compareExchange(this.ctl, 0, REQUESTED, IDLE) === REQUESTED;
  }

  /** The tracer has taken the request (it is stopping the threads, or has stopped them). */
  get taken(): boolean {
    return Atomics.load(this.ctl, 0) === TAKEN;
  }

  /** The tracer is stopping threads: faults must not wait. */
  get stopping(): boolean {
    return Atomics.load(this.ctl, STOPPING) !== 0;
  }

  /** The stop is over (EvictDone). */
  finish(): void {
    Atomics.store(this.ctl, 0, IDLE);
  }

  /** The pids of the request (those the tracer stops). */
  pids(): number[] {
    return Array.from(this.ctl.subarray(2, 2 + Atomics.load(this.ctl, 1)));
  }

  /** Writes the ranges to drop ([start, end) pairs, flattened); returns how many. */
  setRanges(runs: readonly number[]): number {
    const n = Math.min(runs.length / 2, MAX_RANGES);
    for (let i = 0; i < n; i++) {
      this.ranges[2 * i] = runs[2 * i];
      this.ranges[2 * i + 1] = runs[2 * i + 1] - runs[2 * i];
    }
    return n;
  }

  // ---- tracer -------------------------------------------------------------------------
  /** A request is waiting to be taken. */
  get pending(): boolean {
    return Atomics.load(this.ctl, 0) === REQUESTED;
  }

  /** Whether the request taken drops pages (an eviction's), not a pre-copy slice's. */
  get drops(): boolean {
    return Atomics.load(this.ctl, DROPS) === 1;
  }

  /** Takes the waiting request: the pids to stop, or undefined. */
  take(): number[] | undefined {
    if (Atomics.compareExchange(this.ctl, 0, REQUESTED, TAKEN) !== REQUESTED) return undefined;
    return this.pids();
  }

  /** The waker's pid (0 while there is none). */
  publishWaker(pid: number): void {
    Atomics.store(this.ctl, WAKER, pid);
  }

  /** Sets the stopping flag (stop-threads.ts, around its wait for the threads to stop). */
  setStopping(on: boolean): void {
    Atomics.store(this.ctl, STOPPING, on ? 1 : 0);
  }

  /** Range `i` the engine wrote: its start and length in bytes. */
  range(i: number): [number, number] {
    return [this.ranges[2 * i], this.ranges[2 * i + 1]];
  }
}

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
// The tracer sits in waitpid(2): the engine wakes it as the doorbell does (doorbell.ts) —
// SIGURG queued with a cookie to a process of the mm. The tracee stops for it, the tracer
// recognises the cookie (si_code SI_QUEUE, si_pid = numactlx, si_value = EVICT_COOKIE),
// never delivers it, and takes the request. A SIGURG does not queue behind another one
// (a standard signal is pending once), so the tracer also looks at the request at every
// SIGURG of ours, whichever cookie, and the engine rings again when nobody took it.
// Rung again, it nudges (the doorbell's SIGSTOP sent by kill, doorbell.ts) when SIGURG
// cannot bring a stop — every thread blocks it, or it is no longer pending (a thread took
// it with sigwaitinfo or a signalfd) — or when the request has waited NUDGE_MS: a program
// that blocks SIGURG and makes no trapped call kept no --max-resident limit at all. A
// program whose SIGURG is merely not delivered yet (its threads wait for a CPU) is not
// sent SIGSTOP: it would stop no sooner. Once a nudge was needed, a request to a process
// whose threads all block SIGURG nudges at its first ring.
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
// the pids of the mm (the first is rung), [STOPPING] the flag; Float64 from
// RANGES_OFFSET: [start, length] pairs (addresses below 2^47: exact as doubles).
import os from 'node:os';
import { killFast, sigqueueFast } from '../sys/signal.js';
import { signalState } from '../sys/procfs.js';
import { DOORBELL_NUDGE_SIGNAL, DOORBELL_SIGNAL, NUDGE_MS } from './doorbell.js';

export const EVICT_SIGNAL = DOORBELL_SIGNAL;
export const EVICT_COOKIE = 0x65766963; // "evic"
/** A request not taken this long is rung again (a SIGURG of the program already pending swallowed ours). */
export const RERING_MS = 50;
const MAX_PIDS = 61;
const STOPPING = 2 + MAX_PIDS;
const RANGES_OFFSET = 256;
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
  /** When the request in hand was posted, and whether it has been rung since (a ring again may nudge). */
  private postedAt = 0;
  private rung = false;
  /** A nudge has been needed: the first ring looks at the program's signal mask from now on. */
  private nudged = false;

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 3 + MAX_PIDS);
    this.ranges = new Float64Array(sab, RANGES_OFFSET, MAX_RANGES * 2);
  }

  // ---- engine -------------------------------------------------------------------------
  /** Posts a request to stop the processes `pids` (one mm's); ring() then wakes the tracer. */
  post(pids: number[]): void {
    const n = Math.min(pids.length, MAX_PIDS);
    for (let i = 0; i < n; i++) this.ctl[2 + i] = pids[i];
    Atomics.store(this.ctl, 1, n);
    Atomics.store(this.ctl, 0, REQUESTED);
    this.postedAt = performance.now();
    this.rung = false;
  }

  /**
   * Queues the SIGURG — or, rung again, the nudge where SIGURG cannot stop the program
   * (see the header) — to the first of the request's processes still there: 0, or
   * -ESRCH when none is.
   */
  ring(): number {
    const n = Atomics.load(this.ctl, 1);
    const again = this.rung;
    this.rung = true;
    for (let i = 0; i < n; i++) {
      const pid = this.ctl[2 + i];
      const r = this.nudgeNow(pid, again) ? killFast(pid, DOORBELL_NUDGE_SIGNAL) : sigqueueFast(pid, EVICT_SIGNAL, EVICT_COOKIE);
      if (r !== -ESRCH) return r;
    }
    return -ESRCH;
  }

  /** Whether this ring of `pid` is the nudge (see the header). */
  private nudgeNow(pid: number, again: boolean): boolean {
    if (!again && !this.nudged) return false;
    const state = signalState(pid, EVICT_SIGNAL, !again);
    if (!state) return false; // gone: ESRCH either way
    const nudge = again ? performance.now() - this.postedAt >= NUDGE_MS || !state.pending || state.blockedEverywhere
      : state.blockedEverywhere;
    this.nudged ||= nudge;
    return nudge;
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

  /** Takes the waiting request: the pids to stop, or undefined. */
  take(): number[] | undefined {
    if (Atomics.compareExchange(this.ctl, 0, REQUESTED, TAKEN) !== REQUESTED) return undefined;
    return this.pids();
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

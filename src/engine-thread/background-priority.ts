// The engine thread's priority for a snapshot's background steps (the pre-copy, the copy
// and the commit between fault service, --keep's deletions): NUMACTLX_SNAPSHOT_NICE steps
// below numactlx's own (src/snapshot/background-nice.ts says why) for a snapshot's first
// GRACE_MS, then numactlx's own, so that it finishes however busy the program: never above
// the program's, though fault service, commands and the freeze run above it where they
// may (src/sys/thread-priority.ts): the engine comes back to that when faults or a command
// arrive (serve) and before a poll that may block (endTurn), not at the end of every turn:
// changed twice a turn (16,000 times a second while a held copy ran without a fault), the
// nice let the engine keep a CPU from a writer pinned with it for 0.3–1.9 s (BENCHMARKS
// §5p; `engine_nice_changes` in --stats counts the changes). The
// NUMACTLX_SNAPSHOT_NICE steps with asynchronous dirty tracking only: with synchronous
// tracking a writer waits on the copy (copy-before-write), and a copy slowed down is more
// write faults for it — stress-ng rewriting 2 GiB did 0.33× its work alone with these
// steps at nice 10, 0.53–0.64× without.
//
// Kernel facts: a thread's nice is its own (setThreadNice). Lowering one's priority is
// always allowed; raising it back needs CAP_SYS_NICE or an RLIMIT_NICE of at least
// 20 − nice. Without either, lowering would leave fault service low for good: the steps
// then run at numactlx's priority (said with NUMACTLX_DEBUG).
import fs from 'node:fs';
import { setThreadNice, threadNice } from '../sys/sched.js';
import { mayTakeNice } from '../sys/thread-priority.js';
import { SNAPSHOT_NICE_ENV, snapshotNice } from '../snapshot/background-nice.js';
import type { DirtyTracking } from '../kerndat/features.js';

/** How long a stretch of snapshot work runs at the lower priority before it goes on at numactlx's. */
const GRACE_MS = 2000;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

export class BackgroundPriority {
  /** Fault service's: the thread's nice when made (raised by the engine first: thread-priority.ts). */
  private readonly own = threadNice();
  /** The steps' during their grace: NUMACTLX_SNAPSHOT_NICE steps below numactlx's. */
  private readonly low: number;
  private usable: boolean;
  /** The nice the thread runs at now: `own`, or a step's while lowered. */
  private at = this.own;
  /** When the current stretch of snapshot work began (performance.now()), or -1. */
  private since = -1;
  /** How many times the thread's nice was changed (--stats: engine_nice_changes). */
  changes = 0;

  /**
   * `base`: numactlx's own nice (the program's), where the steps run after their grace;
   * `now`: the clock of the grace (a test's own).
   */
  constructor(tracking: DirtyTracking, steps = snapshotNice(process.env[SNAPSHOT_NICE_ENV]), private readonly now = () => performance.now(),
    private readonly base = threadNice()) {
    this.low = tracking === 'async' ? Math.min(19, base + steps) : base;
    const canComeBack = mayTakeNice(this.own);
    this.usable = this.low > this.own && canComeBack;
    if (!DEBUG) return;
    const unused = tracking !== 'async' && steps > 0 ? ` (${SNAPSHOT_NICE_ENV} not used: synchronous dirty tracking, writes wait on the copy)` : '';
    fs.writeSync(2, this.usable ? `numactlx-engine: snapshot steps at nice ${this.low}${unused}, fault service at ${this.own}\n`
      : `numactlx-engine: snapshot steps at numactlx's priority (nice ${this.own})${unused || (this.low > this.own ? ': raising it back would need CAP_SYS_NICE or RLIMIT_NICE' : '')}\n`);
  }

  /**
   * Before a loop turn's snapshot steps: `work` says whether there are any. At `low` for
   * the first GRACE_MS of a stretch of work, at numactlx's own nice after it: a program
   * that keeps every CPU busy would otherwise starve its snapshot for good (a writer pinned
   * with numactlx to one CPU: its snapshot never finished in 21 s at nice 10; 7.1 s at
   * numactlx's priority). Never above the program's priority, whatever fault service's.
   */
  lowerFor(work: boolean): void {
    if (!work) {
      this.since = -1;
      return;
    }
    if (!this.usable) return;
    if (this.since < 0) this.since = this.now();
    const want = this.now() - this.since <= GRACE_MS ? this.low : this.base;
    if (want === this.at) return;
    if (want === this.own) return this.restore();
    if (setThreadNice(want) !== 0) return;
    this.at = want;
    this.changes++;
  }

  /** Faults or a command came in: served at fault service's priority. */
  serve(): void {
    this.restore();
  }

  /**
   * A loop turn ends. `pending`: snapshot or --keep work goes on at the next turn, whose
   * poll does not block; the thread stays where its step left it until faults or a
   * command come. Without it the poll may block: fault service's priority for what wakes it.
   */
  endTurn(pending: boolean): void {
    if (!pending) this.restore();
  }

  /** Fault service's priority again. */
  restore(): void {
    if (this.at === this.own) return;
    const low = this.at;
    this.at = this.own;
    const r = setThreadNice(this.own);
    if (r === 0) {
      this.changes++;
      return;
    }
    // Not expected (the capability was checked); the thread stays low, so no more lowering.
    this.usable = false;
    fs.writeSync(2, `numactlx: the engine thread could not take its priority back (nice ${this.own}, errno ${-r}): fault service runs at nice ${low}\n`);
  }
}

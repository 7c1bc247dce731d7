// The snapshot queue: every way of asking for a snapshot (the snapshot signal, the control
// socket, cron schedules, the end of the program) goes through one SnapshotQueue, which
// calls the engine's `take` one snapshot at a time (DESIGN §3.4).
//
// A snapshot's life, as the queue sees it:
//
//   waiting ──take(label)──▶ freezing ──id known──▶ copying ──durable──▶ (prune) ──▶ next
//      ▲                      (program paused,      (program running,
//      │                       then resumed)         copier writing frames)
//   requests join here
//
// Invariants:
// - One at a time: the next take() starts only after the previous snapshot is durable or
//   has failed, and after retention (--keep) has run. The engine never has two copiers.
// - Coalescing: a request joins a snapshot that is *waiting* to start and has the same
//   label (null, no label, is a label here), so a burst of requests costs one snapshot;
//   requests with different labels never share one ("labels queue separately").
//   A request never joins a snapshot whose take() has been called: every requester gets a
//   snapshot frozen after it asked.
// - Never lost: every request is answered, with its snapshot's id (or the SnapshotDone
//   when it waits for durability), or with the error that ended that snapshot. After a
//   failed snapshot the queue goes on with the next one.
// - close() refuses new requests ("the session is ending"); the ones already queued are
//   still taken, and drain() resolves when they have all been answered.
//
// The request/answer/event types and SnapshotError are in queue-api.ts, the label rules
// in labels.ts.
import { labelProblem } from './labels.js';
import {
  SESSION_ENDING, SnapshotError, type PruneSnapshots, type SnapshotAnswer, type SnapshotDone, type SnapshotEvent,
  type SnapshotOutcome, type SnapshotQueueOptions, type SnapshotQueueState, type SnapshotRequest, type SnapshotSource,
  type TakeSnapshot,
} from './queue-api.js';

interface Waiter {
  wait: boolean;
  resolve: (answer: SnapshotAnswer) => void;
  reject: (err: SnapshotError) => void;
}

interface Slot {
  label: string | null;
  sources: Set<SnapshotSource>;
  waiters: Waiter[];
  /** Set once the freeze is over. */
  id: number | null;
}

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class SnapshotQueue {
  readonly #take: TakeSnapshot;
  readonly #keep: number | undefined;
  readonly #prune: PruneSnapshots | undefined;
  readonly #onEvent: ((event: SnapshotEvent) => void) | undefined;
  /** Snapshots waiting to start, in the order they were first asked for. */
  readonly #waiting: Slot[] = [];
  #running: Slot | null = null;
  /** A start is scheduled (setImmediate) but has not happened yet. */
  #starting = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(take: TakeSnapshot, options: SnapshotQueueOptions = {}) {
    if (options.keep !== undefined) {
      if (!Number.isSafeInteger(options.keep) || options.keep < 1) throw new RangeError(`keep must be a positive integer, got ${options.keep}`);
      if (!options.prune) throw new TypeError('keep needs a prune callback');
    }
    this.#take = take;
    this.#keep = options.keep;
    this.#prune = options.prune;
    this.#onEvent = options.onEvent;
  }

  /**
   * Asks for a snapshot. Resolves to `{id, label}` once the program has been frozen and
   * resumed, or with `wait`, to the SnapshotDone once it is durable; rejects with a
   * SnapshotError when that snapshot fails or the queue is closed.
   */
  request(req: SnapshotRequest): Promise<SnapshotAnswer> {
    const label = req.label ?? null;
    if (this.#closed) return Promise.reject(new SnapshotError(SESSION_ENDING, { label }));
    if (label !== null) {
      const problem = labelProblem(label);
      if (problem) return Promise.reject(new SnapshotError(`invalid label ${JSON.stringify(label)}: ${problem}`, { label }));
    }
    let slot = this.#waiting.find((s) => s.label === label);
    if (!slot) {
      slot = { label, sources: new Set(), waiters: [], id: null };
      this.#waiting.push(slot);
    }
    slot.sources.add(req.source);
    const joined = slot;
    const answer = new Promise<SnapshotAnswer>((resolve, reject) => {
      joined.waiters.push({ wait: req.wait === true, resolve, reject });
    });
    this.#schedule();
    return answer;
  }

  /** Whether a request with this label would join a snapshot already waiting to start. */
  isWaiting(label: string | null): boolean {
    return this.#waiting.some((s) => s.label === label);
  }

  /** Refuses further requests; those already queued are still served. */
  close(): void {
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when nothing is running or waiting (every request answered, retention done). */
  drain(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  state(): SnapshotQueueState {
    return {
      running: this.#running && { id: this.#running.id, label: this.#running.label },
      waiting: this.#waiting.map((s) => ({ label: s.label, requests: s.waiters.length })),
      closed: this.#closed,
    };
  }

  #isIdle(): boolean {
    return this.#running === null && !this.#starting && this.#waiting.length === 0;
  }

  /**
   * Starts the next snapshot on the next turn of the event loop rather than inside
   * request(): requests that arrive in the same turn (a signal and a cron tick, a burst of
   * `numactlx snapshot`) coalesce, and take() never runs inside its caller's stack.
   */
  #schedule(): void {
    if (this.#running || this.#starting || this.#waiting.length === 0) return;
    this.#starting = true;
    setImmediate(() => {
      this.#starting = false;
      const slot = this.#waiting.shift();
      if (!slot) {
        this.#next();
        return;
      }
      this.#running = slot;
      void this.#run(slot).finally(() => {
        this.#running = null;
        this.#next();
      });
    });
  }

  /** After a snapshot: start the next one, or tell drain() that all is done. */
  #next(): void {
    if (this.#waiting.length > 0) this.#schedule();
    else if (this.#isIdle()) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #run(slot: Slot): Promise<void> {
    const { label } = slot;
    const sources = [...slot.sources];
    let outcome: SnapshotOutcome;
    try {
      outcome = await this.#take(label);
    } catch (err) {
      // No freeze, no id: the engine's reason is the whole story.
      this.#fail(slot, sources, new SnapshotError(reasonOf(err), { label, cause: err }), () => true);
      return;
    }
    slot.id = outcome.id;
    this.#emit({ type: 'taken', id: outcome.id, label, sources });
    for (const w of slot.waiters) if (!w.wait) w.resolve({ id: outcome.id, label });

    let done: SnapshotDone;
    try {
      done = await outcome.durable;
    } catch (err) {
      this.#fail(slot, sources, new SnapshotError(`snapshot ${outcome.id}: ${reasonOf(err)}`, { id: outcome.id, label, cause: err }), (w) => w.wait);
      return;
    }
    for (const w of slot.waiters) if (w.wait) w.resolve(done);
    this.#emit({ type: 'durable', done, sources });

    if (this.#keep === undefined || !this.#prune) return;
    try {
      const ids = await this.#prune(this.#keep);
      this.#emit({ type: 'pruned', ids });
    } catch (err) {
      this.#emit({ type: 'prune-failed', error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  #fail(slot: Slot, sources: SnapshotSource[], error: SnapshotError, told: (w: Waiter) => boolean): void {
    for (const w of slot.waiters) if (told(w)) w.reject(error);
    this.#emit({ type: 'failed', id: error.id, label: slot.label, sources, error });
  }

  #emit(event: SnapshotEvent): void {
    if (!this.#onEvent) return;
    try {
      this.#onEvent(event);
    } catch (err) {
      // A listener's bug must not leave requesters without their answer: the queue's
      // state is consistent here, so carry on and let the bug surface on its own.
      queueMicrotask(() => { throw err; });
    }
  }
}

/**
 * The control socket's `snapshot` op over `queue` (`{"op":"snapshot","label":L,"wait":B}`):
 * the request's parameters are checked here, since any client can send anything.
 */
export function snapshotOp(queue: SnapshotQueue): (req: Record<string, unknown>) => Promise<SnapshotAnswer> {
  return async (req) => {
    for (const key of Object.keys(req)) {
      if (key !== 'id' && key !== 'op' && key !== 'label' && key !== 'wait') {
        throw new SnapshotError(`unknown parameter '${key}' (valid: label, wait)`);
      }
    }
    const { label, wait } = req;
    if (label !== undefined && label !== null && typeof label !== 'string') throw new SnapshotError('"label" must be a string');
    if (wait !== undefined && typeof wait !== 'boolean') throw new SnapshotError('"wait" must be true or false');
    return queue.request({ label: label ?? null, wait: wait ?? false, source: 'socket' });
  };
}

// The snapshot queue as pure logic, over a fake engine whose take() and durable promises
// the test settles by hand (or, for the many-requesters test, after random short delays).
import { jest } from '@jest/globals';
import { SnapshotQueue, snapshotOp } from '../../src/snapshot/queue.js';
import { prng, testSeed } from '../helpers/random.js';
import {
  NO_PROCESS, SnapshotError, type SnapshotAnswer, type SnapshotDone, type SnapshotEvent, type SnapshotOutcome, type SnapshotQueueOptions,
} from '../../src/snapshot/queue-api.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** Lets setImmediate callbacks (the queue's starts) and the promise jobs after them run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await turn();
};

const stats = { pages: 10, new_pages: 4, bytes_written: 16384, pause_ms: 1, copy_ms: 2 };

/** One take() call: the test freezes (id known) and commits or fails it. */
class Call {
  readonly taken = deferred<SnapshotOutcome>();
  readonly durable = deferred<SnapshotDone>();

  constructor(readonly label: string | null, readonly id: number) {}

  freeze(): void {
    this.taken.resolve({ id: this.id, durable: this.durable.promise });
  }

  done(): SnapshotDone {
    return { id: this.id, label: this.label, time: `2025-01-01T00:00:0${this.id % 10}.000Z`, stats };
  }

  commit(): void {
    this.durable.resolve(this.done());
  }

  /** Frozen and committed at once. */
  finish(): void {
    this.freeze();
    this.commit();
  }
}

class FakeEngine {
  readonly calls: Call[] = [];
  private nextId = 1;
  /** How many take() calls have not settled their durable promise yet. */
  active = 0;
  maxActive = 0;

  readonly take = (label: string | null): Promise<SnapshotOutcome> => {
    const call = new Call(label, this.nextId++);
    this.calls.push(call);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    const end = (): void => { this.active--; };
    call.durable.promise.then(end, end);
    call.taken.promise.catch(end);
    return call.taken.promise;
  };

  get last(): Call {
    return this.calls[this.calls.length - 1];
  }
}

function setup(opts: Omit<SnapshotQueueOptions, 'onEvent'> = {}): { engine: FakeEngine; queue: SnapshotQueue; events: SnapshotEvent[] } {
  const engine = new FakeEngine();
  const events: SnapshotEvent[] = [];
  const queue = new SnapshotQueue(engine.take, { ...opts, onEvent: (e) => events.push(e) });
  return { engine, queue, events };
}

/** Records when a promise settles, without letting a rejection go unhandled. */
function track<T>(p: Promise<T>): { settled: boolean; value?: T; error?: SnapshotError } {
  const t: { settled: boolean; value?: T; error?: SnapshotError } = { settled: false };
  p.then((v) => { t.settled = true; t.value = v; }, (err: SnapshotError) => { t.settled = true; t.error = err; });
  return t;
}

test('one request: the id once frozen, the SnapshotDone once durable', async () => {
  const { engine, queue } = setup();
  const quick = track(queue.request({ source: 'signal' }));
  const waiting = track(queue.request({ source: 'socket', wait: true }));
  await turns();
  expect(engine.calls.map((c) => c.label)).toEqual([null]);
  expect(quick.settled).toBe(false);
  engine.last.freeze();
  await turns();
  expect(quick.value).toEqual({ id: 1, label: null });
  expect(waiting.settled).toBe(false);
  engine.last.commit();
  await turns();
  expect(waiting.value).toEqual(engine.last.done());
});

test('one at a time: the next take() starts only after the previous snapshot is durable', async () => {
  const { engine, queue } = setup();
  void queue.request({ source: 'signal' });
  await turns();
  engine.last.freeze();
  await turns();
  const second = track(queue.request({ source: 'cron' }));
  await turns();
  expect(engine.calls).toHaveLength(1); // the first is still copying
  expect(queue.state()).toEqual({ running: { id: 1, label: null }, waiting: [{ label: null, requests: 1 }], closed: false });
  engine.calls[0].commit();
  await turns();
  expect(engine.calls).toHaveLength(2);
  engine.last.finish();
  await turns();
  expect(second.value).toEqual({ id: 2, label: null });
  expect(engine.maxActive).toBe(1);
});

test('requests made in one turn, and requests made while one is running, coalesce', async () => {
  const { engine, queue } = setup();
  const burst = [1, 2, 3].map(() => track(queue.request({ source: 'signal' })));
  await turns();
  expect(engine.calls).toHaveLength(1);
  const during = [1, 2, 3, 4, 5].map((i) => track(queue.request({ source: i % 2 ? 'cron' : 'socket', wait: i === 5 })));
  await turns();
  expect(queue.state().waiting).toEqual([{ label: null, requests: 5 }]);
  engine.calls[0].finish();
  await turns();
  expect(engine.calls).toHaveLength(2);
  engine.calls[1].finish();
  await turns();
  expect(engine.calls).toHaveLength(2);
  expect(burst.map((t) => t.value)).toEqual([1, 2, 3].map(() => ({ id: 1, label: null })));
  expect(during.slice(0, 4).map((t) => t.value)).toEqual([1, 2, 3, 4].map(() => ({ id: 2, label: null })));
  expect(during[4].value).toEqual(engine.calls[1].done());
});

test('labels queue separately; a request never joins a snapshot that has started', async () => {
  const { engine, queue } = setup();
  const first = track(queue.request({ label: 'a', source: 'socket' }));
  await turns();
  // Snapshot 1 ('a') has started: a new 'a' must not join it.
  const asked: [string | null, ReturnType<typeof track<SnapshotAnswer>>][] = ['a', null, 'b', 'a', null, 'b', 'c']
    .map((label) => [label, track(queue.request({ label, source: 'socket' }))]);
  await turns();
  expect(queue.state().waiting).toEqual([{ label: 'a', requests: 2 }, { label: null, requests: 2 }, { label: 'b', requests: 2 }, { label: 'c', requests: 1 }]);
  for (let i = 0; i < 5; i++) {
    engine.last.finish();
    await turns();
  }
  expect(engine.calls.map((c) => c.label)).toEqual(['a', 'a', null, 'b', 'c']);
  expect(first.value).toEqual({ id: 1, label: 'a' });
  const idOf: Record<string, number> = { a: 2, null: 3, b: 4, c: 5 };
  for (const [label, t] of asked) expect(t.value).toEqual({ id: idOf[String(label)], label });
});

test('a failed freeze is every waiter\'s error; the queue goes on', async () => {
  const { engine, queue, events } = setup();
  void queue.request({ source: 'signal' });
  await turns();
  const waiters = [false, true, false].map((wait) => track(queue.request({ source: 'socket', wait })));
  const other = track(queue.request({ label: 'x', source: 'socket' }));
  engine.calls[0].finish();
  await turns();
  const cause = new Error('could not stop the program: ESRCH');
  engine.calls[1].taken.reject(cause);
  await turns();
  for (const t of waiters) {
    expect(t.error).toBeInstanceOf(SnapshotError);
    expect(t.error?.message).toBe('could not stop the program: ESRCH');
    expect(t.error?.id).toBeNull();
    expect(t.error?.cause).toBe(cause);
  }
  expect(events.find((e) => e.type === 'failed')).toEqual({ type: 'failed', id: null, label: null, sources: ['socket'], error: waiters[0].error });
  // The next snapshot (label x) is taken anyway, and later requests work.
  expect(engine.calls.map((c) => c.label)).toEqual([null, null, 'x']);
  engine.last.finish();
  await turns();
  expect(other.value).toEqual({ id: 3, label: 'x' });
  const after = track(queue.request({ source: 'cron', wait: true }));
  await turns();
  engine.last.finish();
  await turns();
  expect(after.value).toEqual(engine.calls[3].done());
});

test('a failed commit: the id was answered, the waiters for durability get the reason', async () => {
  const prune = jest.fn(async () => [] as number[]);
  const { engine, queue, events } = setup({ keep: 2, prune });
  const quick = track(queue.request({ source: 'signal' }));
  const durable = [track(queue.request({ source: 'socket', wait: true })), track(queue.request({ source: 'cron', wait: true }))];
  await turns();
  engine.last.freeze();
  await turns();
  expect(quick.value).toEqual({ id: 1, label: null });
  const cause = new Error('backing /x: ENOSPC: no frame for the snapshot');
  engine.last.durable.reject(cause);
  await turns();
  for (const t of durable) {
    expect(t.error?.message).toBe('snapshot 1: backing /x: ENOSPC: no frame for the snapshot');
    expect(t.error?.id).toBe(1);
    expect(t.error?.cause).toBe(cause);
  }
  expect(quick.error).toBeUndefined();
  expect(prune).not.toHaveBeenCalled(); // nothing new was committed
  expect(events.map((e) => e.type)).toEqual(['taken', 'failed']);
  const next = track(queue.request({ source: 'socket', wait: true }));
  await turns();
  engine.last.finish();
  await turns();
  expect(next.value).toEqual(engine.last.done());
  expect(prune).toHaveBeenCalledWith(2);
});

// The session tells a tick that found the program gone from a failure by this flag, which
// must survive the queue's wrapping, at the freeze and at the commit.
test('a failure for want of a process keeps its noProcess flag through the queue; another failure has none', async () => {
  const { engine, queue, events } = setup();
  const atFreeze = track(queue.request({ source: 'cron' }));
  await turns();
  engine.last.taken.reject(new SnapshotError(NO_PROCESS, { noProcess: true }));
  await turns();
  expect({ message: atFreeze.error?.message, noProcess: atFreeze.error?.noProcess }).toEqual({ message: NO_PROCESS, noProcess: true });
  const atCommit = track(queue.request({ source: 'cron', wait: true }));
  await turns();
  engine.last.freeze();
  await turns();
  engine.last.durable.reject(new SnapshotError(NO_PROCESS, { id: 2, noProcess: true }));
  await turns();
  expect(atCommit.error?.noProcess).toBe(true);
  const other = track(queue.request({ source: 'cron' }));
  await turns();
  engine.last.taken.reject(new Error(`ESRCH: ${NO_PROCESS}`)); // the words alone are not the flag
  await turns();
  expect(other.error?.noProcess).toBe(false);
  expect(events.filter((e) => e.type === 'failed').map((e) => e.type === 'failed' && e.error.noProcess)).toEqual([true, true, false]);
});

test('a take() that throws synchronously is an answer too', async () => {
  const queue = new SnapshotQueue(() => { throw new Error('engine is gone'); });
  await expect(queue.request({ source: 'signal' })).rejects.toThrow(/^engine is gone$/);
  await expect(queue.request({ source: 'signal', wait: true })).rejects.toThrow(/^engine is gone$/);
});

test('--keep: prune(keep) after each durable snapshot, before the next one starts', async () => {
  const order: string[] = [];
  const pruned = deferred<number[]>();
  const prune = jest.fn((keep: number) => {
    order.push(`prune ${keep}`);
    return pruned.promise;
  });
  const { engine, queue, events } = setup({ keep: 3, prune });
  void queue.request({ source: 'cron' });
  await turns();
  void queue.request({ source: 'cron' });
  engine.last.finish();
  await turns();
  order.push(`takes ${engine.calls.length}`);
  expect(order).toEqual(['prune 3', 'takes 1']); // the second waits for retention
  pruned.resolve([4, 5]);
  await turns();
  expect(engine.calls).toHaveLength(2);
  expect(events.filter((e) => e.type === 'pruned')).toEqual([{ type: 'pruned', ids: [4, 5] }]);
});

test('a failed prune is reported and the queue carries on', async () => {
  const prune = jest.fn(async (): Promise<number[]> => { throw new Error('catalog: EIO'); });
  const { engine, queue, events } = setup({ keep: 1, prune });
  const a = track(queue.request({ source: 'cron', wait: true }));
  await turns();
  engine.last.finish();
  await turns();
  expect(a.value).toEqual(engine.calls[0].done());
  expect(events.at(-1)).toEqual({ type: 'prune-failed', error: new Error('catalog: EIO') });
  const b = track(queue.request({ source: 'cron' }));
  await turns();
  engine.last.finish();
  await turns();
  expect(b.value).toEqual({ id: 2, label: null });
});

test('close(): new requests are refused, queued ones are served; drain() waits for them', async () => {
  const prune = jest.fn(async () => [] as number[]);
  const { engine, queue } = setup({ keep: 5, prune });
  await expect(queue.drain()).resolves.toBeUndefined(); // idle
  const running = track(queue.request({ source: 'signal' }));
  await turns();
  const queued = track(queue.request({ label: 'last', source: 'exit', wait: true }));
  queue.close();
  expect(queue.closed).toBe(true);
  await expect(queue.request({ source: 'socket' })).rejects.toThrow(new SnapshotError('the session is ending'));
  const drained = track(queue.drain());
  engine.last.freeze();
  await turns();
  expect(running.value).toEqual({ id: 1, label: null });
  expect(drained.settled).toBe(false); // snapshot 1 is not durable yet
  engine.last.commit();
  await turns();
  expect(drained.settled).toBe(false);
  engine.last.finish();
  await turns();
  expect(queued.value).toEqual(engine.calls[1].done());
  expect(drained.settled).toBe(true);
  expect(prune).toHaveBeenCalledTimes(2);
});

test('drain() resolves after failures too', async () => {
  const { engine, queue } = setup();
  const a = track(queue.request({ source: 'signal' }));
  const drained = track(queue.drain());
  await turns();
  engine.last.taken.reject(new Error('no'));
  await turns();
  expect(a.error?.message).toBe('no');
  expect(drained.settled).toBe(true);
});

test.each([
  ['', 'a label must not be empty'],
  ['12', 'a label must not be a number (it would read as a snapshot id)'],
  [' x', 'a label must not begin or end with white space'],
  ['a\nb', 'a label must not contain control characters'],
  ['x'.repeat(129), 'a label is at most 128 bytes'],
  ['é'.repeat(65), 'a label is at most 128 bytes'],
])('label %j is refused: %s', async (label, why) => {
  const { engine, queue } = setup();
  await expect(queue.request({ label, source: 'socket' })).rejects.toThrow(`invalid label ${JSON.stringify(label)}: ${why}`);
  await turns();
  expect(engine.calls).toHaveLength(0);
});

test('many concurrent requesters: every one answered, with a snapshot frozen after it asked', async () => {
  // The delays are the stress itself (freezes and commits landing in random orders
  // against the requests), not waits for anything: random, from a printed seed.
  const rng = prng(testSeed('queue: many concurrent requesters'));
  const engine = new FakeEngine();
  let clock = 0;
  const startedAt = new Map<number, number>();
  const take = (label: string | null): Promise<SnapshotOutcome> => {
    const p = engine.take(label);
    const call = engine.last;
    startedAt.set(call.id, ++clock);
    const ms = (): number => rng.below(3);
    setTimeout(() => {
      if (call.id % 7 === 0) {
        call.taken.reject(new Error(`freeze ${call.id} failed`));
        return;
      }
      call.freeze();
      setTimeout(() => (call.id % 5 === 0 ? call.durable.reject(new Error('EIO')) : call.commit()), ms());
    }, ms());
    return p;
  };
  const queue = new SnapshotQueue(take);
  const labels = [null, null, null, 'a', 'b'];
  const asks: Promise<void>[] = [];
  const results: { label: string | null; wait: boolean; asked: number; answer?: SnapshotAnswer; error?: SnapshotError }[] = [];
  for (let i = 0; i < 300; i++) {
    const r = { label: labels[i % labels.length], wait: i % 3 === 0, asked: clock };
    results.push(r);
    asks.push(queue.request({ label: r.label, wait: r.wait, source: 'socket' })
      .then((answer) => { (r as typeof results[0]).answer = answer; }, (err: SnapshotError) => { (r as typeof results[0]).error = err; }));
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1)); // requests spread over the freezes and commits
  }
  await Promise.all(asks);
  await queue.drain();
  expect(engine.maxActive).toBe(1);
  expect(engine.calls.length).toBeLessThan(300);
  for (const r of results) {
    const id = r.answer?.id ?? r.error?.id ?? null;
    expect(r.answer === undefined).toBe(r.error !== undefined);
    if (r.answer) {
      expect(r.answer.label).toBe(r.label);
      expect('stats' in r.answer).toBe(r.wait);
    }
    if (id !== null) {
      expect(engine.calls[id - 1].label).toBe(r.label);
      expect(startedAt.get(id)).toBeGreaterThan(r.asked); // frozen after the request
    } else {
      expect(r.error?.message).toMatch(/^freeze \d+ failed$/);
    }
    if (r.error && r.error.id !== null) {
      expect(r.wait).toBe(true);
      expect(r.error.message).toBe(`snapshot ${r.error.id}: EIO`);
    }
  }
});

test('the constructor checks keep', () => {
  const take = async (): Promise<SnapshotOutcome> => { throw new Error('unused'); };
  expect(() => new SnapshotQueue(take, { keep: 3 })).toThrow('keep needs a prune callback');
  expect(() => new SnapshotQueue(take, { keep: 0, prune: async () => [] })).toThrow('keep must be a positive integer, got 0');
  expect(() => new SnapshotQueue(take, { keep: 1.5, prune: async () => [] })).toThrow('keep must be a positive integer, got 1.5');
});

describe('snapshotOp (the control socket\'s op)', () => {
  test('passes label and wait on, as a socket request', async () => {
    const request = jest.fn(async () => ({ id: 4, label: 'x' }));
    const op = snapshotOp({ request } as unknown as SnapshotQueue);
    await expect(op({ id: 1, op: 'snapshot', label: 'x', wait: true })).resolves.toEqual({ id: 4, label: 'x' });
    await op({ id: 2, op: 'snapshot' });
    await op({ id: 3, op: 'snapshot', label: null });
    expect(request.mock.calls).toEqual([
      [{ label: 'x', wait: true, source: 'socket' }],
      [{ label: null, wait: false, source: 'socket' }],
      [{ label: null, wait: false, source: 'socket' }],
    ]);
  });

  test.each([
    [{ lable: 'x' }, "unknown parameter 'lable' (valid: label, wait)"],
    [{ label: 3 }, '"label" must be a string'],
    [{ wait: 'yes' }, '"wait" must be true or false'],
  ])('%j is refused', async (params, message) => {
    const { engine, queue } = setup();
    await expect(snapshotOp(queue)({ id: 1, op: 'snapshot', ...params })).rejects.toThrow(message);
    await turns();
    expect(engine.calls).toHaveLength(0);
  });
});

// The engine → checksum worker channel for frame warming (backing/frame-warmer.ts says
// why), both ends. The engine publishes, per virtual node, how many frames from frame 0
// are worth reading before a copy writes them, and whether to hold off (a snapshot is
// under way: its CRCs and sync come first); the worker publishes how far it has read.
// Shared memory and no wake-ups: the worker looks whenever it is idle (it sleeps a second
// at most), and the engine never waits for it.
//
//   Uint32 [HOLD] 1 while the engine asks the worker not to warm; then per slot
//   [GOAL, DONE]: frames [0, DONE) have been read once, [DONE, GOAL) are to be read.
//   GOAL only grows; DONE only grows, and only up to GOAL. One writer each: GOAL and HOLD
//   the engine, DONE the worker. Frame indexes are below 2^32 (backing/frames.ts).
const HOLD = 0;
const HEADER = 1;

/** The shared words for `slots` virtual nodes. */
export function warmGoalsBuffer(slots: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (HEADER + 2 * slots));
}

/** The engine's end. */
export class WarmGoals {
  private readonly words: Uint32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Uint32Array(buffer);
  }

  hold(on: boolean): void {
    Atomics.store(this.words, HOLD, on ? 1 : 0);
  }

  /** Frames [0, goal) of `slot` are to be warmed (a goal below the last one is ignored). */
  setGoal(slot: number, goal: number): void {
    const i = HEADER + 2 * slot;
    if (goal > Atomics.load(this.words, i)) Atomics.store(this.words, i, goal);
  }

  /** Frames of `slot` the worker has read once, from frame 0. */
  warmed(slot: number): number {
    return Atomics.load(this.words, HEADER + 2 * slot + 1);
  }
}

/** The worker's end. */
export class WarmWork {
  private readonly words: Uint32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Uint32Array(buffer);
  }

  /** One of the `usable` slots with frames to read and no hold, as [slot, from, count], or undefined. */
  next(usable: readonly boolean[]): [number, number, number] | undefined {
    if (Atomics.load(this.words, HOLD) !== 0) return undefined;
    for (let s = 0; s < usable.length; s++) {
      if (!usable[s]) continue;
      const goal = Atomics.load(this.words, HEADER + 2 * s);
      const done = Atomics.load(this.words, HEADER + 2 * s + 1);
      if (done < goal) return [s, done, goal - done];
    }
    return undefined;
  }

  /** `count` more frames of `slot` read. */
  advance(slot: number, count: number): void {
    const i = HEADER + 2 * slot + 1;
    Atomics.store(this.words, i, Atomics.load(this.words, i) + count);
  }
}

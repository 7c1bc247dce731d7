// Stepped computations: work written as a generator that yields between steps, so that a
// caller with other duties (the engine thread serving faults) runs one step at a time,
// and a caller without them runs it whole with drain.

/** Runs a stepped (generator) computation to its end. */
export function drain<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

// What the session's snapshot requests wait for on the tracer's side: the program's
// start, then the freeze of their snapshot.
import { NO_PROCESS, SnapshotError } from '../src/snapshot/queue-api.js';

/**
 * The program's spawn, which a snapshot request waits for. The control socket is up and
 * the schedules run a few milliseconds before the program has a pid: a request then (a
 * client quick off the mark, a tick) would find no process to freeze and fail with "no
 * process of the session is running" while the program is about to run. reach() again
 * once the program has ended (or never started): what still waits goes on, and fails so.
 */
export class ProgramStart {
  reach: () => void = () => undefined;
  readonly reached = new Promise<void>((resolve) => { this.reach = resolve; });
}

/** Snapshot ids the tracer has frozen, and what waits for them. */
export class FreezeWaiters {
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  wait(id: number): Promise<void> {
    const frozen = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    // A take() that could not ring leaves its waiter here unawaited; failAll must not
    // make that an unhandled rejection (which ends Node).
    frozen.catch(() => undefined);
    return frozen;
  }

  frozen(id: number): void {
    this.waiting.get(id)?.resolve();
    this.waiting.delete(id);
  }

  /** The tracer found no process to freeze for `id`. */
  failed(id: number): void {
    this.waiting.get(id)?.reject(new SnapshotError(NO_PROCESS, { noProcess: true }));
    this.waiting.delete(id);
  }

  /** The tracer has ended: what it has not answered, it never will (no process is left). */
  failAll(): void {
    for (const id of [...this.waiting.keys()]) this.failed(id);
  }
}

// Main thread → engine: the MainMailbox, both ends. The engine thread sits in poll(2)
// over its userfaultfds and one eventfd (see tracer-engine.ts), so the main thread sets a
// request bit in shared memory and writes that eventfd; the engine answers with
// postMessage (engine-messages.ts), which does not need the engine's event loop.
//
// Layout: Int32 [0] request bits (1 << MainRequest), [1] the value posted with Prune.
import { eventfdSignal } from '../sys/eventfd.js';

/**
 * Main thread → engine: a request flag in shared memory plus the eventfd; the engine
 * answers with postMessage (sending does not need the engine's event loop). Requests
 * are coalesced: several status requests before the engine looks are answered once.
 */
export enum MainRequest {
  Stats = 1,
  Shutdown = 2,
  /** --keep: delete the oldest unlabelled snapshots beyond the number in slot 1. */
  Prune = 3,
  /** Stage the dirty pages for the next snapshot (the engine answers 'prepared'). */
  Prepare = 4,
}

export class MainMailbox {
  private readonly flags: Int32Array;

  constructor(readonly sab: SharedArrayBuffer, private readonly eventFd?: number) {
    this.flags = new Int32Array(sab);
  }

  post(req: MainRequest, value = 0): void {
    if (req === MainRequest.Prune) Atomics.store(this.flags, 1, value);
    Atomics.or(this.flags, 0, 1 << req);
    if (this.eventFd !== undefined) eventfdSignal(this.eventFd);
  }

  /** The value posted with a request (engine side). */
  value(): number {
    return Atomics.load(this.flags, 1);
  }

  /** Takes every posted request (engine side). */
  take(): number {
    return Atomics.exchange(this.flags, 0, 0);
  }
}

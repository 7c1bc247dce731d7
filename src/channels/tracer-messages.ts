// Main thread ↔ tracer worker messages, both ends: what the main thread starts the tracer
// with (TracerStart, as workerData), and the events the tracer posts back (postToMain on
// the tracer's side, onTracerEvent on the main thread's). The worker owns the program's
// process: it spawns it and is the only thread that waits for it. (Only a program on a
// virtual node has a tracer; on real nodes only, numactlx execs it.) Snapshot requests reach
// the tracer through the doorbell (doorbell.ts), not as messages: it sits in waitpid.
import { parentPort, type Worker } from 'node:worker_threads';
import type { MemoryPolicy } from '../../policy/placement.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { KernelFeatures } from '../kerndat/features.js';

/** What the tracer needs when the program runs with virtual nodes (traced mode). */
export interface TracedSetup {
  channel: SharedArrayBuffer;
  eventFd: number;
  /** The launch policy when it names a virtual node. */
  policy: PagePolicy | undefined;
  virtualNodes: number[];
  allowedReal: number[];
  doorbell: SharedArrayBuffer;
  snapshotOnExit: boolean;
  /** The kernel features the session has (src/kerndat/, probed once by the main thread). */
  features: KernelFeatures;
  /** --max-resident: the eviction channel (evict-request.ts), when a node has a resident limit. */
  evict?: SharedArrayBuffer;
}

export interface TracerStart {
  /** Applied to the worker thread before spawning, so the program inherits it. */
  kernelPolicy?: MemoryPolicy;
  cpus?: number[];
  program: string[];
  env: string[];
  /** Signals reset to SIG_DFL in the program (all but those numactlx inherited ignored). */
  defaultSignals: number[];
  /** Signals the program must start with ignored (numactlx inherited them ignored). */
  ignoredSignals: number[];
  /** The session's side of the tracer (the program always runs traced here). */
  traced: TracedSetup;
}

export type TracerEvent =
  | { type: 'spawned'; pid: number }
  | { type: 'setup-failed'; what: string; errno: number; code: string; message?: string }
  | { type: 'stopped'; signal: number }
  | { type: 'continued' }
  | { type: 'exited'; code: number }
  | { type: 'killed'; signal: number; core: boolean }
  /** The tracer's loop threw (it killed the program): what, and where (shown with NUMACTLX_DEBUG=1). */
  | { type: 'tracer-failed'; message: string; stack?: string }
  | { type: 'frozen'; id: number; pause_ms: number; pages: number }
  /** A snapshot request the tracer took with no process left to freeze. */
  | { type: 'freeze-failed'; id: number; message: string }
  | { type: 'exit-snapshot' };

/** The tracer thread's end: one event to the main thread. */
export function postToMain(ev: TracerEvent): void {
  parentPort!.postMessage(ev);
}

/** The main thread's end: every event the tracer worker posts. */
export function onTracerEvent(worker: Worker, handler: (ev: TracerEvent) => void): void {
  worker.on('message', handler);
}

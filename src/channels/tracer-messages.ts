// Main thread ↔ tracer worker messages, both ends: what the main thread starts the tracer
// with (TracerStart, as workerData), and the events the tracer posts back (postToMain on
// the tracer's side, onTracerEvent on the main thread's). The worker owns the program's
// process: it spawns it and is the only thread that waits for it. (Only a program on a
// virtual node has a tracer; on real nodes only, numactlx execs it.) Snapshot requests reach
// the tracer through the doorbell (doorbell.ts), not as messages: it sits in waitpid.
import { parentPort, type Worker } from 'node:worker_threads';
import type { MemoryPolicy } from '../../policy/placement.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { KernelFeatures, SnapshotCapture } from '../kerndat/features.js';

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
  /** 'fork': each freeze makes every process fork a held child (src/tracer-thread/capture-fork.ts). */
  capture: SnapshotCapture;
  /** --max-resident: the eviction channel (evict-request.ts), when a node has a resident limit. */
  evict?: SharedArrayBuffer;
}

export interface TracerStart {
  /** Where the worker waits, once loaded, until the session is ready for the program (TracerGate). */
  gate: SharedArrayBuffer;
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
  /** A snapshot request the tracer took with no process left to freeze (NO_PROCESS). */
  | { type: 'freeze-failed'; id: number }
  | { type: 'exit-snapshot' };

/**
 * The tracer worker is started together with the engine worker: each is a Node start-up
 * that loads koffi (≈ 50–150 ms here), and one after the other they were most of
 * numactlx's start-up. Loaded, the tracer waits at this gate — its thread never returns
 * to its event loop, so a word in shared memory, not a message — until the main thread
 * opens it (the engine has opened the backings, the control socket listens) or tells it
 * to quit (the session failed before the program started: the worker then ends by
 * itself; a worker terminated while it loads koffi aborts Node with napi_throw).
 */
export class TracerGate {
  static readonly BYTES = 4;
  private static readonly CLOSED = 0;
  private static readonly OPEN = 1;
  private static readonly QUIT = 2;
  private readonly word: Int32Array;

  constructor(readonly sab: SharedArrayBuffer = new SharedArrayBuffer(TracerGate.BYTES)) {
    this.word = new Int32Array(sab);
  }

  /** Main thread: the program may start. */
  open(): void {
    Atomics.store(this.word, 0, TracerGate.OPEN);
    Atomics.notify(this.word, 0);
  }

  /** Main thread: no program will start; the worker ends once loaded. */
  quit(): void {
    Atomics.store(this.word, 0, TracerGate.QUIT);
    Atomics.notify(this.word, 0);
  }

  /** Tracer worker: blocks until opened (true) or told to quit (false). */
  pass(): boolean {
    while (Atomics.load(this.word, 0) === TracerGate.CLOSED) Atomics.wait(this.word, 0, TracerGate.CLOSED);
    return Atomics.load(this.word, 0) === TracerGate.OPEN;
  }
}

/** The tracer thread's end: one event to the main thread. */
export function postToMain(ev: TracerEvent): void {
  parentPort!.postMessage(ev);
}

/** The main thread's end: every event the tracer worker posts. */
export function onTracerEvent(worker: Worker, handler: (ev: TracerEvent) => void): void {
  worker.on('message', handler);
}

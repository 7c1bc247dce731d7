// Messages between the main thread and the tracer worker. The worker owns the
// program's process: it spawns it and is the only thread that waits for it.
import type { MemoryPolicy } from '../../policy/placement.js';
import type { PagePolicy } from '../engine/ranges.js';

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
  /** Present when the program runs under ptrace with virtual nodes. */
  traced?: TracedSetup;
}

export type TracerEvent =
  | { type: 'spawned'; pid: number }
  | { type: 'setup-failed'; what: string; errno: number; code: string }
  | { type: 'stopped'; signal: number }
  | { type: 'continued' }
  | { type: 'exited'; code: number }
  | { type: 'killed'; signal: number; core: boolean }
  | { type: 'tracer-failed'; message: string }
  | { type: 'frozen'; id: number; pause_ms: number; pages: number }
  /** A snapshot request the tracer took with no process left to freeze. */
  | { type: 'freeze-failed'; id: number; message: string }
  | { type: 'exit-snapshot' };

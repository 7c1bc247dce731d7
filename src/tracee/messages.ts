// Messages between the main thread and the tracer worker. The worker owns the
// program's process: it spawns it and is the only thread that waits for it.
import type { MemoryPolicy } from '../../policy/placement.js';

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
}

export type TracerEvent =
  | { type: 'spawned'; pid: number }
  | { type: 'setup-failed'; what: string; errno: number; code: string }
  | { type: 'stopped'; signal: number }
  | { type: 'continued' }
  | { type: 'exited'; code: number }
  | { type: 'killed'; signal: number; core: boolean };

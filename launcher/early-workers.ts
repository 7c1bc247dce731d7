// The engine and tracer workers started at numactlx's first line, before its own modules
// load, when the command line is a run with --remap: Node's start-up of each thread and
// its modules (≈ 50–80 ms each here, more under load) then overlap the main thread's
// (its module graph, the option parser, the session's modules) instead of following
// them (docs/BENCHMARKS.md §4). Each waits for its start as a message; the session takes
// them (engine-handle.ts, run-program.ts EarlyTracer). Not taken — the guess was wrong
// (`--remap` with --show, a usage error) — they keep nothing alive and end with numactlx.
//
// Light on purpose: bin/numactlx.js imports this before anything else.
import { Worker } from 'node:worker_threads';
import { startWorker } from './worker.js';

export const ENGINE_WORKER = new URL('../src/engine-thread/engine-worker.js', import.meta.url);
export const TRACER_WORKER = new URL('../src/tracer-thread/tracer-worker.js', import.meta.url);

const early: { engine?: Worker; tracer?: Worker } = {};
/** Workers that failed before they were taken (their modules did not load): not handed out. */
const failed = new Set<Worker>();

/** A verb's name first, or no --remap (any unique prefix of it) before the program: no session. */
function wantsSession(argv: readonly string[]): boolean {
  if (argv.length === 0 || /^[a-z]/.test(argv[0])) return false;
  for (const a of argv) {
    if (a === '--' || !a.startsWith('-')) return false;
    if (/^--rem/.test(a)) return true;
  }
  return false;
}

/** Starts both workers when `argv` (numactlx's arguments) asks for a session. */
export function startEarlyWorkers(argv: readonly string[]): void {
  if (!wantsSession(argv)) return;
  early.engine = startWorker(ENGINE_WORKER, undefined);
  early.tracer = startWorker(TRACER_WORKER, undefined);
  for (const w of [early.engine, early.tracer]) {
    w.unref();
    w.once('error', () => failed.add(w));
  }
}

/** The early engine worker, once (undefined: none was started). */
export function takeEarlyEngine(): Worker | undefined {
  const w = early.engine;
  early.engine = undefined;
  return w && !failed.has(w) ? w : undefined;
}

/** The early tracer worker, once. */
export function takeEarlyTracer(): Worker | undefined {
  const w = early.tracer;
  early.tracer = undefined;
  return w && !failed.has(w) ? w : undefined;
}

// The engine and tracer workers, started at numactlx's first line (entry.ts) when
// the command line asks for a virtual node: each worker is another Node isolate that loads
// its module graph and koffi (≈ 110–165 ms here), and started early it does so while the
// main thread loads its own graph and parses the command line, instead of after
// (docs/BENCHMARKS.md §4e). The session takes them (workerFor) and sends their start data
// (src/channels/worker-start.ts); those it does not take are told to quit before numactlx
// exits (endUnused). Without an early start, workerFor starts the worker as it always did.
import fs from 'node:fs';
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { debugging } from './debug.js';
import { startWorker } from './worker.js';
import { EARLY, sendQuit, sendStart } from '../src/channels/worker-start.js';
import { ENGINE_WORKER, TRACER_WORKER } from './own-files.js';

interface EarlyWorker {
  worker: Worker;
  /** It ended or failed before the session took it: not used, a new one is started instead. */
  broken: boolean;
  exited: Promise<void>;
}

const early = new Map<string, EarlyWorker>();

/**
 * Whether a command line will (most likely) run a session: an option spelled --remap (or
 * a unique prefix of it, down to --rem) before `--`. A wrong guess costs only time (a
 * program's own `--remap` argument after its name, without `--`): a worker not needed is
 * told to quit, and a session not guessed starts its workers itself.
 */
export function asksForVirtualNode(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (/^--rem(a|ap)?(=|$)/.test(arg)) return true;
  }
  return false;
}

/**
 * entry.ts: starts the two workers when the command line asks for a virtual node
 * and numactlx may run on more than one CPU. On one (taskset -c 0) nothing overlaps, and
 * three isolates loading at once only took turns: 590 ms against 571 (§4e).
 */
export function startEarly(argv: readonly string[]): void {
  if (!asksForVirtualNode(argv) || os.availableParallelism() < 2) return;
  for (const url of [ENGINE_WORKER, TRACER_WORKER]) {
    const worker = startWorker(url, EARLY);
    const entry: EarlyWorker = { worker, broken: false, exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
    // Errors and exits before the session listens would be lost: mark the worker instead.
    worker.once('error', () => { entry.broken = true; });
    void entry.exited.then(() => { entry.broken = true; });
    early.set(url.href, entry);
  }
}

/** The worker for url with its start data: the early one if there is one in order, else a new one. */
export function workerFor(url: URL, start: unknown): Worker {
  const entry = early.get(url.href);
  early.delete(url.href);
  if (!entry || entry.broken) {
    if (entry) void endWorker(url, entry);
    return startWorker(url, start);
  }
  tell(url, 'started early, taken by the session');
  sendStart(entry.worker, start);
  return entry.worker;
}

function endWorker(url: URL, entry: EarlyWorker): Promise<void> {
  tell(url, entry.broken ? 'started early, ended before it was needed' : 'started early, not needed: told to quit');
  if (!entry.broken) sendQuit(entry.worker);
  return entry.exited;
}

/** NUMACTLX_DEBUG=1: what became of an early worker (test/launcher/early-workers.test.ts). */
function tell(url: URL, what: string): void {
  if (debugging()) fs.writeSync(2, `numactlx: ${url.pathname.replace(/^.*\/|\.js$/g, '')}: ${what}\n`);
}

/** Before numactlx exits: the early workers no session took end by themselves; resolves when they have. */
export async function endUnused(): Promise<void> {
  const left = [...early];
  early.clear();
  await Promise.all(left.map(([href, entry]) => endWorker(new URL(href), entry)));
}

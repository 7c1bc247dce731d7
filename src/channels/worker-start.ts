// Main thread → worker: how a worker thread (engine, tracer) gets its start data. Both
// ends are here.
//
// A worker started by the session has it in workerData. A worker started early — at
// numactlx's first line, for a command line that will run a session
// (launcher/early-workers.ts), so that its isolate, its module graph and koffi load while
// the main thread loads its own (≈ 50 + 60–110 ms each on this VM, docs/BENCHMARKS.md
// §4e) — has the marker EARLY in workerData and waits, loaded, for the main thread's first
// message: the start data, or QUIT when no session came of that command line (an error,
// --show). Such a worker then ends by itself: a worker terminated while it still loads
// koffi aborts Node (napi_throw), so the main thread never terminates one.
import { parentPort, workerData, type Worker } from 'node:worker_threads';

export const EARLY = 'numactlx: started early, start data to follow';
const QUIT = 'quit';

type StartMessage<T> = { start: T } | typeof QUIT;

/**
 * Worker side: the start data. A worker started early waits for it here; told to quit, it
 * ends its thread (process.exit in a worker ends the worker only) and this never resolves.
 */
export async function workerStart<T>(): Promise<T> {
  if (workerData !== EARLY) return workerData as T;
  const message = await new Promise<StartMessage<T>>((resolve) => parentPort!.once('message', resolve));
  if (message === QUIT) process.exit(0);
  return message.start;
}

/** Main side: gives an early worker its start data. */
export function sendStart<T>(worker: Worker, start: T): void {
  worker.postMessage({ start } satisfies StartMessage<T>);
}

/** Main side: tells an early worker that no session needs it. */
export function sendQuit(worker: Worker): void {
  worker.postMessage(QUIT satisfies StartMessage<never>);
}

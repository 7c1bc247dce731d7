// Starting numactlx's worker threads without touching the program's stdio.
//
// A Worker created with Node's defaults forwards its stdout/stderr to the parent's
// process.stdout/stderr, and initialising those streams makes fds 1 and 2 O_NONBLOCK —
// on the open file description the program shares: `yes | head` would then fail with
// EAGAIN. Workers here get their own streams, copied to fd 2 with blocking writes.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';

export function startWorker(url: URL, workerData: unknown): Worker {
  const worker = new Worker(url, { workerData, stdout: true, stderr: true });
  const copy = (chunk: Buffer): void => {
    try {
      fs.writeSync(2, chunk);
    } catch {
      // stderr closed: nothing to tell
    }
  };
  worker.stdout.on('data', copy);
  worker.stderr.on('data', copy);
  return worker;
}

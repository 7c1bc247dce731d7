// numactlx's own output (not the program's): what the verbs and the launcher print, on
// fds 1 and 2, written synchronously with blocking semantics. Node's process.stdout would
// report a failed write as an 'error' event after the fact (an EPIPE stack trace), and
// initialising it makes a shared pipe O_NONBLOCK for the program (see worker.ts); these
// functions never touch it. A failed write to stdout throws OutputError, which run() turns
// into the end coreutils would have (ending.ts); stderr is best effort (nowhere to report).
import fs from 'node:fs';
import os from 'node:os';
import { poll, POLLOUT, POLLFD_SIZE } from '../src/sys/eventfd.js';

/** Writing numactlx's output failed: `code` is the errno name (EPIPE, ENOSPC, EIO…). */
export class OutputError extends Error {
  readonly code: string;
  readonly errno: number;

  constructor(code: string, errno: number) {
    super(`write error: ${code}`);
    this.name = 'OutputError';
    this.code = code;
    this.errno = errno;
  }
}

/** Waits until `fd` (O_NONBLOCK, inherited so) can take more. */
function waitWritable(fd: number): void {
  const pfd = Buffer.alloc(POLLFD_SIZE);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLOUT, 4);
  poll(pfd, 1, -1);
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let done = 0; done < buf.length;) {
    try {
      done += fs.writeSync(fd, buf, done);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EAGAIN') waitWritable(fd);
      else if (e.code !== 'EINTR') throw new OutputError(e.code ?? 'EIO', -(e.errno ?? 0));
    }
  }
}

let stdoutClosed = false;

/**
 * numactlx was started with fd 1 closed. Node opened /dev/null on it (and the fd must
 * stay taken, or a file numactlx opens next would become its stdout); printing fails with
 * EBADF instead, as it would have.
 */
export function markStdoutClosed(): void {
  stdoutClosed = true;
}

/** Prints to stdout; throws OutputError when the write fails. */
export function printOut(text: string): void {
  if (stdoutClosed) throw new OutputError('EBADF', os.constants.errno.EBADF);
  writeAll(1, text);
}

/** Prints to stderr, best effort: a failed write is dropped. */
export function printErr(text: string): void {
  try {
    writeAll(2, text);
  } catch {
    // stderr closed or full: nothing to tell, and nowhere to tell it
  }
}

// How numactlx itself ends when it does not end with a status: by a signal (the program's
// death, passed on), or on an error writing its own output — as coreutils end: a closed
// pipe (EPIPE) ends the writer by SIGPIPE, unless SIGPIPE was inherited ignored, and then,
// like any other write error (ENOSPC on /dev/full, EIO), it is one line and status 1:
//
//   $ numactlx diff IMG 1 5 | head -1      # numactlx killed by SIGPIPE (141 in the shell)
//   $ numactlx --help >/dev/full           numactlx: write error: ENOSPC (No space left on device)
import os from 'node:os';
import { OutputError, printErr } from './output.js';
import { signalName, sigset } from '../src/sys/signal.js';
import { disableCoreDumps, raiseSignal, resetSignalToDefault } from '../src/sys/process.js';
import { errnoText } from '../src/sys/libc.js';

/**
 * Ends numactlx by `sig`, as if numactl had exec'd the program that died by it: restore
 * the default action, no core file of numactlx itself, raise it. If the signal does not
 * terminate (its default is to ignore), exit with 128 + signal.
 */
export function dieBySignal(sig: number): never {
  // A signal Node has no name for (a real-time one) has no listener to remove.
  process.removeAllListeners(signalName(sig));
  resetSignalToDefault(sig);
  disableCoreDumps();
  raiseSignal(sigset([sig]), sig);
  process.exit(128 + sig);
}

/**
 * The end for a failed write of numactlx's output: SIGPIPE for a closed pipe (never
 * returns), else one line on stderr and status 1. `sigpipeIgnored`: numactlx inherited
 * SIGPIPE ignored (then, as for coreutils, EPIPE is an error like the others).
 */
export function endOnOutputError(err: OutputError, sigpipeIgnored: boolean): number {
  if (err.code === 'EPIPE' && !sigpipeIgnored) dieBySignal(os.constants.signals.SIGPIPE);
  printErr(`numactlx: write error: ${err.code} (${errnoText(err.errno)})\n`);
  return 1;
}

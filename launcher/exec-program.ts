// Running a program on real nodes only, as numactl does: numactlx's main thread takes on
// the memory policy and CPU binding, gives back the process state Node changed at
// start-up (inherited.ts), and execs the program in numactlx's own process. The program
// keeps numactlx's pid, parent, session and descriptors; nothing of numactlx stays
// resident (execve ends Node's other threads), so there is nothing to forward signals
// to, nothing to wait for and nothing left behind if either is killed.
//
// Order matters: the placement first (it can fail, and numactlx then still reports with
// Node's dispositions); the signal state last, right before execve, so that a signal
// arriving in between acts as it would on numactl about to exec: by its default action.
import fs from 'node:fs';
import os from 'node:os';
import { FORWARDED_SIGNALS, takeHeld } from './early-signals.js';
import { SetupError } from './errors.js';
import { inheritedDispositions, programEnv, type Inherited } from './inherited.js';
import { PlacementError, takePlacement } from '../src/placement/take-placement.js';
import { execvpe } from '../src/sys/exec.js';
import { close, setCloseOnExec } from '../src/sys/fcntl.js';
import { RLIMIT_NOFILE, setSoftRlimit } from '../src/sys/process.js';
import { setSignalDisposition, setSignalMask, tgkill } from '../src/sys/signal.js';
import { errnoText, SysError } from '../src/sys/libc.js';
import type { MemoryPolicy } from '../policy/placement.js';

export interface ExecStart {
  /** Applied to the main thread before execve (undefined: the kernel's policy is left alone). */
  kernelPolicy?: MemoryPolicy;
  cpus?: number[];
  program: string[];
}

/** Lets pending signal notifications reach their JavaScript listeners (early-signals). */
function drainSignalEvents(): Promise<void> {
  // libuv reads its signal pipe in the poll phase, before the check phase's setImmediate.
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Gives back the inherited process state that execve would otherwise not restore: the
 * open-file limit, and the descriptors — exactly those numactlx was given survive the exec.
 */
function restoreInherited(inherited: Inherited): void {
  if (inherited.nofile !== undefined) setSoftRlimit(RLIMIT_NOFILE, inherited.nofile);
  // Not started by bin/numactlx: the stdio at least (Node set FD_CLOEXEC on it).
  const given = new Set(inherited.fds ?? [0, 1, 2]);
  for (const fd of fs.readdirSync('/proc/self/fd').map(Number)) {
    try {
      if (given.has(fd)) setCloseOnExec(fd, false);
      else if (fd <= 2 && inherited.fds) close(fd); // closed when numactlx started; Node's /dev/null
      else if (inherited.fds) setCloseOnExec(fd, true); // numactlx's own (they all should have it)
    } catch (err) {
      // The listing's own descriptor, closed since.
      if (!(err instanceof SysError && err.code === 'EBADF')) throw err;
    }
  }
}

/**
 * Execs the program in this process. Resolves never: on success numactlx is the
 * program; a failure throws SetupError (placement refused, exec failed).
 */
export async function execProgram(start: ExecStart, inherited: Inherited): Promise<never> {
  try {
    takePlacement(start.kernelPolicy, start.cpus);
  } catch (err) {
    if (err instanceof PlacementError) throw new SetupError(`${err.what}: ${err.code} (${errnoText(err.errno)})`, { cause: err });
    throw err;
  }
  const env = programEnv(process.env);
  restoreInherited(inherited);

  await drainSignalEvents();
  // Signals sent to numactlx since its first line were counted, not acted on.
  const held = FORWARDED_SIGNALS.map((name) => ({ sig: os.constants.signals[name], count: takeHeld(name) }));
  const { defaultSignals, ignoredSignals } = inheritedDispositions(inherited);
  for (const sig of defaultSignals) setSignalDisposition(sig, 'default');
  for (const sig of ignoredSignals) setSignalDisposition(sig, 'ignore');
  setSignalMask(inherited.blocked ?? []);
  // Each held signal now acts as it would have on numactl: by its default action (this
  // process ends), ignored, or — blocked by the inherited mask — pending on this thread,
  // which execve keeps: the program gets it once it unblocks it.
  for (const { sig, count } of held) if (count > 0) tgkill(process.pid, process.pid, sig);

  try {
    return execvpe(start.program[0], start.program, env);
  } catch (err) {
    if (!(err instanceof SysError)) throw err;
    throw new SetupError(`execution of '${start.program[0]}': ${err.code} (${errnoText(err.errno)})`, { cause: err });
  }
}

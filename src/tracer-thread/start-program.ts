// Starting the program seized, before its first instruction.
//
// Start: posix_spawn of `sh -c 'kill -STOP $$; exec "$@"'`, waitpid(WUNTRACED),
// PTRACE_SEIZE with the options below, SIGCONT; the shell then execs the program and
// the first PTRACE_EVENT_EXEC is the program's. PTRACE_O_EXITKILL: if numactlx dies,
// the kernel kills the program rather than let it run on with zero pages where the
// backing held data. posix_spawn can reset a signal to its default but not make it
// ignored: signals that must arrive ignored (nohup, `cmd &`) are set by the shell.
import os from 'node:os';
import { PTRACE_O, seize } from '../sys/ptrace.js';
import { kill, killIfAlive } from '../sys/signal.js';
import { spawnProgram } from '../sys/spawn.js';
import { waitpid, WIFSTOPPED, WUNTRACED, __WALL } from '../sys/wait.js';
import { taskStatus } from './task-gone.js';
import { ForeignTracerError, isEperm } from './limits.js';

const { SIGCONT } = os.constants.signals;

/** The options of every task of the program (children inherit them at their fork or clone). */
export const TRACEE_OPTIONS = PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEEXEC | PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK
  | PTRACE_O.TRACEVFORK | PTRACE_O.TRACESECCOMP | PTRACE_O.TRACEEXIT | PTRACE_O.EXITKILL;

export interface ProgramStart {
  program: string[];
  env: string[];
  defaultSignals: number[];
  ignoredSignals: number[];
}

/** Spawns the start-up shell, seizes it and lets it exec the program; returns its pid. */
export function startSeized(start: ProgramStart): number {
  const { program, ignoredSignals } = start;
  const traps = ignoredSignals.length ? `trap '' ${ignoredSignals.join(' ')}; ` : '';
  const pid = spawnProgram({
    file: '/bin/sh', argv: ['sh', '-c', `${traps}kill -STOP $$; exec "$@"`, 'numactlx', ...program],
    env: start.env, defaultSignals: start.defaultSignals,
  });
  const { status } = waitpid(pid, WUNTRACED);
  if (!WIFSTOPPED(status)) throw new Error(`the start-up shell ended before the program started (status ${status})`);
  try {
    seize(pid, TRACEE_OPTIONS);
  } catch (err) {
    // Nothing may be left behind: the stopped shell would outlive numactlx, and a
    // tracer following it (strace -f) would wait for it for ever.
    const foreign = taskStatus(pid)?.tracerPid ?? 0;
    killIfAlive(pid);
    try { waitpid(pid, __WALL); } catch { /* reaped */ }
    if (isEperm(err) && foreign > 0) throw new ForeignTracerError(foreign, { cause: err });
    throw err;
  }
  kill(pid, SIGCONT);
  return pid;
}

// Starting the program seized, before its first instruction, and telling numactlx's own
// doorbell signal from the program's.
//
// Start: posix_spawn of `sh -c 'kill -STOP $$; exec "$@"'`, waitpid(WUNTRACED),
// PTRACE_SEIZE with the options below, SIGCONT; the shell then execs the program and
// the first PTRACE_EVENT_EXEC is the program's. PTRACE_O_EXITKILL: if numactlx dies,
// the kernel kills the program rather than let it run on with zero pages where the
// backing held data. posix_spawn can reset a signal to its default but not make it
// ignored: signals that must arrive ignored (nohup, `cmd &`) are set by the shell.
import os from 'node:os';
import { getSiginfo, PTRACE_O, seize, SIGINFO_OFFSET, siginfoHead } from '../sys/ptrace.js';
import { kill, killIfAlive, SI_QUEUE, SI_USER } from '../sys/signal.js';
import { spawnProgram } from '../sys/spawn.js';
import { waitpid, WIFSTOPPED, WUNTRACED, __WALL } from '../sys/wait.js';
import { COOKIE, DOORBELL_NUDGE_SIGNAL } from '../channels/doorbell.js';
import { EVICT_COOKIE } from '../channels/evict-request.js';
import { taskStatus } from './task-gone.js';
import { ForeignTracerError, isEperm } from './limits.js';

const { SIGCONT } = os.constants.signals;

const OPTIONS = PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEEXEC | PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK
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
    seize(pid, OPTIONS);
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

/**
 * What numactlx's own signal at a delivery stop is, from its siginfo: a 'ring' (a SI_QUEUE
 * SIGURG from this process with its cookie — the snapshot doorbell's or the engine's
 * eviction ring's, --max-resident), a 'nudge' (SIGSTOP sent by kill(2) from this process,
 * doorbell.ts), or undefined: the program's own.
 */
export function ourSignal(info: Buffer): 'ring' | 'nudge' | undefined {
  const { signo, code } = siginfoHead(info);
  if (info.readInt32LE(SIGINFO_OFFSET.pid) !== process.pid) return undefined;
  // si_value shares its offset with SIGCHLD's si_status (x86_64).
  const cookie = info.readInt32LE(SIGINFO_OFFSET.status);
  if (code === SI_QUEUE && (cookie === COOKIE || cookie === EVICT_COOKIE)) return 'ring';
  if (code === SI_USER && signo === DOORBELL_NUDGE_SIGNAL) return 'nudge';
  return undefined;
}

/** `tid`'s signal-delivery stop is numactlx's doorbell (ourSignal). */
export function isDoorbellStop(tid: number): boolean {
  return ourSignal(getSiginfo(tid)) !== undefined;
}

// A task of the program may end at any moment — killed, exiting, replaced by another
// thread's exec — including while the tracer works on it: between its stop being
// reported and the tracer resuming it, in the middle of an injected syscall, during a
// freeze. That is the program's business, never a reason to end the session: the
// tracer drops what it was doing for that task, and the task's end reaches it through
// waitpid like any other.
//
// Kernel facts:
// - A task in a ptrace-stop that gets SIGKILL leaves the stop at once (TASK_WAKEKILL):
//   every later ptrace request for it fails with ESRCH, whatever it is.
// - A task with a fatal signal pending does not stop at a ptrace event any more
//   (ptrace_stop() returns early since Linux 5.19): its fork/clone event, exit event
//   and so on are simply not reported; its death is.
// - A waitpid that is waiting for one task (the injection's single steps) consumes
//   whatever that task reports, its death included: that status must be handled by
//   the tracer as if its own waitpid had read it (TaskGone.status).
import fs from 'node:fs';
import { cont, getEventMsg, getSiginfo, siginfoHead } from '../sys/ptrace.js';
import { SysError } from '../sys/libc.js';
import { gettid } from '../sys/process.js';
import { readProcStatus } from '../sys/procfs.js';
import type { Tasks } from './state.js';

/** The task ended while the tracer worked on it. */
export class TaskGone extends Error {
  /**
   * @param status a waitpid status of the task that the tracer's loop has not seen and
   *   must still handle (its death, its exit stop); undefined when it comes later.
   */
  constructor(readonly tid: number, readonly status: number | undefined, message: string) {
    super(message);
    this.name = 'TaskGone';
  }
}

/** ESRCH from a call on a task: it is no longer in a ptrace-stop (killed, or gone). */
export function isEsrch(err: unknown): boolean {
  return err instanceof SysError && err.code === 'ESRCH';
}

/** PTRACE_CONT of a task that may have been killed in its stop (ESRCH): its end is reported to the loop all the same. */
export function contUnlessGone(tid: number): void {
  try {
    cont(tid);
  } catch (err) {
    if (!isEsrch(err)) throw err;
  }
}

/**
 * Whether `tid` is still in the ptrace-stop the tracer is handling. Any ptrace request
 * but a few checks that; PTRACE_GETEVENTMSG changes nothing. An error from work on a
 * task that is no longer stopped is its death's, not numactlx's.
 */
export function stillStopped(tid: number): boolean {
  try {
    getEventMsg(tid);
    return true;
  } catch (err) {
    if (isEsrch(err)) return false;
    throw err;
  }
}

/**
 * The event message of `tid`'s event stop `event` (a fork's child pid, an exec's former
 * tid). A task killed in that stop leaves it and stops again at its exit event, whose
 * message is its exit status (9 for SIGKILL) — a message read then is not the event's.
 * The stop's siginfo (si_code = event << 8 | SIGTRAP), read after the message, says
 * which stop it came from; another stop throws TaskGone: the event is lost, and the
 * exit stop is reported by waitpid like any other.
 */
export function eventMessage(tid: number, event: number): bigint {
  const message = getEventMsg(tid);
  const { code } = siginfoHead(getSiginfo(tid));
  if (code >> 8 !== event) throw new TaskGone(tid, undefined, `task ${tid} left its event stop ${event} (now at ${code >> 8})`);
  return message;
}

export interface TaskStatus {
  tgid: number;
  ppid: number;
  /** The task's tracer (a thread id), 0 when none. */
  tracerPid: number;
  /** The seccomp mode (2: a filter is installed). */
  seccomp: number;
}

/** A task's /proc/TID/status fields the tracer uses; undefined once it is reaped. */
export function taskStatus(tid: number): TaskStatus | undefined {
  const st = readProcStatus(tid);
  return st && { tgid: st.num('Tgid'), ppid: st.num('PPid'), tracerPid: st.num('TracerPid'), seccomp: st.num('Seccomp') };
}

/**
 * Whether processes are on the books and none of them is traced by this thread any more:
 * they all ended unseen (a bookkeeping error of numactlx's). One /proc read as long as
 * the first process on the books is traced.
 */
let tracerTid = 0; // this thread's (the tracer's) tid, asked once

export function noneTraced(tasks: Tasks): boolean {
  if (tasks.procs.size === 0) return false;
  const self = tracerTid ||= gettid();
  for (const pid of tasks.procs.keys()) if (taskStatus(pid)?.tracerPid === self) return false;
  return true;
}

/**
 * waitpid said ECHILD while processes are still on the books: no task is traced any
 * more, so they all ended without their deaths reaching the tracer's loop. Drops them
 * (and every thread) and returns their pids; what was left is shown with NUMACTLX_DEBUG=1.
 */
export function untracedLeft(tasks: Tasks, mainPid: number, mainStatus: number | undefined): number[] {
  const left = [...tasks.procs.keys()];
  if (process.env.NUMACTLX_DEBUG === '1') {
    const threads = [...tasks.threads.values()].map((t) => `${t.tid}/${t.proc.pid}${t.exiting ? ' exiting' : ''}`);
    fs.writeSync(2, `numactlx: debug: tracer: ECHILD with processes ${left.join(', ')} left; threads ${threads.join(', ')}; held ${[...tasks.held].join(', ')}; main ${mainPid}, its status ${mainStatus}\n`);
  }
  tasks.procs.clear();
  tasks.threads.clear();
  tasks.held.clear();
  return left;
}

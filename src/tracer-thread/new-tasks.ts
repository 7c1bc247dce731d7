// New tasks: what a fork, vfork or clone created, told by its creator's event stop
// (PTRACE_EVENT_FORK/VFORK/CLONE), and the children whose creator's event never comes.
//
// A new task's own first stop and its creator's event race: a first stop that comes
// first is held (not resumed) until the event says what the task is — a thread, a
// process with its own mm (fork) or one sharing its creator's (vfork, CLONE_VM) — so
// that no new task runs before the engine knows its mm. The event does not come when
// the creator is killed between creating the child and its event stop (a task with a
// fatal signal pending does not stop), nor is its child's pid readable when it is
// killed at the event stop. A thread child then dies with its group; a process child
// lives on, reparented: it is adopted once its parent is gone (adoptOrphans).
import os from 'node:os';
import { SYS } from '../sys/arch/index.js';
import { SysError } from '../sys/libc.js';
import { cont, getRegs, PTRACE_EVENT, readReg } from '../sys/ptrace.js';
import { killIfAlive } from '../sys/signal.js';
import { waitpid, WIFSTOPPED, __WALL, type WaitResult } from '../sys/wait.js';
import { CLONE_CHILD_CLEARTID, CLONE_THREAD, CLONE_VM } from '../sys/sched.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import { readRemote } from './remote.js';
import { Proc, Thread, type Tasks } from './state.js';
import { contUnlessGone, eventMessage, isEsrch, TaskGone, taskStatus } from './task-gone.js';
import { takeUserfaultfd, UserfaultfdRefused, type UffdSource } from './exec-setup.js';

/** /proc/PID/status Seccomp: mode 2 is a filter. */
const SECCOMP_MODE_FILTER = 2;

export type NewTaskKind = 'thread' | 'fork' | 'shares-mm';

export interface NewTask {
  kind: NewTaskKind;
  /** CLONE_CHILD_CLEARTID's address (a thread's), or 0n. */
  clearChildTid: bigint;
  /** CLONE_VFORK: the parent sleeps until the child execs or ends. */
  vfork?: boolean;
}

/**
 * What a PTRACE_EVENT_FORK or _CLONE created, from the clone arguments in the creator's
 * registers: clone(flags, stack, parent_tid, child_tid, tls) in rdi, rsi, rdx, r10, r8;
 * clone3(struct clone_args *) with flags at +0 and child_tid at +16. The event says
 * only how the child will tell its end: a clone with exit signal SIGCHLD is reported as
 * a FORK whatever its flags, so clone(CLONE_VM | SIGCHLD) — a process on its creator's
 * mm, running on — is one, and so would a thread made with SIGCHLD be.
 */
export function cloneKind(parentTid: number, event: number): NewTask {
  // CLONE_VFORK, whatever the other flags, is reported as PTRACE_EVENT_VFORK.
  if (event === PTRACE_EVENT.VFORK) return { kind: 'shares-mm', clearChildTid: 0n, vfork: true };
  const regs = getRegs(parentTid);
  const nr = Number(readReg(regs, 'orig_rax'));
  // fork(2) itself has no flags; a CLONE event from neither call is taken for a thread.
  let flags = event === PTRACE_EVENT.FORK ? 0n : CLONE_VM | CLONE_THREAD;
  let childTid = 0n;
  if (nr === SYS.clone3) {
    const args = readRemote(parentTid, readReg(regs, 'rdi'), 24);
    flags = args.readBigUInt64LE(0);
    childTid = args.readBigUInt64LE(16);
  } else if (nr === SYS.clone) {
    flags = readReg(regs, 'rdi');
    childTid = readReg(regs, 'r10');
  }
  const clearChildTid = flags & CLONE_CHILD_CLEARTID ? childTid : 0n;
  if (flags & CLONE_THREAD) return { kind: 'thread', clearChildTid };
  return { kind: flags & CLONE_VM ? 'shares-mm' : 'fork', clearChildTid };
}

/** Resumes a task that was held; false if it is gone (its death comes through waitpid). */
function release(tid: number): boolean {
  try {
    cont(tid);
    return true;
  } catch (err) {
    if (isEsrch(err)) return false;
    throw err;
  }
}

/**
 * A kernel without UFFD_FEATURE_EVENT_FORK (before 4.11, or disabled) drops a forked
 * child's userfaultfd registrations: its memory would be plain anonymous memory. The
 * tracer gives the child a userfaultfd of its own instead, before it runs an instruction.
 */
export interface ForkWithoutEvent {
  source: UffdSource;
  /** A status of the child read here that the tracer's loop must handle (its death). */
  replay(r: WaitResult): void;
  /** The child cannot have a userfaultfd: it runs on with ordinary memory. */
  refused(err: UserfaultfdRefused): void;
}

/**
 * Gives forked `proc` its own userfaultfd and has the engine register its parent's
 * ranges on it, at the child's first stop (waited for here if it has not come yet).
 * False when the child ended first: its status is handed to `fallback.replay`.
 */
function giveForkedChildUffd(tasks: Tasks, engine: EngineClient, parent: Proc, proc: Proc, fallback: ForkWithoutEvent): boolean {
  const child = proc.pid;
  try {
    if (!tasks.held.has(child)) {
      const r = waitpid(child, __WALL);
      if (!WIFSTOPPED(r.status)) {
        fallback.replay(r);
        return false;
      }
      tasks.held.add(child);
    }
    const uffd = takeUserfaultfd(child, fallback.source);
    const r = engine.forkedWithUffd(parent.pid, child, uffd);
    if (r !== 0 && r !== -os.constants.errno.ENOENT) throw new SysError(`registering the memory of forked child ${child}`, -r);
    return true;
  } catch (err) {
    // The child's own end or state is the child's business, never the parent's stop's.
    if (err instanceof UserfaultfdRefused) {
      fallback.refused(err);
      return true;
    }
    if (err instanceof TaskGone) {
      if (err.status !== undefined) fallback.replay({ pid: err.tid, status: err.status });
      return true;
    }
    if (isEsrch(err)) return true;
    throw err;
  }
}

/**
 * A creator's PTRACE_EVENT_FORK, _VFORK or _CLONE stop: follows the new task and resumes
 * the creator. A forker goes on before the engine checks its child's pages (≈ 3 ms for
 * 160 MiB, fork-pages.ts). The child, held at its first stop, goes on once the fork is
 * noted for the engine (tracer-notes.ts); it waits for the check only while the engine
 * reads program memory or a snapshot is active. A new process made while the session
 * is `ending` is killed (a thread goes with its process).
 */
export function onCreatorEvent(tasks: Tasks, engine: EngineClient, creator: Thread, event: number, ending: boolean,
  withoutEvent?: ForkWithoutEvent): void {
  const what = cloneKind(creator.tid, event);
  const child = Number(eventMessage(creator.tid, event)); // checked after the registers cloneKind read
  const early = what.kind === 'fork' && !withoutEvent;
  if (early) contUnlessGone(creator.tid);
  addNewTask(tasks, engine, creator, child, what, withoutEvent);
  if (ending && what.kind !== 'thread') killIfAlive(child);
  if (!early) cont(creator.tid);
}

/**
 * Follows `child`, created by `parent`; resumes it if its first stop was held.
 * `withoutEvent`: the kernel does not hand a forked child's uffd over (see above).
 */
export function addNewTask(tasks: Tasks, engine: EngineClient, parent: Thread, child: number,
  what: NewTask, withoutEvent?: ForkWithoutEvent): void {
  if (tasks.threads.has(child)) return;
  if (what.kind === 'thread') {
    const thread = new Thread(child, parent.proc);
    thread.clearChildTid = what.clearChildTid;
    tasks.threads.set(child, thread);
  } else {
    const proc = new Proc(child);
    proc.inheritFrom(parent.proc);
    const thread = tasks.addProc(proc);
    if (what.kind !== 'fork') engine.sharesMm(parent.proc.pid, child);
    else if (!withoutEvent) engine.forked(parent.proc.pid, child);
    else if (parent.proc.execed && !giveForkedChildUffd(tasks, engine, parent.proc, proc, withoutEvent)) return;
    if (what.vfork) {
      parent.vforkChild = thread;
      thread.vforkParent = parent;
    }
  }
  if (tasks.held.delete(child)) release(child);
}

/**
 * Adopts the held processes whose parent is gone: their fork event will never come.
 * Such a child's mm was announced on its parent's userfaultfd, which closed with the
 * parent's mm: its memory is ordinary memory now. What it maps from now on, and the
 * images it execs, get the launch policy (its parent's own policy is gone with it).
 *
 * A held thread is left held: its creator's event comes, or its whole thread group is
 * dying and so is it. A held process whose parent is still followed waits for that
 * parent's event (a process that sets itself as a child subreaper would keep its
 * orphaned grandchildren held until it ends: not handled).
 */
export function adoptOrphans(tasks: Tasks, launchPolicy: PagePolicy | undefined): void {
  for (const tid of tasks.held) {
    const st = taskStatus(tid);
    if (!st || st.tgid !== tid || tasks.procs.has(st.ppid)) continue;
    const proc = new Proc(tid);
    proc.policy = launchPolicy;
    proc.filtered = st.seccomp === SECCOMP_MODE_FILTER;
    proc.execed = true;
    tasks.addProc(proc);
    tasks.held.delete(tid);
    release(tid);
  }
}

// The tracer's part of a snapshot held by a fork (NUMACTLX_SNAPSHOT_CAPTURE=fork; the
// engine's part is src/engine-thread/snapshot-capture.ts). In the freeze, once the engine
// has read and reset the written pages, every process with pages to copy is made to fork:
// clone(CLONE_FILES, exit signal 0) injected into one of its interrupted threads. The
// kernel's copy-on-write then holds the freeze's image in the child while the program
// runs on; the engine copies the written pages out of the child and kills it.
//
// The child never runs an instruction. It is auto-attached (PTRACE_O_TRACECLONE) and
// starts in a ptrace stop, which is never resumed here: its code page even holds the
// injected `syscall`. Kernel facts it relies on:
// - exit signal 0: the program gets no SIGCHLD, and its wait()s see the child only with
//   __WALL or __WCLONE (a "clone child");
// - CLONE_FILES: the child shares the program's descriptor table rather than holding a
//   reference to every open file: a socket the program closes is closed at once;
// - CLONE_PARENT, for a process whose parent is numactlx (the program's first): the child
//   is numactlx's, and the tracer's waitpid of its end reaps it (the tracer is a thread of
//   its real parent). CLONE_PARENT takes the exit signal from the caller (SIGCHLD), so
//   for any other process it would signal a parent in the program: there the child is
//   the process's own, and its zombie is reaped by wait4(child, __WALL) injected into
//   one thread of the process, stopped for that alone, as soon as the tracer sees the
//   child's end (reapNow; failing that, at the next freeze, or by init once the process
//   has ended);
// - the clone returns only once the engine has read the UFFD_EVENT_FORK it causes
//   (dup_userfaultfd_complete waits for that): the engine's loop is free meanwhile;
// - PTRACE_O_EXITKILL is inherited: if numactlx dies, or only its tracer thread (tracees are
//   untraced per tracing thread), the capture forks die with it. So a process's exit stop has
//   the engine read what the fork holds of it (SnapshotEngine.flushProcess) before the tracer
//   may be gone; PTRACE_O_TRACEEXIT is inherited too: a killed child stops at its exit event,
//   and is resumed to end;
// - a process in a seccomp sandbox of its own gets the clone and the wait4 as the calls of
//   an eviction's drop: its filters run on them, and they are made past a filter that
//   would refuse them (filter-verdict.ts; the engine asks for no such fork where the
//   filters cannot be read).
import os from 'node:os';
import { SYS } from '../sys/arch/index.js';
import { PTRACE_EVENT } from '../sys/ptrace.js';
import { CLONE_FILES, CLONE_PARENT } from '../sys/sched.js';
import { killIfAlive } from '../sys/signal.js';
import { WIFEXITED, WIFSIGNALED, WNOHANG, WPTRACEEVENT, __WALL, type WaitResult } from '../sys/wait.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import { InjectionError, injectSyscall } from './inject.js';
import { handleStops, interruptedThread, stopThreads, type StopHost } from './stop-threads.js';
import { contUnlessGone, isEsrch, stillStopped, TaskGone, taskStatus } from './task-gone.js';
import type { Tasks, Thread } from './state.js';
import { injectPastFilters } from './filter-verdict.js';

const { ECHILD, EINVAL, EIO, EPERM, ESRCH } = os.constants.errno;

export class CaptureForks {
  /** Live capture children → the pid of the process they were forked from. */
  private readonly live = new Map<number, number>();
  /** Ended capture children, zombies of a process of the program → that process. */
  private readonly ended = new Map<number, number>();
  /** Of those, the ones reapNow has not tried yet. */
  private fresh: number[] = [];

  /** `later`: a status an injection's waitpid read (a death), for the tracer's loop. */
  constructor(private readonly engine: EngineClient, private readonly later: (r: WaitResult) => void) {}

  /** Whether `tid` is a capture child; if so its status is taken here: a stop is kept, an end noted. */
  take(tid: number, status: number): boolean {
    const parent = this.live.get(tid);
    if (parent === undefined) return false;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      this.live.delete(tid);
      // Gone already when its real parent is numactlx (the waitpid that read this reaped it).
      const realParent = taskStatus(tid)?.ppid;
      if (realParent !== undefined) {
        this.ended.set(tid, realParent);
        this.fresh.push(tid);
      }
    } else if (WPTRACEEVENT(status) === PTRACE_EVENT.EXIT) {
      contUnlessGone(tid); // killed, at its exit stop (PTRACE_O_TRACEEXIT is inherited): let it end
    }
    return true;
  }

  /**
   * In a freeze, after the engine's (every thread stopped, `stash` their stops): makes the
   * capture forks the engine asks for (`wanted`, Freeze's answer: none asked, no round trip
   * to the engine in the pause), then reaps the children of earlier snapshots.
   */
  inFreeze(tasks: Tasks, stash: Map<number, number>, wanted: number): void {
    // Each CaptureNext takes at least one of the `wanted` mms: no call more than that (a round trip in the pause).
    for (let n = 0; n < wanted; n++) {
      const pid = this.engine.captureNext();
      if (pid <= 0) break;
      this.engine.captured(pid, this.fork(tasks, stash, pid));
    }
    if (this.ended.size > 0) this.reap(tasks, stash, new Set(this.ended.values()));
  }

  /**
   * Between the tracer's statuses: the zombies of forks that have just ended are reaped
   * now, each in one thread of its parent, stopped for the wait4 alone (≈ a trapped call's
   * cost to that thread). One try each; what fails waits for the next freeze.
   */
  reapNow(host: StopHost & { handle(tid: number, status: number): void }): void {
    if (this.fresh.length === 0) return;
    const parents = new Set(this.fresh.splice(0).map((c) => this.ended.get(c)).filter((p): p is number => p !== undefined && host.tasks.procs.has(p)));
    if (parents.size === 0) return;
    const picked = new Set<number>(); // one thread of each parent
    const stash = stopThreads(host, 0, (t: Thread) => {
      if (!parents.has(t.proc.pid) || picked.has(t.proc.pid)) return false;
      picked.add(t.proc.pid);
      return true;
    });
    try {
      this.reap(host.tasks, stash, parents);
    } finally {
      handleStops(host, stash);
    }
  }

  /** Reaps the ended forks whose parent is among `parents`, each through an interrupted thread of it in `stash`. */
  private reap(tasks: Tasks, stash: Map<number, number>, parents: Set<number>): void {
    for (const [child, parent] of this.ended) {
      if (!tasks.procs.has(parent)) {
        this.ended.delete(child); // its parent is gone: init reaps it
        continue;
      }
      if (!parents.has(parent)) continue;
      const tid = interruptedThread(tasks, stash, new Set([parent]));
      const r = tid === undefined ? undefined : this.injectPast(parent, tid, SYS.wait4, [BigInt(child), 0n, BigInt(__WALL | WNOHANG), 0n]);
      if (r === child || r === -ECHILD) this.ended.delete(child);
    }
  }

  /**
   * The process `pid` has ended: its ended forks are init's to reap now. Its live fork is
   * the engine's to kill, once its snapshot is copied (its exit stop had the engine copy
   * what the fork holds of it; a process killed outright has lost its pages to the snapshot).
   */
  parentGone(pid: number): void {
    for (const [child, parent] of this.ended) if (parent === pid) this.ended.delete(child);
    this.fresh = this.fresh.filter((c) => this.ended.has(c));
  }

  /** Kills every live capture child (numactlx's own failure, the session's end). */
  killAll(): void {
    for (const child of this.live.keys()) this.kill(child);
  }

  /** A capture fork of `pid`, made in one of its interrupted threads: its pid, or -errno. */
  private fork(tasks: Tasks, stash: Map<number, number>, pid: number): number {
    const tid = interruptedThread(tasks, stash, new Set([pid]));
    if (tid === undefined) return -ESRCH;
    // The child is known from its creation event on: a clone cut short after it (the
    // thread killed) must not leave it to be taken for a task of the program.
    let child = 0;
    const seen = (c: number): void => {
      child = c;
      this.live.set(c, pid);
    };
    const clone = (flags: bigint): number | undefined => this.injectPast(pid, tid, SYS.clone, [flags, 0n, 0n, 0n, 0n], { event: PTRACE_EVENT.CLONE, seen });
    const ours = taskStatus(pid)?.ppid === process.pid;
    let r = clone(ours ? CLONE_PARENT | CLONE_FILES : CLONE_FILES);
    if (ours && r === -EINVAL) r = clone(CLONE_FILES); // an init of a pid namespace cannot CLONE_PARENT
    if (r !== undefined && r > 0) return r;
    if (child > 0) this.kill(child); // made, but its parent is gone: not a capture
    return r ?? -EIO;
  }

  /**
   * inject, past the process's own seccomp filters where they would refuse the call
   * (filter-verdict.ts; suspended for this call alone); -EPERM where they would and
   * cannot be suspended, or cannot be read. A capture child made while its parent's
   * filters were suspended inherits the suspension (its ptrace options are its
   * creator's), but never runs an instruction of its own.
   */
  private injectPast(pid: number, tid: number, nr: number, args: bigint[], expected?: Parameters<typeof injectSyscall>[3]): number | undefined {
    const r = injectPastFilters(pid, tid, [{ nr, args }], () => this.inject(tid, nr, args, expected));
    return r === 'refused' || r === 'unreadable' ? -EPERM : r;
  }

  /** injectSyscall; undefined when the thread died or left its stop (its death is the loop's). */
  private inject(tid: number, nr: number, args: bigint[], expected?: Parameters<typeof injectSyscall>[3]): number | undefined {
    try {
      return Number(injectSyscall(tid, nr, args, expected));
    } catch (err) {
      if (err instanceof TaskGone) {
        if (err.status !== undefined) this.later({ pid: err.tid, status: err.status });
        return undefined;
      }
      if (err instanceof InjectionError || isEsrch(err) || !stillStopped(tid)) return undefined;
      throw err;
    }
  }

  private kill(child: number): void {
    killIfAlive(child);
  }
}

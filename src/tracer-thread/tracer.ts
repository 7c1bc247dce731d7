// The tracer: starts the program seized before its first instruction and follows every
// thread, fork, vfork and exec of it with ptrace, owning every ptrace call and every
// waitpid (DESIGN.md §3.1). It runs in the tracer worker thread and nowhere else.
//
// Start: posix_spawn of `sh -c 'kill -STOP $$; exec "$@"'`, waitpid(WUNTRACED),
// PTRACE_SEIZE with the options below, SIGCONT; the shell then execs the program and
// the first PTRACE_EVENT_EXEC is the program's. PTRACE_O_EXITKILL: if numactlx dies,
// the kernel kills the program rather than let it run on with zero pages where the
// backing held data.
import fs from 'node:fs';
import os from 'node:os';
import { cont, contSyscall, getEventMsg, getSiginfo, listen, PTRACE_EVENT, PTRACE_O, seize, siginfoHead } from '../sys/ptrace.js';
import { kill, SI_QUEUE } from '../sys/signal.js';
import { spawnProgram } from '../sys/spawn.js';
import { SysError } from '../sys/libc.js';
import { closeFd } from '../sys/eventfd.js';
import {
  waitpid, WIFEXITED, WIFSIGNALED, WIFSTOPPED, WEXITSTATUS, WSTOPSIG, WTERMSIG, WCOREDUMP,
  WPTRACEEVENT, WUNTRACED, __WALL, type WaitResult,
} from '../sys/wait.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { TracerEvent } from '../channels/tracer-messages.js';
import { COOKIE, DOORBELL_SIGNAL, type Doorbell } from '../channels/doorbell.js';
import { existingAnonRanges, setUpExec, UserfaultfdRefused } from './exec-setup.js';
import { freeze, type FreezeHost } from './freeze.js';
import { addNewTask, adoptOrphans, cloneKind } from './new-tasks.js';
import { onSeccompStop, onSyscallExit, type SyscallContext } from './syscalls.js';
import { Proc, Tasks, type Thread } from './state.js';
import { isEsrch, stillStopped, TaskGone, taskStatus } from './task-gone.js';
import { ForeignTracerError, isEperm, untrappedMessage } from './limits.js';

const { SIGCONT, SIGKILL, SIGSTOP, SIGTRAP, SIGTSTP, SIGTTIN, SIGTTOU } = os.constants.signals;
const STOP_SIGNALS = new Set([SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]);

const OPTIONS = PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEEXEC | PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK
  | PTRACE_O.TRACEVFORK | PTRACE_O.TRACESECCOMP | PTRACE_O.TRACEEXIT | PTRACE_O.EXITKILL;

export interface TracerSetup {
  /** Snapshot requests from the main thread (src/channels/doorbell.ts). */
  doorbell?: Doorbell;
  /** Take a snapshot at the program's exit stop (--snapshot-on-exit). */
  snapshotOnExit?: boolean;
  program: string[];
  env: string[];
  defaultSignals: number[];
  ignoredSignals: number[];
  /** The launch policy when it names a virtual node (the whole policy, real nodes too). */
  policy: PagePolicy | undefined;
  virtualNodes: number[];
  allowedReal: number[];
  engine: EngineClient;
  post(ev: TracerEvent): void;
}

export class Tracer implements FreezeHost {
  readonly tasks = new Tasks();
  readonly engine: EngineClient;
  /** Statuses read by a waitpid for one task (an injection's) that the loop must handle. */
  private readonly replay: WaitResult[] = [];
  private readonly ctx: SyscallContext;
  private mainPid = 0;
  private mainStatus: number | undefined;
  private mainStopped = false;
  private spawned = false;
  private exitSnapshotTaken = false;
  /** A process ran without a userfaultfd, and the user was told (once). */
  private untrappedSaid = false;
  /** A process has ended: the doorbell may have rung it in vain (see run). */
  private doorbellMayBeLost = false;

  constructor(private readonly setup: TracerSetup) {
    this.engine = setup.engine;
    this.ctx = {
      engine: setup.engine, virtualNodes: new Set(setup.virtualNodes), allowedReal: setup.allowedReal,
      ptrace: { isTraced: (tid) => this.tasks.threads.has(tid) || this.tasks.held.has(tid), told: new Set() },
    };
  }

  /** Spawns and seizes the program; returns its pid. Throws with the step that failed. */
  start(): number {
    const { program, ignoredSignals } = this.setup;
    const traps = ignoredSignals.length ? `trap '' ${ignoredSignals.join(' ')}; ` : '';
    const pid = spawnProgram({
      file: '/bin/sh', argv: ['sh', '-c', `${traps}kill -STOP $$; exec "$@"`, 'numactlx', ...program],
      env: this.setup.env, defaultSignals: this.setup.defaultSignals,
    });
    const { status } = waitpid(pid, WUNTRACED);
    if (!WIFSTOPPED(status)) throw new Error(`the start-up shell ended before the program started (status ${status})`);
    try {
      seize(pid, OPTIONS);
    } catch (err) {
      // Nothing may be left behind: the stopped shell would outlive numactlx, and a
      // tracer following it (strace -f) would wait for it for ever.
      const foreign = taskStatus(pid)?.tracerPid ?? 0;
      try { kill(pid, SIGKILL); } catch { /* gone */ }
      try { waitpid(pid, __WALL); } catch { /* reaped */ }
      if (isEperm(err) && foreign > 0) throw new ForeignTracerError(foreign, { cause: err });
      throw err;
    }
    kill(pid, SIGCONT);
    this.mainPid = pid;
    this.setup.doorbell?.publishPid(pid);
    const proc = new Proc(pid);
    proc.policy = this.setup.policy;
    this.tasks.addProc(proc);
    return pid;
  }

  /** Follows the program until every traced process has ended; posts how the main one ended. */
  run(): void {
    while (this.tasks.procs.size > 0) {
      const { pid: tid, status } = this.replay.shift() ?? waitpid(-1, __WALL);
      this.handle(tid, status);
      // A request rung at a process that then ended without a signal stop (it was
      // already exiting) would wait for the next ring: take it now, while others run.
      if (this.doorbellMayBeLost && this.tasks.procs.size > 0) {
        this.doorbellMayBeLost = false;
        this.answerDoorbell();
      }
    }
    // Every process has ended. A request rung before the last one went (publishPid(0)
    // comes first, so a later ring sees no pid and fails at once) is answered here;
    // unanswered, the snapshot queue — and the session's end — would wait for ever.
    const pending = this.setup.doorbell?.take();
    if (pending) this.setup.post({ type: 'freeze-failed', id: pending.id, message: 'no process of the session is running' });
    const s = this.mainStatus ?? 0;
    if (WIFSIGNALED(s)) this.setup.post({ type: 'killed', signal: WTERMSIG(s), core: WCOREDUMP(s) });
    else this.setup.post({ type: 'exited', code: WEXITSTATUS(s) });
  }

  /**
   * Kills every traced process (numactlx's own failure) and tells the engine they are
   * gone: their deaths will not be reported to it any more, and a snapshot being
   * copied from them must end (with their pages lost) rather than wait for them.
   */
  killAll(): void {
    for (const pid of [...this.tasks.procs.keys(), ...this.tasks.held]) {
      try { kill(pid, SIGKILL); } catch { /* gone */ }
    }
    for (const pid of this.tasks.procs.keys()) this.engine.leaveMm(pid);
  }

  /**
   * Handles one status of one task. A task that ends while it is handled — killed by
   * the program, by its group's exit, by another thread's exec — is dropped and its
   * death handled when it is reported: the session goes on (task-gone.ts). Any other
   * failure is numactlx's and ends the session.
   */
  handle(tid: number, status: number): void {
    try {
      this.onStatus(tid, status);
    } catch (err) {
      if (err instanceof TaskGone) {
        if (err.status !== undefined) this.replay.push({ pid: err.tid, status: err.status });
        return;
      }
      // ESRCH: a task killed in its stop. Anything else: if the task is no longer in
      // its stop, what failed was reading or changing a dying task (/proc/PID/mem of
      // an mm being torn down, an injected call cut short).
      if (isEsrch(err) || !stillStopped(tid)) return;
      throw err;
    }
  }

  gone(tid: number, status: number): void {
    this.onGone(tid, status);
  }

  private onStatus(tid: number, status: number): void {
    if (WIFEXITED(status) || WIFSIGNALED(status)) return this.onGone(tid, status);
    if (!WIFSTOPPED(status)) return;
    const sig = WSTOPSIG(status);
    const event = WPTRACEEVENT(status);
    const thread = this.tasks.threads.get(tid);
    if (!thread) {
      // A new child's first stop, before its creator's fork/clone event: hold it —
      // unless that event can no longer come (new-tasks.ts).
      this.tasks.held.add(tid);
      adoptOrphans(this.tasks, this.setup.policy);
      return;
    }
    switch (event) {
      case PTRACE_EVENT.SECCOMP: {
        const how = onSeccompStop(thread, this.ctx);
        return how === 'syscall' ? contSyscall(tid) : cont(tid);
      }
      case PTRACE_EVENT.EXEC:
        // The exec stop comes before execve has stored its return value: anything
        // injected now would see rax overwritten (the first injected call would run as
        // read()). Set up at the syscall-exit stop that follows instead.
        thread.pending = { kind: 'exec', formerTid: Number(getEventMsg(tid)) };
        this.tasks.endVfork(thread);
        return contSyscall(tid);
      case PTRACE_EVENT.FORK:
      case PTRACE_EVENT.VFORK:
      case PTRACE_EVENT.CLONE: {
        const child = Number(getEventMsg(tid));
        addNewTask(this.tasks, this.engine, thread, child, cloneKind(tid, event));
        return cont(tid);
      }
      case PTRACE_EVENT.STOP:
        if (STOP_SIGNALS.has(sig)) return this.onGroupStop(tid, sig);
        return cont(tid);
      case PTRACE_EVENT.EXIT:
        this.onExitStop(thread);
        return cont(tid);
      case PTRACE_EVENT.VFORK_DONE:
        return cont(tid);
      default:
        break;
    }
    if (sig === (SIGTRAP | 0x80)) {
      if (thread.pending?.kind === 'exec') this.onExec(thread, thread.pending.formerTid);
      else onSyscallExit(thread, this.ctx);
      thread.pending = undefined;
      return cont(tid);
    }
    // The doorbell: our own SIGURG, recognised by its siginfo, never delivered.
    if (sig === DOORBELL_SIGNAL && this.isDoorbell(tid)) {
      try {
        cont(tid);
      } finally {
        this.answerDoorbell(); // rung at a thread that died since: answered all the same
      }
      return;
    }
    // A signal-delivery stop: deliver the signal unchanged.
    if (sig === SIGCONT && tid === this.mainPid && this.mainStopped) {
      this.mainStopped = false;
      this.setup.post({ type: 'continued' });
    }
    cont(tid, sig);
  }

  private isDoorbell(tid: number): boolean {
    const info = getSiginfo(tid);
    const head = siginfoHead(info);
    // si_pid at offset 16 and si_value at offset 24 of a SI_QUEUE siginfo (x86_64).
    return head.code === SI_QUEUE && info.readInt32LE(16) === process.pid && info.readInt32LE(24) === COOKIE;
  }

  private answerDoorbell(): void {
    const req = this.setup.doorbell?.take();
    if (req) freeze(this, req.id);
  }

  get doorbell(): Doorbell {
    return this.setup.doorbell!;
  }

  post(ev: TracerEvent): void {
    this.setup.post(ev);
  }

  private onGroupStop(tid: number, sig: number): void {
    // Job control: keep the tracee stopped (PTRACE_LISTEN) and stop numactlx with it.
    if (tid === this.mainPid && this.tasks.procs.get(this.mainPid)?.execed && !this.mainStopped) {
      this.mainStopped = true;
      this.setup.post({ type: 'stopped', signal: sig });
    }
    listen(tid);
  }

  private onExec(thread: Thread, formerTid: number): void {
    // thread is the thread-group leader after exec; a non-leader that exec'd is gone.
    if (formerTid !== thread.tid) this.tasks.threads.delete(formerTid);
    const proc = thread.proc;
    proc.execed = true;
    this.setup.engine.leaveMm(proc.pid);
    let uffd: number;
    try {
      ({ uffd } = setUpExec(proc));
    } catch (err) {
      if (!(err instanceof UserfaultfdRefused)) throw err;
      // The process runs on, its memory ordinary memory: said once a session.
      if (!this.untrappedSaid) fs.writeSync(2, `${untrappedMessage(err.pid, err.errno)}\n`);
      this.untrappedSaid = true;
      this.spawnedIfMain(proc);
      return;
    }
    const r = this.setup.engine.addMm(proc.pid, uffd);
    if (r !== 0) {
      closeFd(uffd);
      throw new SysError(`UFFDIO_API for the program's userfaultfd (pid ${proc.pid})`, -r);
    }
    if (proc.policy) {
      for (const range of existingAnonRanges(proc.pid)) this.setup.engine.register(proc.pid, range.start, range.len, proc.policy);
    }
    this.spawnedIfMain(proc);
  }

  private spawnedIfMain(proc: Proc): void {
    if (proc.pid === this.mainPid && !this.spawned) {
      this.spawned = true;
      this.setup.post({ type: 'spawned', pid: proc.pid });
    }
  }

  /**
   * A thread is about to exit; its memory still exists. The program's last thread:
   * --snapshot-on-exit takes the snapshot now. Any process: a snapshot being copied
   * takes this process's frozen pages now, before they are gone.
   */
  private onExitStop(thread: Thread): void {
    // (freeze below skips this thread: it is stopped here already)
    const proc = thread.proc;
    thread.exiting = true;
    // The last thread to reach its exit stop, not the last one waitpid has not reported
    // yet: a joined thread's exit is reported after its joiner ran on (pthread_join
    // returns at the clear_child_tid wake, before the kernel lets the tracer reap it).
    const lastThread = ![...this.tasks.threads.values()].some((t) => t.proc === proc && !t.exiting);
    if (this.setup.snapshotOnExit && proc.pid === this.mainPid && lastThread && !this.exitSnapshotTaken) {
      this.exitSnapshotTaken = true;
      this.setup.post({ type: 'exit-snapshot' });
      // The main thread queues the request and posts it to the doorbell; it is taken
      // here, synchronously, while the memory exists (an exiting thread gets no signal).
      const req = this.setup.doorbell?.waitRequest(60_000);
      if (req) freeze(this, req.id, thread.tid);
    }
    if (lastThread) this.setup.engine.exitStop(proc.pid);
    // mm_release will write 0 to the thread's clear_child_tid and wake its joiners. A
    // userfaultfd does not serve an exiting task's faults: on a write-protected page
    // (clean since a snapshot) the write is skipped and pthread_join never returns.
    else if (thread.clearChildTid !== 0n) this.setup.engine.threadExit(proc.pid, thread.clearChildTid);
  }

  private onGone(tid: number, status: number): void {
    const { tasks } = this;
    const thread = tasks.threads.get(tid);
    tasks.endVfork(thread);
    tasks.threads.delete(tid);
    tasks.held.delete(tid);
    if (!thread || thread.proc.pid !== tid) return; // a thread, not a process
    tasks.procs.delete(tid);
    this.setup.engine.leaveMm(tid);
    if (tid === this.mainPid) this.mainStatus = status;
    // Children it created whose fork event it never reported are orphans now.
    if (tasks.held.size > 0) adoptOrphans(tasks, this.setup.policy);
    // Ring another traced process from now on, if any is left.
    this.setup.doorbell?.publishPid(tasks.procs.keys().next().value ?? 0);
    this.doorbellMayBeLost = true;
  }
}


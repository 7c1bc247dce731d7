// The tracer: starts the program seized before its first instruction and follows every
// thread, fork, vfork and exec of it with ptrace, owning every ptrace call and every
// waitpid (DESIGN.md §3.1). It runs in the tracer worker thread and nowhere else.
//
// How the program is started seized: start-program.ts.
import fs from 'node:fs';
import os from 'node:os';
import { cont, contSyscall, listen, PTRACE_EVENT } from '../sys/ptrace.js';
import { killIfAlive } from '../sys/signal.js';
import { asPoisonSigbus } from './full-node.js';
import { WIFEXITED, WIFSIGNALED, WIFSTOPPED, WEXITSTATUS, WSTOPSIG, WTERMSIG, WCOREDUMP, WPTRACEEVENT, __WALL, type WaitResult } from '../sys/wait.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { TracerEvent } from '../channels/tracer-messages.js';
import type { Doorbell } from '../channels/doorbell.js';
import type { TracerSetup } from './tracer-setup.js';
import { startSeized } from './start-program.js';
import { Waker } from './waker.js';
import { onExecStop, type UffdSource, type UserfaultfdRefused } from './exec-setup.js';
import { has } from '../kerndat/features.js';
import { freeze, type FreezeHost } from './freeze.js';
import { onExitStop } from './exit-stop.js';
import { adoptOrphans, onCreatorEvent, type ForkWithoutEvent } from './new-tasks.js';
import { onSeccompStop, onSyscallExit, type SyscallContext } from './syscalls.js';
import { Proc, Tasks } from './state.js';
import { forgetUffd } from './register.js';
import { eventMessage, isEsrch, noneTraced, stillStopped, TaskGone, untracedLeft } from './task-gone.js';
import { untrappedMessage } from './limits.js';
import { EvictStopper, type EvictHost } from './evict-stop.js';
import { CaptureForks } from './capture-fork.js';

const { SIGBUS, SIGCONT, SIGSTOP, SIGTRAP, SIGTSTP, SIGTTIN, SIGTTOU } = os.constants.signals;
const STOP_SIGNALS = new Set([SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]);

export class Tracer implements FreezeHost, EvictHost {
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
  private untrappedSaid = false; // a process ran without a userfaultfd, and the user was told (once)
  private ending = false; // the main thread ended the session (doorbell.requestEnd): every process is killed
  /** How each new mm gets its userfaultfd. */
  private readonly uffdSource: UffdSource;
  /** Without UFFD_EVENT_FORK the tracer gives a forked child its userfaultfd (new-tasks.ts). */
  private readonly forkWithoutEvent: ForkWithoutEvent | undefined;
  /** --max-resident: stops an address space for the engine's drops (evict-stop.ts). */
  private readonly evictions: EvictStopper | undefined;
  /** NUMACTLX_SNAPSHOT_CAPTURE=fork|auto: the forks that hold snapshots' images (capture-fork.ts). */
  readonly captures: CaptureForks | undefined;
  /** The process whose stops wake this loop for the doorbell's and the engine's requests (waker.ts). */
  private readonly waker: Waker;

  constructor(private readonly setup: TracerSetup) {
    this.engine = setup.engine;
    this.ctx = {
      engine: setup.engine, virtualNodes: new Set(setup.virtualNodes), allowedReal: setup.allowedReal,
      ptrace: { isTraced: (tid) => this.tasks.threads.has(tid) || this.tasks.held.has(tid), told: new Set() },
      userfaultfdTold: new Set(),
    };
    this.uffdSource = !has(setup.features, 'USERFAULTFD') ? 'device' : has(setup.features, 'USERFAULTFD_DEVICE') ? 'syscall-or-device' : 'syscall';
    this.forkWithoutEvent = has(setup.features, 'EVENT_FORK') ? undefined
      : { source: this.uffdSource, replay: (r) => this.later(r), refused: (err) => this.sayUntrapped(err) };
    if (setup.evict) this.evictions = new EvictStopper(this, setup.engine, setup.evict);
    if (setup.capture === 'fork' || setup.capture === 'auto') this.captures = new CaptureForks(setup.engine, (r) => this.later(r));
    this.waker = new Waker((pid) => {
      setup.doorbell?.publishWaker(pid);
      setup.evict?.publishWaker(pid);
    });
  }

  /** Whether a snapshot or an eviction round is posted (asked by the waker's polling wait). */
  private readonly requested = (): boolean => !!(this.setup.doorbell?.pending || this.evictions?.pending);

  /** Spawns and seizes the program; returns its pid. Throws with the step that failed. */
  start(): number {
    const pid = startSeized(this.setup);
    this.mainPid = pid;
    this.setup.doorbell?.publishPid(pid);
    const proc = new Proc(pid);
    proc.policy = this.setup.policy;
    this.tasks.addProc(proc);
    this.waker.start();
    return pid;
  }

  /** Follows the program until every traced process has ended; posts how the main one ended. */
  run(): void {
    while (this.tasks.procs.size > 0) {
      const next = this.replay.shift() ?? this.waker.next(this.requested);
      if (!next) {
        // No task is traced any more (the waker retired: noneTraced): those still on the books ended unseen.
        for (const pid of untracedLeft(this.tasks, this.mainPid, this.mainStatus)) this.setup.engine.leaveMm(pid);
        if (this.mainStatus === undefined) throw new Error(`the program's end was not seen (pid ${this.mainPid})`);
        break;
      }
      if (next !== 'idle') { // 'idle': no event, but a request to look at (no waker: waker.ts next)
        this.tasks.unhandled.delete(next.pid);
        this.handle(next.pid, next.status);
      }
      if (!this.ending && this.setup.doorbell?.endRequested) {
        // The session's backing is lost: the program cannot keep its memory on it.
        this.ending = true;
        this.killAll();
      }
      // Requests are taken here, after any event (the waker's stop is the ring: waker.ts) —
      // a snapshot's not while a process is mid-exec (a freeze leaves that image out): at a later event.
      if (this.setup.doorbell?.pending && this.tasks.procs.size > 0 && !this.tasks.midExec()) this.answerDoorbell();
      if (this.evictions?.pending && this.tasks.procs.size > 0) this.evictions.serve(); // [eviction]
      this.waker.revive();
      this.captures?.reapNow(this);
    }
    this.waker.retire();
    // Every process has ended. A request rung before the last one went (publishPid(0)
    // comes first, so a later ring sees no pid and fails at once) is answered here;
    // unanswered, the snapshot queue — and the session's end — would wait for ever.
    const pending = this.setup.doorbell?.take();
    if (pending) this.setup.post({ type: 'freeze-failed', id: pending.id });
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
      killIfAlive(pid);
    }
    for (const pid of this.tasks.procs.keys()) this.engine.leaveMm(pid);
    this.captures?.killAll();
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
        if (err.status !== undefined) this.later({ pid: err.tid, status: err.status });
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

  stopping(on: boolean): void { this.evictions?.stopping(on); }

  /** A status read by a waitpid for one task (an injection's), handled by the loop next. */
  later(r: WaitResult): void {
    if (WIFSTOPPED(r.status)) this.tasks.unhandled.add(r.pid);
    this.replay.push(r);
  }

  /** The waker's status (waker.ts), or a capture fork's (capture-fork.ts): not the program's. */
  notProgram = (tid: number, status: number): boolean => this.waker.take(tid, status) || (this.captures?.take(tid, status) ?? false);

  private onStatus(tid: number, status: number): void {
    if (this.notProgram(tid, status)) return;
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
    if (event !== PTRACE_EVENT.EXEC) thread.execEntered = false; // any other stop: out of its execve
    switch (event) {
      case PTRACE_EVENT.SECCOMP: {
        const how = onSeccompStop(thread, this.ctx);
        return how === 'syscall' ? contSyscall(tid) : cont(tid);
      }
      case PTRACE_EVENT.EXEC:
        // The exec stop comes before execve has stored its return value: anything
        // injected now would see rax overwritten (the first injected call would run as
        // read()). Set up at the syscall-exit stop that follows instead.
        thread.pending = { kind: 'exec', formerTid: Number(eventMessage(tid, event)) };
        this.tasks.endVfork(thread);
        return contSyscall(tid);
      case PTRACE_EVENT.FORK:
      case PTRACE_EVENT.VFORK:
      case PTRACE_EVENT.CLONE:
        return onCreatorEvent(this.tasks, this.engine, thread, event, this.ending, this.forkWithoutEvent);
      case PTRACE_EVENT.STOP:
        if (STOP_SIGNALS.has(sig)) return this.onGroupStop(tid, sig);
        return cont(tid);
      case PTRACE_EVENT.EXIT:
        onExitStop(this, thread, () => {
          // --snapshot-on-exit: the main process's last thread, once.
          const take = !!this.setup.snapshotOnExit && thread.proc.pid === this.mainPid && !this.exitSnapshotTaken;
          this.exitSnapshotTaken ||= take;
          return take;
        });
        return cont(tid);
      case PTRACE_EVENT.VFORK_DONE:
        return cont(tid);
      default:
        break;
    }
    if (sig === (SIGTRAP | 0x80)) {
      if (thread.pending?.kind === 'exec') {
        onExecStop(this.tasks, this.engine, thread, thread.pending.formerTid, this.uffdSource, (err) => this.sayUntrapped(err));
        this.spawnedIfMain(thread.proc);
      }
      else onSyscallExit(thread, this.ctx);
      thread.pending = undefined;
      return cont(tid);
    }
    if (sig === SIGBUS) asPoisonSigbus(tid);
    // A signal-delivery stop: deliver the signal unchanged.
    if (sig === SIGCONT && tid === this.mainPid && this.mainStopped) {
      this.mainStopped = false;
      this.setup.post({ type: 'continued' });
    }
    cont(tid, sig);
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

  /** A process runs on without a userfaultfd, its memory ordinary memory: said once a session. */
  private sayUntrapped(err: UserfaultfdRefused): void {
    if (!this.untrappedSaid) fs.writeSync(2, `${untrappedMessage(err.pid, err.errno, err.reason)}\n`);
    this.untrappedSaid = true;
  }

  private spawnedIfMain(proc: Proc): void {
    if (proc.pid !== this.mainPid || this.spawned) return;
    this.spawned = true;
    this.setup.post({ type: 'spawned', pid: proc.pid });
  }

  private onGone(tid: number, status: number): void {
    const { tasks } = this;
    const thread = tasks.threads.get(tid);
    tasks.endVfork(thread);
    tasks.threads.delete(tid);
    tasks.held.delete(tid);
    if (!thread || thread.proc.pid !== tid) return; // a thread, not a process
    tasks.procs.delete(tid);
    this.captures?.parentGone(tid);
    forgetUffd(thread.proc);
    this.setup.engine.ended(tid);
    if (tid === this.mainPid) this.mainStatus = status;
    // Children it created whose fork event it never reported are orphans now.
    if (tasks.held.size > 0) adoptOrphans(tasks, this.setup.policy);
    // Another traced process for requestEnd to kill from now on, if any is left.
    this.setup.doorbell?.publishPid(tasks.procs.keys().next().value ?? 0);
    // None of those left traced: the loop's waitpid must say ECHILD (untracedLeft), not wait for the waker.
    if (noneTraced(tasks)) this.waker.retire();
  }
}


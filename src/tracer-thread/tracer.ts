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
import { SYS } from '../sys/arch/index.js';
import { cont, contSyscall, getEventMsg, getRegs, listen, PTRACE_EVENT, PTRACE_O, readReg, seize } from '../sys/ptrace.js';
import { kill, SI_QUEUE } from '../sys/signal.js';
import { CLONE_CHILD_CLEARTID, CLONE_THREAD, CLONE_VM } from '../sys/sched.js';
import { spawnProgram } from '../sys/spawn.js';
import { SysError } from '../sys/libc.js';
import {
  waitpid, WIFEXITED, WIFSIGNALED, WIFSTOPPED, WEXITSTATUS, WSTOPSIG, WTERMSIG, WCOREDUMP,
  WPTRACEEVENT, WUNTRACED, __WALL,
} from '../sys/wait.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import { existingAnonRanges, setUpExec } from './exec-setup.js';
import { readRemote } from './remote.js';
import { onSeccompStop, onSyscallExit, type SyscallContext } from './syscalls.js';
import { Proc, Thread } from './state.js';
import type { TracerEvent } from '../channels/tracer-messages.js';
import { COOKIE, DOORBELL_SIGNAL, type Doorbell } from '../channels/doorbell.js';
import { getSiginfo, interrupt, siginfoHead } from '../sys/ptrace.js';
import { EVICT_COOKIE, type EvictChannel } from '../channels/evict-request.js';
import { EvictStopper } from './evict-stop.js';

const { SIGCONT, SIGKILL, SIGSTOP, SIGTRAP, SIGTSTP, SIGTTIN, SIGTTOU } = os.constants.signals;
const STOP_SIGNALS = new Set([SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]);

const OPTIONS = PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEEXEC | PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK
  | PTRACE_O.TRACEVFORK | PTRACE_O.TRACESECCOMP | PTRACE_O.TRACEEXIT | PTRACE_O.EXITKILL
  // VFORK_DONE: when a vfork's parent runs again (Thread.vforking; an eviction stop must not wait for it).
  | PTRACE_O.TRACEVFORKDONE;

export interface TracerSetup {
  /** Snapshot requests from the main thread (src/channels/doorbell.ts). */
  doorbell?: Doorbell;
  /** --max-resident: eviction stops the engine asks for (src/channels/evict-request.ts). */
  evict?: EvictChannel;
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

export class Tracer {
  private readonly procs = new Map<number, Proc>();
  private readonly threads = new Map<number, Thread>();
  /** Children whose first stop came before their parent's fork event: not resumed yet. */
  private readonly held = new Set<number>();
  private readonly ctx: SyscallContext;
  private mainPid = 0;
  private mainStatus: number | undefined;
  private mainStopped = false;
  private spawned = false;
  private exitSnapshotTaken = false;
  /** A process has ended: the doorbell may have rung it in vain (see run). */
  private doorbellMayBeLost = false;
  /** --max-resident: stops an address space for the engine's drops (evict-stop.ts). */
  private readonly evictions: EvictStopper | undefined;

  constructor(private readonly setup: TracerSetup) {
    this.ctx = { engine: setup.engine, virtualNodes: new Set(setup.virtualNodes), allowedReal: setup.allowedReal };
    if (setup.evict) {
      this.evictions = new EvictStopper({
        threads: this.threads, held: this.held,
        replay: (tid, status) => this.onStatus(tid, status), gone: (tid, status) => this.onGone(tid, status),
      }, setup.engine, setup.evict);
    }
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
    seize(pid, OPTIONS);
    kill(pid, SIGCONT);
    this.mainPid = pid;
    this.setup.doorbell?.publishPid(pid);
    const proc = new Proc(pid);
    proc.policy = this.setup.policy;
    this.procs.set(pid, proc);
    this.threads.set(pid, new Thread(pid, proc));
    return pid;
  }

  /** Follows the program until every traced process has ended; posts how the main one ended. */
  run(): void {
    while (this.procs.size > 0) {
      const { pid: tid, status } = waitpid(-1, __WALL);
      try {
        this.onStatus(tid, status);
        // A request rung at a process that then ended without a signal stop (it was
        // already exiting) would wait for the next ring: take it now, while others run.
        if (this.doorbellMayBeLost && this.procs.size > 0) {
          this.doorbellMayBeLost = false;
          this.answerDoorbell();
        }
        // [eviction] A request whose SIGURG was lost (one already pending swallows it).
        if (this.evictions?.pending && this.procs.size > 0) this.evictions.serve(0);
      } catch (err) {
        // A tracee that vanished under us (SIGKILL) is reported by its exit status next.
        if (!(err instanceof SysError && err.code === 'ESRCH')) throw err;
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

  /** Kills every traced process (fatal setup errors). */
  killAll(): void {
    for (const pid of this.procs.keys()) {
      try { kill(pid, SIGKILL); } catch { /* gone */ }
    }
  }

  private onStatus(tid: number, status: number): void {
    if (WIFEXITED(status) || WIFSIGNALED(status)) return this.onGone(tid, status);
    if (!WIFSTOPPED(status)) return;
    const sig = WSTOPSIG(status);
    const event = WPTRACEEVENT(status);
    let thread = this.threads.get(tid);
    if (!thread) {
      // A new child's first stop, before its parent's fork/clone event: hold it.
      this.held.add(tid);
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
        return contSyscall(tid);
      case PTRACE_EVENT.FORK:
      case PTRACE_EVENT.VFORK:
      case PTRACE_EVENT.CLONE:
        // [eviction] A vfork's parent is blocked until VFORK_DONE: no stop waits for it.
        if (event === PTRACE_EVENT.VFORK) thread.vforking = true;
        this.onNewTask(thread, event, Number(getEventMsg(tid)));
        return cont(tid);
      case PTRACE_EVENT.STOP:
        if (STOP_SIGNALS.has(sig)) return this.onGroupStop(tid, sig);
        return cont(tid);
      case PTRACE_EVENT.EXIT:
        this.onExitStop(thread);
        return cont(tid);
      case PTRACE_EVENT.VFORK_DONE:
        thread.vforking = false;
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
    // The doorbell: our own SIGURG, recognised by its siginfo, never delivered. [eviction]
    // Also the engine's eviction ring (one SIGURG may stand for both): that request first,
    // with this thread stopped already (serve resumes it).
    if (sig === DOORBELL_SIGNAL && this.isDoorbell(tid)) {
      if (!this.evictions?.serve(tid)) cont(tid);
      this.answerDoorbell();
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
    const cookie = info.readInt32LE(24);
    return head.code === SI_QUEUE && info.readInt32LE(16) === process.pid && (cookie === COOKIE || cookie === EVICT_COOKIE);
  }

  private answerDoorbell(): void {
    const req = this.setup.doorbell?.take();
    if (req) this.freeze(req.id);
  }

  /**
   * Stops every thread (PTRACE_INTERRUPT), hands their registers to the engine, lets it
   * write-protect what changed, resumes them. Stops that arrive meanwhile are held and
   * handled after the resume, so no thread runs while the engine freezes.
   */
  freeze(id: number, stoppedTid = 0): void {
    const t0 = process.hrtime.bigint();
    const waiting = new Set<number>();
    for (const [tid, thread] of this.threads) {
      // A thread already in a ptrace stop (the one at its exit stop) reports no new
      // stop for PTRACE_INTERRUPT: waiting for it would wait forever. A thread past its
      // exit stop runs no more user code and may never report again while we hold the
      // others: a thread-group leader's exit is reported only after every other thread
      // of its group has gone.
      if (this.held.has(tid) || tid === stoppedTid || thread.exiting) continue;
      try {
        interrupt(tid);
        waiting.add(tid);
      } catch {
        // exiting
      }
    }
    const stash: Array<[number, number]> = [];
    while (waiting.size > 0) {
      const { pid: tid, status } = waitpid(-1, __WALL);
      waiting.delete(tid);
      if (WIFEXITED(status) || WIFSIGNALED(status)) { this.onGone(tid, status); continue; }
      if (!this.threads.has(tid)) { this.held.add(tid); continue; }
      stash.push([tid, status]);
    }
    const tStopped = process.hrtime.bigint();
    // A process stopped at its exec event has a new image already; the engine's Mm still
    // holds the old one's pages, which /proc/PID/maps no longer shows. It leaves the mm
    // now (onExec would, after the freeze): the old image is gone, not part of this
    // point in time; its new one has nothing placed yet.
    for (const [tid, status] of stash) {
      const proc = WPTRACEEVENT(status) === PTRACE_EVENT.EXEC ? this.threads.get(tid)?.proc : undefined;
      if (proc) this.setup.engine.leaveMm(proc.pid);
    }
    const regs: Array<{ tgid: number; tid: number; regs: Buffer }> = [];
    for (const [tid, thread] of this.threads) {
      if (this.held.has(tid) || (thread.exiting && tid !== stoppedTid)) continue;
      try {
        regs.push({ tgid: thread.proc.pid, tid, regs: getRegs(tid) });
      } catch {
        // a thread in group-stop (PTRACE_LISTEN) cannot be read: its registers are omitted
      }
    }
    this.setup.doorbell!.writeThreads(regs);
    const tRegs = process.hrtime.bigint();
    const frozen = this.setup.engine.freeze(id);
    const tEngine = process.hrtime.bigint();
    for (const [tid, status] of stash) {
      try {
        this.onStatus(tid, status);
      } catch (err) {
        if (!(err instanceof SysError && err.code === 'ESRCH')) throw err;
      }
    }
    const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (process.env.NUMACTLX_DEBUG === '1') {
      fs.writeSync(2, `numactlx-tracer: freeze ${id}: stop ${Number(tStopped - t0) / 1e6} ms, regs ${Number(tRegs - tStopped) / 1e6} ms, engine ${Number(tEngine - tRegs) / 1e6} ms, resume ${Number(process.hrtime.bigint() - tEngine) / 1e6} ms\n`);
    }
    this.setup.engine.setPause(pauseMs);
    this.setup.post({ type: 'frozen', id, pause_ms: pauseMs, pages: frozen });
  }

  private onGroupStop(tid: number, sig: number): void {
    // Job control: keep the tracee stopped (PTRACE_LISTEN) and stop numactlx with it.
    if (tid === this.mainPid && this.procs.get(this.mainPid)?.execed && !this.mainStopped) {
      this.mainStopped = true;
      this.setup.post({ type: 'stopped', signal: sig });
    }
    listen(tid);
  }

  private onExec(thread: Thread, formerTid: number): void {
    // thread is the thread-group leader after exec; a non-leader that exec'd is gone.
    if (formerTid !== thread.tid) this.threads.delete(formerTid);
    const proc = thread.proc;
    proc.execed = true;
    this.setup.engine.leaveMm(proc.pid);
    const { uffd } = setUpExec(proc);
    const r = this.setup.engine.addMm(proc.pid, uffd);
    if (r !== 0) throw new SysError(`UFFDIO_API for the program's userfaultfd (pid ${proc.pid})`, -r);
    if (proc.policy) {
      for (const range of existingAnonRanges(proc.pid)) this.setup.engine.register(proc.pid, range.start, range.len, proc.policy);
    }
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
    const lastThread = ![...this.threads.values()].some((t) => t.proc === proc && !t.exiting);
    if (this.setup.snapshotOnExit && proc.pid === this.mainPid && lastThread && !this.exitSnapshotTaken) {
      this.exitSnapshotTaken = true;
      this.setup.post({ type: 'exit-snapshot' });
      // The main thread queues the request and posts it to the doorbell; it is taken
      // here, synchronously, while the memory exists (an exiting thread gets no signal).
      const req = this.setup.doorbell?.waitRequest(60_000);
      if (req) this.freeze(req.id, thread.tid);
    }
    if (lastThread) this.setup.engine.exitStop(proc.pid);
    // mm_release will write 0 to the thread's clear_child_tid and wake its joiners. A
    // userfaultfd does not serve an exiting task's faults: on a write-protected page
    // (clean since a snapshot) the write is skipped and pthread_join never returns.
    else if (thread.clearChildTid !== 0n) this.setup.engine.threadExit(proc.pid, thread.clearChildTid);
  }

  private onNewTask(parent: Thread, event: number, child: number): void {
    const clone = event === PTRACE_EVENT.CLONE ? this.cloneArgs(parent.tid) : undefined;
    const kind = event === PTRACE_EVENT.FORK ? 'fork' : event === PTRACE_EVENT.VFORK ? 'vfork' : clone!.kind;
    if (kind === 'thread') {
      const thread = new Thread(child, parent.proc);
      thread.clearChildTid = clone!.clearChildTid;
      this.threads.set(child, thread);
    } else {
      const proc = new Proc(child);
      proc.inheritFrom(parent.proc);
      this.procs.set(child, proc);
      this.threads.set(child, new Thread(child, proc));
      if (kind === 'fork') this.setup.engine.forked(parent.proc.pid, child);
      else this.setup.engine.sharesMm(parent.proc.pid, child);
    }
    if (this.held.delete(child)) cont(child);
  }

  /**
   * What a PTRACE_EVENT_CLONE created, from the clone arguments in the parent's
   * registers: clone(flags, stack, parent_tid, child_tid, tls) in rdi, rsi, rdx, r10, r8;
   * clone3(struct clone_args *) with flags at +0 and child_tid at +16.
   */
  private cloneArgs(parentTid: number): { kind: 'thread' | 'fork' | 'shares-mm'; clearChildTid: bigint } {
    const regs = getRegs(parentTid);
    const nr = Number(readReg(regs, 'orig_rax'));
    let flags = CLONE_VM | CLONE_THREAD;
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

  private onGone(tid: number, status: number): void {
    const thread = this.threads.get(tid);
    this.threads.delete(tid);
    this.held.delete(tid);
    if (!thread || thread.proc.pid !== tid) return; // a thread, not a process
    this.procs.delete(tid);
    this.setup.engine.leaveMm(tid);
    if (tid === this.mainPid) this.mainStatus = status;
    // Ring another traced process from now on, if any is left.
    this.setup.doorbell?.publishPid(this.procs.keys().next().value ?? 0);
    this.doorbellMayBeLost = true;
  }
}


// How a snapshot request reaches the tracer, which sits in waitpid(2): the main thread
// writes the request into shared memory, then queues SIGURG with a cookie to a traced
// process. The tracee stops for it (a traced task stops even for a signal it ignores),
// the tracer recognises the cookie in the siginfo (si_code SI_QUEUE, si_pid = numactlx,
// si_value = COOKIE), suppresses the signal — the program never sees it — and freezes.
// The same shared memory carries the threads' registers from the tracer to the engine.
//
// A ring unanswered after NUDGE_MS rings again with SIGSTOP and the same cookie (nudge):
// a program that blocks SIGURG in every thread, or takes it with sigwaitinfo or a
// signalfd, would give no stop while it sleeps.
//
// The end of the session (its backing lost) goes the same way: a flag, and SIGKILL to the
// process the doorbell rings (nothing can catch it, and the tracer's waitpid returns at
// once); the tracer then kills every other process of the program.
//
// Layout: Int32 [0] state (0 idle, 1 requested), [1] snapshot id, [2] label length,
// [3] thread count, [4] the pid to ring (published by the tracer), [5] 1: end the
// session; label bytes at 64; registers at REGS_OFFSET: per thread tgid u32, tid u32,
// then user_regs_struct.
import os from 'node:os';
import { killFast, killIfAlive, sigqueueFast } from '../sys/signal.js';
import { signalState } from '../sys/procfs.js';
import { USER_REGS_SIZE } from '../sys/arch/index.js';
import type { ThreadRegs } from '../snapshot/types.js';

export const DOORBELL_BYTES = 1 << 20;
const LABEL_OFFSET = 64;
const LABEL_MAX = 4096;
const REGS_OFFSET = LABEL_OFFSET + LABEL_MAX;
const REG_ENTRY = 8 + USER_REGS_SIZE;
export const MAX_THREADS = Math.floor((DOORBELL_BYTES - REGS_OFFSET) / REG_ENTRY);

/** SIGURG: ignored by default, so a ring that arrives untraced does no harm. */
export const DOORBELL_SIGNAL = os.constants.signals.SIGURG;
export const COOKIE = 0x6e756d61; // "numa"
/**
 * The nudge's signal (a ring where SIGURG cannot stop the program, or still unanswered
 * after NUDGE_MS): SIGSTOP can be neither blocked, caught, ignored nor waited
 * for, so the process stops for the tracer at once, wherever it sleeps; the tracer
 * recognises it and suppresses it like SIGURG, and no group stop happens (ptrace(2): a
 * signal suppressed at its delivery stop). Its one side effect: a stop signal, when
 * sent, discards a SIGCONT still pending in the process (signal(7)).
 *
 * Sent by kill(2), not sigqueue: a sigqueue'd signal over the receiver's
 * RLIMIT_SIGPENDING (its own limit, or its user's queued signals) arrives without its
 * siginfo, and a SIGSTOP the tracer cannot recognise is a real stop — the program and
 * numactlx with it stopped for good (seen: `prlimit --sigpending=0` and a program that
 * blocks SIGURG). A kill's siginfo is always queued (killFast). It carries no cookie:
 * SIGSTOP with SI_USER from numactlx's own pid is the nudge, as numactlx never sends the
 * program a SIGSTOP otherwise (it forwards catchable signals only).
 */
export const DOORBELL_NUDGE_SIGNAL = os.constants.signals.SIGSTOP;
/** How long a ring may go unanswered before the nudge (then again as long as it is): a ring is answered in a few ms. */
export const NUDGE_MS = 500;
/** How often an unanswered ring looks whether SIGURG can still stop the program (signalState). */
const LOOK_MS = 50;
/** ctl index: 1 once the main thread asked for the end of the session. */
const END = 5;

export class Doorbell {
  private readonly ctl: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 16);
    this.bytes = new Uint8Array(sab);
  }

  /**
   * Main thread: posts a request and rings. False when there is no process to ring and
   * the request was withdrawn: nobody will answer it. True when the tracer will answer
   * it — it was rung, or it took the request already (at an exit stop, or as its last
   * process ended), so each request has exactly one outcome.
   */
  ring(id: number, label: string | null): boolean {
    const text = Buffer.from(JSON.stringify({ label }));
    if (text.length > LABEL_MAX) throw new Error(`snapshot label longer than ${LABEL_MAX - 16} bytes`);
    this.bytes.set(text, LABEL_OFFSET);
    Atomics.store(this.ctl, 2, text.length);
    Atomics.store(this.ctl, 1, id);
    Atomics.store(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    const pid = Atomics.load(this.ctl, 4);
    // Withdrawn only if still pending: the tracer may have taken it since it was posted.
    if (pid <= 0) return Atomics.compareExchange(this.ctl, 0, 1, 0) !== 1;
    // ESRCH: the process just ended; the tracer may still take the request at an exit stop.
    // A process whose every thread blocks SIGURG gets the nudge at once: SIGURG would bring
    // no stop, and would stay pending in it, for its own sigwaitinfo to take one day.
    const nudged = signalState(pid, DOORBELL_SIGNAL, true)?.blockedEverywhere === true;
    if (nudged) killFast(pid, DOORBELL_NUDGE_SIGNAL);
    else sigqueueFast(pid, DOORBELL_SIGNAL, COOKIE);
    this.nudgeWhileUnanswered(id, nudged);
    return true;
  }

  /**
   * Main thread: while request `id` waits to be taken, rings it again with
   * DOORBELL_NUDGE_SIGNAL — as soon as SIGURG cannot stop the program (blocked in every
   * thread, or no longer pending: taken by sigwaitinfo or a signalfd, which give the
   * tracer no stop), else after NUDGE_MS; then every NUDGE_MS. A nudge that crosses the
   * tracer's take is a doorbell stop with nothing to take: suppressed, nothing else.
   */
  private nudgeWhileUnanswered(id: number, nudged: boolean): void {
    let last = nudged ? performance.now() : undefined;
    const rungAt = performance.now();
    const timer = setInterval(() => {
      if (Atomics.load(this.ctl, 0) !== 1 || Atomics.load(this.ctl, 1) !== id) {
        clearInterval(timer);
        return;
      }
      const pid = Atomics.load(this.ctl, 4);
      const now = performance.now();
      if (pid <= 0 || (last !== undefined && now - last < NUDGE_MS)) return;
      if (last === undefined && now - rungAt < NUDGE_MS) {
        const state = signalState(pid, DOORBELL_SIGNAL);
        if (!state || (state.pending && !state.blockedEverywhere)) return; // it may still come
      }
      killFast(pid, DOORBELL_NUDGE_SIGNAL);
      last = now;
    }, LOOK_MS);
    timer.unref();
  }

  /**
   * Main thread: the session must end now (a backing was lost under it). The process
   * the doorbell rings is killed here; the tracer kills the others (endRequested).
   */
  requestEnd(): void {
    Atomics.store(this.ctl, END, 1);
    Atomics.notify(this.ctl, 0); // a tracer waiting for a request at an exit stop
    const pid = Atomics.load(this.ctl, 4);
    if (pid > 0) killIfAlive(pid); // gone already: the tracer hears of that anyway
  }

  /** Tracer: the main thread asked for the end of the session (requestEnd). */
  get endRequested(): boolean {
    return Atomics.load(this.ctl, END) === 1;
  }

  /** Tracer: whether a request waits to be taken (a look, not a take). */
  get pending(): boolean {
    return Atomics.load(this.ctl, 0) === 1;
  }

  /** Tracer: the pending request, taken, or undefined. */
  take(): { id: number; label: string | null } | undefined {
    if (Atomics.compareExchange(this.ctl, 0, 1, 0) !== 1) return undefined;
    const len = Atomics.load(this.ctl, 2);
    const { label } = JSON.parse(Buffer.from(this.bytes.subarray(LABEL_OFFSET, LABEL_OFFSET + len)).toString()) as { label: string | null };
    return { id: Atomics.load(this.ctl, 1), label };
  }

  /** Tracer: waits up to `ms` for a request (at an exit stop, where no signal arrives). */
  waitRequest(ms: number): { id: number; label: string | null } | undefined {
    const deadline = Date.now() + ms;
    for (;;) {
      const req = this.take();
      if (req) return req;
      if (this.endRequested) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      Atomics.wait(this.ctl, 0, 0, Math.min(left, 50));
    }
  }

  /** Tracer: which process the main thread should ring. */
  publishPid(pid: number): void {
    Atomics.store(this.ctl, 4, pid);
  }

  /** Tracer: the stopped threads' registers, for the engine. */
  writeThreads(threads: Array<{ tgid: number; tid: number; regs: Buffer }>): void {
    const n = Math.min(threads.length, MAX_THREADS);
    const view = Buffer.from(this.sab);
    for (let i = 0; i < n; i++) {
      const off = REGS_OFFSET + i * REG_ENTRY;
      view.writeUInt32LE(threads[i].tgid, off);
      view.writeUInt32LE(threads[i].tid, off + 4);
      threads[i].regs.copy(view, off + 8, 0, USER_REGS_SIZE);
    }
    Atomics.store(this.ctl, 3, n);
  }

  /** Engine: the registers the tracer wrote, with each thread's process. */
  readThreads(): Array<ThreadRegs & { tgid: number }> {
    const n = Atomics.load(this.ctl, 3);
    const view = Buffer.from(this.sab);
    const out: Array<ThreadRegs & { tgid: number }> = [];
    for (let i = 0; i < n; i++) {
      const off = REGS_OFFSET + i * REG_ENTRY;
      out.push({ tgid: view.readUInt32LE(off), tid: view.readUInt32LE(off + 4),
        regs: Buffer.from(view.subarray(off + 8, off + 8 + USER_REGS_SIZE)) });
    }
    return out;
  }

  /** Engine: the current request's label (for the record). */
  label(): string | null {
    const len = Atomics.load(this.ctl, 2);
    if (len === 0) return null;
    return (JSON.parse(Buffer.from(this.bytes.subarray(LABEL_OFFSET, LABEL_OFFSET + len)).toString()) as { label: string | null }).label;
  }
}

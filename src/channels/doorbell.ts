// How a snapshot request reaches the tracer, which sits in waitpid(2): the main thread
// writes the request into shared memory, then wakes the tracer through its waker process
// (tracer-wake.ts) — no signal goes to the program. The tracer takes the request after the
// waker's stop and freezes (every thread interrupted with PTRACE_INTERRUPT, freeze.ts).
// The same shared memory carries the threads' registers from the tracer to the engine.
//
// The end of the session (its backing lost) goes the same way: a flag, and SIGKILL to the
// program's process published here (nothing can catch it, and the tracer's waitpid
// returns at once); the tracer then kills every other process of the program.
//
// Layout: Int32 [0] state (0 idle, 1 requested), [1] snapshot id, [2] label length,
// [3] thread count, [4] a pid of the program (published by the tracer; 0 when none is
// left), [5] 1: end the session, [6] the waker's pid; label bytes at 64; registers at
// REGS_OFFSET: per thread tgid u32, tid u32, then user_regs_struct.
import { killIfAlive } from '../sys/signal.js';
import { RERING_MS, wakeTracer } from './tracer-wake.js';
import { USER_REGS_SIZE } from '../sys/arch/index.js';
import type { ThreadRegs } from '../snapshot/types.js';

export const DOORBELL_BYTES = 1 << 20;
const LABEL_OFFSET = 64;
const LABEL_MAX = 4096;
const REGS_OFFSET = LABEL_OFFSET + LABEL_MAX;
const REG_ENTRY = 8 + USER_REGS_SIZE;
export const MAX_THREADS = Math.floor((DOORBELL_BYTES - REGS_OFFSET) / REG_ENTRY);

/** ctl index: 1 once the main thread asked for the end of the session. */
const END = 5;
/** ctl index: the waker's pid. */
const WAKER = 6;

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
    wakeTracer(Atomics.load(this.ctl, WAKER));
    this.ringWhileUntaken(id);
    return true;
  }

  /** Main thread: rings again every RERING_MS while request `id` waits to be taken. */
  private ringWhileUntaken(id: number): void {
    const timer = setInterval(() => {
      if (Atomics.load(this.ctl, 0) !== 1 || Atomics.load(this.ctl, 1) !== id) clearInterval(timer);
      else wakeTracer(Atomics.load(this.ctl, WAKER));
    }, RERING_MS);
    timer.unref();
  }

  /**
   * Main thread: the session must end now (a backing was lost under it). The program's
   * process published here is killed; the tracer kills the others (endRequested).
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

  /** Tracer: a process of the program (the one requestEnd kills), 0 when none is left. */
  publishPid(pid: number): void {
    Atomics.store(this.ctl, 4, pid);
  }

  /** Tracer: the waker's pid (0 while there is none). */
  publishWaker(pid: number): void {
    Atomics.store(this.ctl, WAKER, pid);
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

// The waker: a process the tracer follows besides the program, so that a request posted
// in shared memory can end the tracer's waitpid(2) without a signal to the program
// (src/channels/tracer-wake.ts says how it is rung).
//
// It is `cat` (argv[0] "numactlx-waker") reading a pipe whose only write end numactlx holds
// (close-on-exec: no program inherits it), its output /dev/null and no other descriptor,
// spawned by the tracer thread in a process group of its own (the terminal's Ctrl-C and
// Ctrl-Z are the program's), then seized. However numactlx ends — even killed between the
// spawn and the seize, before PTRACE_O_EXITKILL applies — the pipe's write end closes and
// the waker ends at its EOF: it never outlives numactlx, nor keeps a descriptor of its (a
// `sleep infinity` killed in that window lived on, holding numactlx's stdout, and the
// caller waiting for that pipe's end waited for ever). Every stop it reports is a signal
// sent to it, suppressed here. Killed by someone else, it is started again and its new pid
// published; a ring sent meanwhile is lost, so the ringers ring again while their request
// waits (doorbell.ts, eviction.ts). Where it cannot be started again (RLIMIT_NPROC), the
// tracer's wait polls for requests instead (next), until it can.
import fs from 'node:fs';
import { cont, PTRACE_O, seize } from '../sys/ptrace.js';
import { closeFd } from '../sys/eventfd.js';
import { pipeCloexec } from '../sys/fcntl.js';
import { killIfAlive } from '../sys/signal.js';
import { spawnProgram } from '../sys/spawn.js';
import { waitAnyChild, waitpid, WIFSTOPPED, WNOHANG, __WALL, type WaitResult } from '../sys/wait.js';

const CAT = '/bin/cat';
/** A waker that could not be started again is tried again this long after (revive). */
const RETRY_MS = 1000;
/** Without a waker, the tracer's wait looks for requests this often (next). */
const POLL_MS = 10;

export class Waker {
  private pid = 0;
  private retired = false;
  private failedAt = Number.NEGATIVE_INFINITY;
  private saidFailed = false;
  /** The write end of the waker's standard input: open while numactlx lives (see the header). */
  private lifeline = -1;

  /** What the tracer's wait sleeps on between polls (nothing wakes it: a timed nap). */
  private readonly nap = new Int32Array(new SharedArrayBuffer(4));

  /** `publish`: tells the ringers the waker's pid (0: none now). */
  constructor(private readonly publish: (pid: number) => void) {}

  /** Starts the waker. Throws with the step that failed (no process is left behind). */
  start(): void {
    let pid: number;
    const [readEnd, writeEnd] = pipeCloexec();
    try {
      pid = spawnProgram({ file: CAT, argv: ['numactlx-waker'], env: [], ownProcessGroup: true, detachedStdin: readEnd });
    } catch (err) {
      closeFd(writeEnd);
      throw new Error(`cannot start its waker process (${CAT}): ${(err as Error).message}`, { cause: err });
    } finally {
      closeFd(readEnd);
    }
    if (this.lifeline >= 0) closeFd(this.lifeline); // the waker before, killed by someone
    this.lifeline = writeEnd;
    try {
      seize(pid, PTRACE_O.EXITKILL);
    } catch (err) {
      killIfAlive(pid);
      try { waitpid(pid, __WALL); } catch { /* reaped */ }
      throw new Error(`cannot follow its waker process: ${(err as Error).message}`, { cause: err });
    }
    this.pid = pid;
    this.publish(pid);
  }

  /**
   * The tracer's next status: waitpid(-1) blocking while the waker runs (a ring ends it) or
   * is retired. While it is down (killed, not started again), waitpid polls every POLL_MS,
   * and 'idle' comes back once `requested()` says a request is posted, or after RETRY_MS
   * (revive tries again) — never twice within POLL_MS, so a request that must wait (an exec
   * in progress) costs no spin. undefined: ECHILD.
   */
  next(requested: () => boolean): WaitResult | 'idle' | undefined {
    if (this.pid !== 0 || this.retired) return waitAnyChild(__WALL);
    const until = performance.now() + RETRY_MS;
    for (let napped = false; ; napped = true) {
      const r = waitAnyChild(__WALL | WNOHANG);
      if (r === undefined || r.pid !== 0) return r;
      if (napped && (requested() || performance.now() >= until)) return 'idle';
      Atomics.wait(this.nap, 0, 0, POLL_MS);
    }
  }

  /** A status read by a waitpid: true when it is the waker's (handled here). */
  take(tid: number, status: number): boolean {
    if (tid !== this.pid || tid === 0) return false;
    if (WIFSTOPPED(status)) {
      try {
        cont(tid); // the ring's signal, suppressed
      } catch {
        // killed in its stop: its death comes next
      }
      return true;
    }
    this.pid = 0;
    this.publish(0);
    this.revive();
    return true;
  }

  /**
   * Starts the waker again if it is gone (killed by someone) and not retired. Where that
   * fails (RLIMIT_NPROC reached, say) the session goes on: said once, and tried again at the
   * tracer's later events, at most once a second; the tracer's wait polls for requests
   * meanwhile (next). Never throws: this runs inside other stops' handling.
   */
  revive(): void {
    if (this.pid !== 0 || this.retired || performance.now() - this.failedAt < RETRY_MS) return;
    try {
      this.start();
    } catch (err) {
      this.failedAt = performance.now();
      if (!this.saidFailed) {
        fs.writeSync(2, `numactlx: ${(err as Error).message}: until it can, numactlx looks for snapshot and eviction requests every ${POLL_MS} ms (tried again each second)\n`);
      }
      this.saidFailed = true;
    }
  }

  /** The session's program has ended (or its books are wrong): the waker goes, reaped here. */
  retire(): void {
    this.retired = true;
    const pid = this.pid;
    if (pid === 0) return;
    this.pid = 0;
    this.publish(0);
    killIfAlive(pid);
    closeFd(this.lifeline);
    this.lifeline = -1;
    // Its stops (a ring) come before its death: read until it is gone.
    for (;;) {
      try {
        const { status } = waitpid(pid, __WALL);
        if (!WIFSTOPPED(status)) return;
      } catch {
        return; // reaped
      }
    }
  }
}

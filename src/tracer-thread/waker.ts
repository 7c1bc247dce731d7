// The waker: a process the tracer follows besides the program, so that a request posted
// in shared memory can end the tracer's waitpid(2) without a signal to the program
// (src/channels/tracer-wake.ts says how it is rung).
//
// It is `sleep infinity` (argv[0] "numactlx-waker"), spawned by the tracer thread in a
// process group of its own (the terminal's Ctrl-C and Ctrl-Z are the program's), seized
// with PTRACE_O_EXITKILL: numactlx's death kills it. Every stop it reports is a signal
// sent to it, suppressed here. Killed by someone else, it is started again and its new pid
// published; a ring sent meanwhile is lost, so the ringers ring again while their request
// waits (doorbell.ts, eviction.ts).
import { cont, PTRACE_O, seize } from '../sys/ptrace.js';
import { killIfAlive } from '../sys/signal.js';
import { spawnProgram } from '../sys/spawn.js';
import { waitpid, WIFSTOPPED, __WALL } from '../sys/wait.js';

const SLEEP = '/bin/sleep';

export class Waker {
  private pid = 0;
  private retired = false;

  /** `publish`: tells the ringers the waker's pid (0: none now). */
  constructor(private readonly publish: (pid: number) => void) {}

  /** Starts the waker. Throws with the step that failed (no process is left behind). */
  start(): void {
    let pid: number;
    try {
      pid = spawnProgram({ file: SLEEP, argv: ['numactlx-waker', 'infinity'], env: [], ownProcessGroup: true });
    } catch (err) {
      throw new Error(`cannot start its waker process (${SLEEP}): ${(err as Error).message}`, { cause: err });
    }
    try {
      seize(pid, PTRACE_O.EXITKILL);
    } catch (err) {
      killIfAlive(pid);
      try { waitpid(pid, __WALL); } catch { /* reaped */ }
      throw err;
    }
    this.pid = pid;
    this.publish(pid);
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
    if (!this.retired) this.start();
    return true;
  }

  /** The session's program has ended (or its books are wrong): the waker goes, reaped here. */
  retire(): void {
    this.retired = true;
    const pid = this.pid;
    if (pid === 0) return;
    this.pid = 0;
    this.publish(0);
    killIfAlive(pid);
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

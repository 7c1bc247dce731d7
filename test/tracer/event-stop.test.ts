// A task killed while it sits in a ptrace event stop (a fork's, an exec's) leaves that
// stop and stops again at its exit event, whose message is its exit status: 9 for
// SIGKILL. A tracer that reads the event message after that reads 9 as the fork's child
// pid — numactlx followed a "process 9" that never ended, and its loop failed with
// ECHILD once the program was gone (spawn_storm, about one run in 150). eventMessage
// checks the stop's siginfo after the message and throws TaskGone instead.
//
// The test is the tracer here: it seizes a shell stopped before a fork, lets it reach
// its fork event, reads the real child pid, kills it, waits for the exit stop (by its
// siginfo, not by time), and asks again.
import os from 'node:os';
import { cont, getEventMsg, getSiginfo, PTRACE_EVENT, PTRACE_O, seize, siginfoHead } from '../../src/sys/ptrace.js';
import { kill } from '../../src/sys/signal.js';
import { spawnProgram } from '../../src/sys/spawn.js';
import { waitpid, WIFSTOPPED, WPTRACEEVENT, WSTOPSIG, WUNTRACED, __WALL } from '../../src/sys/wait.js';
import { eventMessage, TaskGone } from '../../src/tracer-thread/task-gone.js';

const { SIGCONT, SIGKILL } = os.constants.signals;

/** The event of `pid`'s current ptrace stop, undefined while it is not in one. */
function stopEvent(pid: number): number | undefined {
  try {
    return siginfoHead(getSiginfo(pid)).code >> 8;
  } catch {
    return undefined;
  }
}

/** Reaps `pid` as its tracer (resuming its stops) until it has ended. */
function reap(pid: number): void {
  for (;;) {
    const { status } = waitpid(pid, __WALL);
    if (!WIFSTOPPED(status)) return;
    try { cont(pid); } catch { /* killed meanwhile */ }
  }
}

test('a task killed in its fork event stop: the raw message is its exit status, eventMessage says the event is gone', () => {
  const shell = spawnProgram({ file: '/bin/sh', argv: ['sh', '-c', 'kill -STOP $$; /bin/true'] });
  let child = 0;
  try {
    expect(WIFSTOPPED(waitpid(shell, WUNTRACED).status)).toBe(true);
    seize(shell, PTRACE_O.TRACEFORK | PTRACE_O.TRACEVFORK | PTRACE_O.TRACEEXIT | PTRACE_O.EXITKILL);
    kill(shell, SIGCONT);
    // Resume its stops (SIGCONT's delivery, group stops) until its fork event.
    for (;;) {
      const { status } = waitpid(shell, __WALL);
      const event = WPTRACEEVENT(status);
      if (event === PTRACE_EVENT.FORK || event === PTRACE_EVENT.VFORK) break;
      if (event === PTRACE_EVENT.EXIT || !WIFSTOPPED(status)) throw new Error(`the shell ended before forking (status 0x${status.toString(16)})`);
      const sig = event === 0 && WSTOPSIG(status) !== SIGCONT ? WSTOPSIG(status) : 0;
      cont(shell, sig);
    }
    const event = stopEvent(shell)!;
    child = Number(eventMessage(shell, event));
    expect(child).toBeGreaterThan(1);

    kill(shell, SIGKILL);
    // It leaves the fork stop at once and stops again at its exit event.
    const deadline = Date.now() + 10_000;
    while (stopEvent(shell) !== PTRACE_EVENT.EXIT) {
      if (Date.now() > deadline) throw new Error(`pid ${shell} did not reach its exit stop after SIGKILL`);
    }
    expect(getEventMsg(shell)).toBe(BigInt(SIGKILL)); // the kernel's fact: what a bare read returns
    expect(() => eventMessage(shell, event)).toThrow(TaskGone);
  } finally {
    try { kill(shell, SIGKILL); } catch { /* gone */ }
    reap(shell);
    if (child > 0) {
      try { kill(child, SIGKILL); } catch { /* gone */ }
      try { reap(child); } catch { /* not ours to reap */ }
    }
  }
});

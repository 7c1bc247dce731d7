// A thread's exit stop (PTRACE_EVENT_EXIT): the thread is about to exit and its memory
// still exists. The program's last thread: --snapshot-on-exit takes the snapshot now.
// Any process's last thread: a snapshot being copied takes this process's frozen pages
// now, before they are gone (the engine's exitStop).
import { freeze, type FreezeHost } from './freeze.js';
import type { Thread } from './state.js';

/**
 * Handles `thread`'s exit stop. `exitSnapshotWanted()` is asked at the last thread of a
 * process, and says whether that is the exit snapshot's turn.
 */
export function onExitStop(host: FreezeHost, thread: Thread, exitSnapshotWanted: () => boolean): void {
  // (the freeze below skips this thread: it is stopped here already)
  const proc = thread.proc;
  thread.exiting = true;
  // The last thread to reach its exit stop, not the last one waitpid has not reported
  // yet: a joined thread's exit is reported after its joiner ran on (pthread_join
  // returns at the clear_child_tid wake, before the kernel lets the tracer reap it).
  const lastThread = ![...host.tasks.threads.values()].some((t) => t.proc === proc && !t.exiting);
  if (lastThread && exitSnapshotWanted()) {
    host.post({ type: 'exit-snapshot' });
    // The main thread queues the request and posts it to the doorbell; it is taken
    // here, synchronously, while the memory exists (an exiting thread gets no signal).
    const req = host.doorbell.waitRequest(60_000);
    if (req) freeze(host, req.id, thread.tid);
  }
  if (lastThread) host.engine.exitStop(proc.pid);
  // mm_release will write 0 to the thread's clear_child_tid and wake its joiners. A
  // userfaultfd does not serve an exiting task's faults: on a write-protected page
  // (clean since a snapshot) the write is skipped and pthread_join never returns.
  else if (thread.clearChildTid !== 0n) host.engine.threadExit(proc.pid, thread.clearChildTid, thread.tid);
}

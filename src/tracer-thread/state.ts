// The tracer's view of the program: processes (one per mm lineage) and threads. Owned
// by the tracer thread only.
import type { PagePolicy } from '../../policy/placement.js';

export class Proc {
  /** The process policy when it names a virtual node (launch policy or set_mempolicy). */
  policy: PagePolicy | undefined;
  /** The program break, to register brk growth. */
  brk = 0n;
  /** Where the break started (its lowest value: the kernel refuses a brk below it); 0n: unknown. */
  startBrk = 0n;
  /** The memory-trap seccomp filter is installed (inherited across fork and exec). */
  filtered = false;
  /** Seen exec at least once under numactlx (the first exec is the program's). */
  execed = false;
  /**
   * The tracer's own duplicate of this process's mm's uffd (register.ts), asked of the
   * engine at the first registration; -1 when the engine has none. Never inherited: a
   * child has an mm (and a uffd) of its own. Closed when the process leaves the mm.
   */
  uffd: number | undefined;

  constructor(readonly pid: number) {}

  inheritFrom(parent: Proc): void {
    this.policy = parent.policy;
    this.brk = parent.brk;
    this.startBrk = parent.startBrk;
    this.filtered = parent.filtered;
    this.execed = parent.execed;
  }
}

export type PendingSyscall = { kind: 'mmap'; len: bigint } | { kind: 'brk' } | { kind: 'exec'; formerTid: number };

export class Thread {
  pending: PendingSyscall | undefined;
  /** In an execve since its seccomp stop, until its exec event (or any other stop: it failed). */
  execEntered = false;
  /**
   * The address the kernel clears (and FUTEX_WAKEs) when this thread exits: clone's
   * child_tid with CLONE_CHILD_CLEARTID (pthread's tid word, which pthread_join waits on).
   * 0n when unknown (the first thread, whose set_tid_address is not trapped).
   */
  clearChildTid = 0n;
  /** Past its exit stop: it will not run again, though waitpid has not reported it yet. */
  exiting = false;
  /**
   * A vfork (CLONE_VFORK: glibc's posix_spawn too): the parent thread sleeps in the
   * kernel until its child execs or exits, and cannot stop for a freeze meanwhile.
   * Set on both from the parent's vfork event until the child's exec event or end.
   */
  vforkChild: Thread | undefined;
  vforkParent: Thread | undefined;
  constructor(readonly tid: number, public proc: Proc) {}
}

/** Every task the tracer follows. */
export class Tasks {
  /** By pid (the thread-group id). */
  readonly procs = new Map<number, Proc>();
  /** By tid, processes' first threads included. */
  readonly threads = new Map<number, Thread>();
  /**
   * Tasks whose first stop came before their creator's fork/clone event: left stopped
   * until that event says what they are (new-tasks.ts), or adopted when it cannot come.
   */
  readonly held = new Set<number>();
  /**
   * Threads whose stop has been read (by a freeze's or an eviction's wait, or an
   * injection's) and is still to be handled: stopped, and reporting nothing new until
   * resumed. A freeze or an eviction that starts meanwhile neither interrupts nor waits
   * for them (stop-threads.ts).
   */
  readonly unhandled = new Set<number>();

  /** Whether a thread is between its execve's seccomp stop and that exec's set-up (a freeze would leave its image out). */
  midExec(): boolean {
    for (const t of this.threads.values()) if (t.execEntered || t.pending?.kind === 'exec') return true;
    return false;
  }

  /** The vfork between `child` and its parent is over (the child exec'd or ended). */
  endVfork(child: Thread | undefined): void {
    const parent = child?.vforkParent;
    if (!parent) return;
    parent.vforkChild = undefined;
    child.vforkParent = undefined;
  }

  addProc(proc: Proc): Thread {
    this.procs.set(proc.pid, proc);
    const thread = new Thread(proc.pid, proc);
    this.threads.set(proc.pid, thread);
    return thread;
  }
}

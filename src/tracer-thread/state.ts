// The tracer's view of the program: processes (one per mm lineage) and threads. Owned
// by the tracer thread only.
import type { PagePolicy } from '../../policy/placement.js';

export class Proc {
  /** The process policy when it names a virtual node (launch policy or set_mempolicy). */
  policy: PagePolicy | undefined;
  /** The program break, to register brk growth. */
  brk = 0n;
  /** The memory-trap seccomp filter is installed (inherited across fork and exec). */
  filtered = false;
  /** Seen exec at least once under numactlx (the first exec is the program's). */
  execed = false;

  constructor(readonly pid: number) {}

  inheritFrom(parent: Proc): void {
    this.policy = parent.policy;
    this.brk = parent.brk;
    this.filtered = parent.filtered;
    this.execed = parent.execed;
  }
}

export type PendingSyscall = { kind: 'mmap'; len: bigint } | { kind: 'brk' } | { kind: 'exec'; formerTid: number };

export class Thread {
  pending: PendingSyscall | undefined;
  /**
   * The address the kernel clears (and FUTEX_WAKEs) when this thread exits: clone's
   * child_tid with CLONE_CHILD_CLEARTID (pthread's tid word, which pthread_join waits on).
   * 0n when unknown (the first thread, whose set_tid_address is not trapped).
   */
  clearChildTid = 0n;
  /** Past its exit stop: it will not run again, though waitpid has not reported it yet. */
  exiting = false;
  /** Between its vfork event and VFORK_DONE: blocked in the kernel until the child execs or exits. */
  vforking = false;
  constructor(readonly tid: number, public proc: Proc) {}
}

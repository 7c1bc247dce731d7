// A full --membind node: the thread that faulted there gets SIGBUS, as on an exhausted
// node under MPOL_BIND. Two ways, chosen by the kernel (src/kerndat/):
//
// - UFFDIO_POISON (Linux 6.6): the page becomes a poison marker and wakes the thread;
//   this and every later access get SIGBUS (si_code BUS_ADRERR on Linux 6.18).
// - Before 6.6: rt_tgsigqueueinfo(SIGBUS) to the faulting thread (UFFD_FEATURE_THREAD_ID
//   names it), with si_code SI_QUEUE, si_pid numactlx and the address as si_value. The
//   signal ends the thread's interruptible wait in the fault (handle_userfault returns
//   VM_FAULT_RETRY; a kernel-mode access — read() into the page — fails with EFAULT), and
//   at its signal-delivery stop the tracer gives it the siginfo UFFDIO_POISON would have
//   (src/tracer-thread/tracer.ts). Nothing is mapped: a later access faults to numactlx
//   again and gets its own SIGBUS. A SIGBUS already pending is not queued twice (a
//   standard signal), so a thread faulting in a loop cannot pile them up.
//   Where a queued signal cannot act as the kernel's forced SIGBUS would — the thread
//   blocks or ignores SIGBUS (it would sleep in its fault, or refault for ever), or the
//   faulting task is not the program's (a debugger reading its memory through
//   /proc/PID/mem) — the page goes to ordinary memory instead, and is counted as a
//   fallback page.
import fs from 'node:fs';
import os from 'node:os';
import { poisonFast, wakeFast } from '../sys/userfaultfd-fast.js';
import { tgsigqueueinfoFast } from '../sys/signal.js';
import { readProcStatus } from '../sys/procfs.js';
import { PAGE } from './page-table.js';
import type { Mm } from './mm.js';
import type { EngineCore } from './engine-core.js';

const { EAGAIN } = os.constants.errno;
const { SIGBUS } = os.constants.signals;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

/** What became of the fault: answered (SIGBUS on its way), to retry after the next poll, or to place on ordinary memory. */
export type SigbusOutcome = 'sent' | 'retry' | 'fallback';

/** The faulting thread's process and whether a queued SIGBUS would be delivered to it. */
function threadState(tid: number): { tgid: number; deliverable: boolean } | undefined {
  const st = readProcStatus(tid);
  if (!st) return undefined; // gone
  const bit = 1n << BigInt(SIGBUS - 1);
  return { tgid: st.num('Tgid'), deliverable: ((st.mask('SigBlk') | st.mask('SigIgn')) & bit) === 0n };
}

/** Gives the thread `tid` faulting at page `addr` of `mm` its SIGBUS (see the header comment). */
export function sigbus(e: EngineCore, mm: Mm, addr: number, tid: number): SigbusOutcome {
  if (e.poison) {
    const r = poisonFast(mm.uffd, addr, PAGE);
    if (r === -EAGAIN) return 'retry';
    if (r < 0) {
      if (DEBUG) fs.writeSync(2, `numactlx-engine: UFFDIO_POISON 0x${addr.toString(16)} failed: errno ${-r}\n`);
      // The thread must not sleep in its fault forever: wake it (it faults again, or
      // its mapping is gone).
      wakeFast(mm.uffd, addr, PAGE);
    }
    return 'sent';
  }
  const state = tid > 0 ? threadState(tid) : undefined;
  if (!state) {
    // No thread id, or the thread is gone: nobody waits for an answer worth a signal.
    wakeFast(mm.uffd, addr, PAGE);
    return 'sent';
  }
  if (!state.deliverable || !mm.pids.has(state.tgid)) return 'fallback';
  const r = tgsigqueueinfoFast(state.tgid, tid, SIGBUS, addr);
  if (r < 0) {
    if (DEBUG) fs.writeSync(2, `numactlx-engine: rt_tgsigqueueinfo(${tid}, SIGBUS) failed: errno ${-r}\n`);
    wakeFast(mm.uffd, addr, PAGE);
  }
  return 'sent';
}

// The tracer's half of a full --membind node's SIGBUS before Linux 6.6 (no UFFDIO_POISON;
// the engine's half is src/engine-thread/sigbus.ts): the engine queued SIGBUS to the
// faulting thread with si_code SI_QUEUE, si_pid numactlx and the page's address as
// si_value — a process may send another only a negative si_code, so the signal cannot
// carry the kernel's own. At the thread's signal-delivery stop the tracer, which may set
// any siginfo (PTRACE_SETSIGINFO), gives it the one an access to a page UFFDIO_POISON
// marked gets (measured on Linux 6.18): BUS_ADRERR, si_addr the page's address. Any
// other SIGBUS (the kernel's, or one the program sent) is left as it is.
import { getSiginfo, setSiginfo, siginfoHead, SIGINFO_OFFSET } from '../sys/ptrace.js';
import { busSiginfo, BUS_CODE, SI_QUEUE } from '../sys/signal.js';

/** `tid` is at the signal-delivery stop of a SIGBUS: numactlx's becomes the kernel's. */
export function asPoisonSigbus(tid: number): void {
  const info = getSiginfo(tid);
  if (siginfoHead(info).code !== SI_QUEUE || info.readInt32LE(SIGINFO_OFFSET.pid) !== process.pid) return;
  setSiginfo(tid, busSiginfo(BUS_CODE.ADRERR, info.readBigUInt64LE(SIGINFO_OFFSET.value)));
}

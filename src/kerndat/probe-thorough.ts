// The probes only `doctor` runs (./probe.ts has the quick ones every session runs): a
// real PTRACE_SEIZE of a child, process_madvise (eviction's drop), and
// libpmem (the CPU cache flush for /dev/dax). Each catches its own errors
// and undoes what it did.
import * as mman from '../sys/mman.js';
import { seize, PTRACE_O } from '../sys/ptrace.js';
import { PIDFD_SELF_THREAD } from '../sys/pidfd.js';
import { spawnProgram } from '../sys/spawn.js';
import { waitpid, __WALL, WIFEXITED, WIFSIGNALED } from '../sys/wait.js';
import { killIfAlive } from '../sys/signal.js';
import { loadLibpmem, loadLibpmemError, LIBPMEM_SONAME } from '../sys/libpmem.js';
import { attempt, probePtraceQuick, withAnonPage, type MoreProbes } from './probe.js';
import type { Probe } from './features.js';

const PAGE = BigInt(mman.PAGE_SIZE);

function probePtrace(): Probe {
  const quick = probePtraceQuick();
  if (!quick.present) return quick;
  return attempt(() => {
    const pid = spawnProgram({ file: 'sleep', argv: ['sleep', '10'], searchPath: true });
    try {
      seize(pid, PTRACE_O.EXITKILL);
    } finally {
      killIfAlive(pid);
      for (;;) {
        const { status } = waitpid(pid, __WALL);
        if (WIFEXITED(status) || WIFSIGNALED(status)) break;
      }
    }
    return `seized a child (${quick.detail.replace(/^a child may be traced \((.*)\)$/, '$1')})`;
  }, (e) => (e === 'EPERM' ? 'allow ptrace (a container\'s seccomp profile, or an LSM)' : undefined));
}

function probeProcessMadvise(): Probe {
  return attempt(() => withAnonPage((addr) => {
    mman.copyToAddress(addr, Buffer.alloc(mman.PAGE_SIZE, 0xa5));
    // As eviction calls it (tracer-thread/evict-stop.ts): on the calling thread's own memory.
    const done = mman.processMadvise(PIDFD_SELF_THREAD, [{ base: addr, len: PAGE }], mman.MADV_DONTNEED);
    if (done !== PAGE) throw new Error(`process_madvise advised ${done} of ${PAGE} bytes`);
    if (!mman.copyFromAddress(addr, mman.PAGE_SIZE).every((b) => b === 0)) throw new Error('the page still holds data after MADV_DONTNEED');
    return 'own anonymous page dropped through PIDFD_SELF_THREAD, reads as zero';
  }), () => undefined);
}

function probeLibpmem(): Probe {
  const lib = loadLibpmem();
  if (!lib) return { present: false, detail: `${LIBPMEM_SONAME} not loaded (${loadLibpmemError()})`, fix: 'apt-get install libpmem1' };
  const auto = lib.hasAutoFlush();
  return { present: true, detail: `${LIBPMEM_SONAME} loaded; ${auto === 1 ? 'eADR platform: flushes are not needed'
    : 'flushes CPU caches (ADR, or no persistent memory here)'}` };
}

/** What `doctor` probes beyond a session's start. */
export const THOROUGH: MoreProbes = {
  PTRACE: probePtrace,
  PROCESS_MADVISE: probeProcessMadvise,
  LIBPMEM: probeLibpmem,
};

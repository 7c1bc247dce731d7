// The calling thread takes on the program's real-node placement: its memory policy
// (set_mempolicy) and CPU affinity (sched_setaffinity). Both are per thread, inherited by
// a child through clone and kept across execve, which is how numactl hands them to the
// program. Two callers: the main thread before it execs the program in its own process
// (launcher/exec-program.ts, no virtual node), and the tracer thread before it spawns
// the program it traces (src/tracer-thread/tracer-worker.ts).
import { setMempolicy, MPOL_F_NUMA_BALANCING } from '../sys/mempolicy.js';
import { schedSetaffinity } from '../sys/sched.js';
import { SysError } from '../sys/libc.js';
import { MODE_NUMBER, type MemoryPolicy } from '../../policy/placement.js';

/** A placement the kernel refused: `what` names the call and its arguments. */
export class PlacementError extends Error {
  readonly what: string;
  readonly errno: number;
  readonly code: string;

  constructor(what: string, cause: SysError) {
    super(`${what}: ${cause.code}`, { cause });
    this.name = 'PlacementError';
    this.what = what;
    this.errno = cause.errno;
    this.code = cause.code;
  }
}

function attempt(what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof SysError) throw new PlacementError(what, err);
    throw err;
  }
}

/**
 * Applies `policy` (undefined: the kernel's policy is left alone, as numactl does when no
 * policy option is given) and `cpus` to the calling thread; throws PlacementError.
 */
export function takePlacement(policy: MemoryPolicy | undefined, cpus: readonly number[] | undefined): void {
  if (policy) {
    const what = `set_mempolicy(${policy.mode}, nodes ${policy.nodes.join(',') || 'none'})`;
    const mode = MODE_NUMBER[policy.mode];
    try {
      setMempolicy(mode | (policy.balancing ? MPOL_F_NUMA_BALANCING : 0), policy.nodes);
    } catch (err) {
      // libnuma's numa_set_membind_balancing: a kernel without NUMA balancing for
      // MPOL_BIND says EINVAL, and numactl then binds without it.
      if (!(policy.balancing && err instanceof SysError && err.code === 'EINVAL')) {
        if (err instanceof SysError) throw new PlacementError(what, err);
        throw err;
      }
      attempt(what, () => setMempolicy(mode, policy.nodes));
    }
  }
  if (cpus) attempt(`sched_setaffinity(cpus ${cpus.join(',')})`, () => schedSetaffinity(0, cpus));
}
